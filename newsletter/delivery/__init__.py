"""Delivery: a campaign sent exactly once, one ledger row per recipient (docs/delivery.md).

Its modules, one job each, top-down:

- ``statuses`` (pure): campaign and delivery statuses with their transition tables.
- ``models``: the tables (campaigns, deliveries, throttles, holds, send lanes).
- ``service``: campaigns from the CLI and the web (send, schedule, pause, resume, resend).
- ``audience``: who a campaign mails; its ledger rows. ``suppression``: the one rule.
- ``context``: what the send loop is given. ``sender``: the send loop. ``heartbeat``: leases.
- ``ledger``, ``fence``, ``recorder``: claims, in-flight marks and outcomes of the rows.
- ``recipient``, ``message``, ``dkim``, ``verp`` (pure): the bytes of each message.
- ``verdict``, ``policy``, ``breaker`` (pure), ``throttles``, ``holds``: what a reply means.
- ``lanes``, ``ratelimit``, ``transports/``: connections and rates.
- ``report``: what a campaign is doing and waiting for. ``testsend``: a test send.
- ``outbox``, ``transactional``: one-off mail (confirmations), queued and sent once.
"""
