"""The connection cap holds however long a batch takes: a live batch keeps its lane."""

from __future__ import annotations

import threading

from newsletter import jobs
from newsletter.config import Settings
from tests.delivery import seed
from tests.delivery.relay import RelayHandler, running_relay
from tests.delivery.test_campaign import emails, start, with_relay


def test_with_one_connection_allowed_a_slow_relay_and_long_batches_never_see_two(
    committed_settings: Settings,
) -> None:
    handler = RelayHandler(data_delay=0.1)
    with running_relay(handler) as relay:
        # Each batch takes about 2 s, twice the lease: only renewals keep the lane held.
        settings = with_relay(
            committed_settings, relay, max_connections=1, lease_seconds=1, batch_size=20
        )
        issue_id = seed.rendered_issue(settings)
        recipients = emails("cap", 60)
        seed.subscribers(settings, "weekly", recipients)
        start(settings, issue_id, ["weekly"])

        def worker() -> None:
            jobs.run_until_idle(settings, wait=True)

        workers = [threading.Thread(target=worker) for _ in range(3)]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(timeout=120)

    assert handler.most_connections == 1
    assert relay.handler.copies() == dict.fromkeys(recipients, 1)
