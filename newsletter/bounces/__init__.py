"""Bounce intake: every source of bounces turned into ``BounceEvent`` values.

Pure parts (no DB, no network, no clock): ``event`` (the event type), ``policy`` (the rules),
``classify`` (RFC 3463 policy table), ``parse`` (``parse_bounce`` for mail to the bounce
address, built on ``dsn``, ``arf``, ``autoreply`` and ``mime``) and
``sources/webhooks/<provider>`` (``verify`` and ``parse`` for each email provider). The rest
stores and acts on the events, a module per job: ``models`` (the tables), ``intake`` (store a
raw message once), ``matching`` (tie an event to a delivery on evidence), ``processing`` (the
policy applied, campaigns paused), ``review`` (a person acts on an unverified event),
``reinstate``, ``erasure`` and ``report``. Every status change goes through the subscriber
stage's audit (``subscribers.audit``).
"""
