"""Bounce intake: every source of bounces turned into ``BounceEvent`` values.

Pure parts (no DB, no network, no clock): ``event`` (the event type), ``classify`` (RFC 3463
policy table), ``parse`` (``parse_bounce`` for mail to the bounce address, built on ``dsn``,
``arf``, ``autoreply`` and ``mime``) and ``sources/webhooks/<provider>`` (``verify`` and
``parse`` for each email provider). ``models`` and ``service`` store and act on the events.
"""
