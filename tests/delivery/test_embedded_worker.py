"""Embedded mode's background work: `newsletter worker` without a broker, and a killed sender.

Real processes: the `newsletter` command runs in a child process against the test database
and a real relay, and is stopped (SIGTERM) or killed (SIGKILL) as an operator or a crash would.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select

from newsletter import jobs
from newsletter.config import Settings
from newsletter.db import session_scope, utcnow
from newsletter.delivery import service
from newsletter.delivery.models import Campaign, Delivery, DeliveryStatus
from tests.conftest import REPO, make_env
from tests.delivery import seed
from tests.delivery.relay import Relay, RelayHandler, running_relay
from tests.delivery.test_campaign import campaign_status, emails, ledger, with_relay

pytestmark = pytest.mark.slow
BOUND_SECONDS = 120.0  # generous: a loaded machine is slow, never wrong


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Until ``condition`` holds; fail (saying what) only after a generous bound."""
    deadline = time.monotonic() + BOUND_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen"
        time.sleep(0.05)


@contextmanager
def newsletter(
    settings: Settings, relay: Relay, *args: str, **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """The `newsletter` command in a process of its own, in its own process group."""
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "newsletter"), *args],
        cwd=REPO,
        env={
            **os.environ,
            **make_env(settings.database_url),
            "NEWSLETTER_SMTP_URL": relay.env_url,
            "PYTHONPATH": str(REPO),
            **env,
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_a_campaign_sent_with_at_fires_under_newsletter_worker_without_a_broker(
    committed_settings: Settings, tmp_path: Path
) -> None:
    with running_relay() as relay:
        settings = with_relay(committed_settings, relay)
        issue_id = seed.rendered_issue(settings)
        recipients = emails("at", 5)
        seed.subscribers(settings, "weekly", recipients)
        with newsletter(settings, relay, "worker") as worker:
            with session_scope(settings) as session:
                campaign = service.create_campaign(
                    session,
                    issue_id=issue_id,
                    list_names=["weekly"],
                    send_at=utcnow() + dt.timedelta(seconds=2),
                )
                service.schedule_or_start(session, settings, campaign, utcnow())
                campaign_id = campaign.id
            wait_for(lambda: len(relay.handler.accepted) == len(recipients), "the scheduled send")
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=BOUND_SECONDS) == 0
            assert worker.stderr is not None
            said = worker.stderr.read().decode()

    assert "no broker: running every task in this process" in said
    assert relay.handler.copies() == dict.fromkeys(recipients, 1)
    assert str(campaign_status(settings, campaign_id)) == "sent"


def test_a_killed_senders_batch_is_taken_over_within_one_lease_and_one_tick(
    committed_settings: Settings,
) -> None:
    lease = 3
    with running_relay(RelayHandler(data_delay=0.02)) as relay:
        settings = with_relay(committed_settings, relay, lease_seconds=lease)
        issue_id = seed.rendered_issue(settings)
        recipients = emails("k", 150)
        seed.subscribers(settings, "weekly", recipients)
        with newsletter(
            settings,
            relay,
            "send",
            str(issue_id),
            "--list",
            "weekly",
            "--wait",
            NEWSLETTER_LEASE_SECONDS=str(lease),
        ) as sender:
            wait_for(lambda: len(relay.handler.accepted) >= 20, "the first messages")
            os.killpg(sender.pid, signal.SIGKILL)
            killed_at = utcnow()
            sender.wait()
        with session_scope(settings) as session:
            claimed, lapses_at = session.execute(
                select(func.count(), func.max(Delivery.lease_expires_at)).where(
                    Delivery.status == DeliveryStatus.SENDING
                )
            ).one()
        assert claimed > 0  # the dead sender's batch
        # Renewed by its heartbeat until it died, so it lapses within one lease of the kill.
        assert lapses_at <= killed_at + dt.timedelta(seconds=lease)
        wait_for(lambda: utcnow() > lapses_at, "the lease to lapse")
        recovered = jobs.tick(settings)  # one tick
        assert recovered["released"] + recovered["possibly_sent"] == claimed
        jobs.run_until_idle(settings, wait=True)

    with session_scope(settings) as session:
        campaign_id = session.scalar(select(func.max(Campaign.id)))
    assert campaign_id is not None
    statuses = ledger(settings, campaign_id)
    uncertain = {e for e, s in statuses.items() if s == DeliveryStatus.POSSIBLY_SENT}
    assert len(uncertain) <= 1  # at most the one message in flight when it died
    copies = relay.handler.copies()
    assert all(copies[e] == 1 for e in recipients if e not in uncertain)
    assert all(copies[e] <= 1 for e in uncertain)
