"""Campaigns sent by real Celery worker processes over a real Redis, while things break.

Each test starts its own redis-server (so it can be restarted without touching anyone else's)
and its own worker processes; the test process plays Celery beat by calling ``jobs.tick``.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter import jobs
from newsletter.config import Settings, parse_smtp_url
from newsletter.db import session_scope, utcnow
from newsletter.delivery import service
from newsletter.delivery.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from newsletter.subscribers.models import Subscriber
from tests.conftest import REPO, make_env, unavailable
from tests.delivery import seed
from tests.delivery.relay import Relay, RelayHandler, free_port, running_relay

pytestmark = [pytest.mark.redis, pytest.mark.slow]
LEASE_SECONDS = 2
ROUND_BOUND_SECONDS = 120.0  # generous: a worker starting on a loaded machine is slow, not wrong


@dataclasses.dataclass
class RedisServer:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True
            ).stdout.strip()
            != b"PONG"
        ):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    server = RedisServer(free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


@contextmanager
def worker_process(env: dict[str, str], concurrency: int = 2) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.app",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=REPO,
        env={**os.environ, **env},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        kill(process)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and its pool children at once, as a crash would."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def worker_env(settings: Settings, relay: Relay, redis: RedisServer) -> dict[str, str]:
    return {
        **make_env(settings.database_url),
        "NEWSLETTER_BROKER_URL": redis.url,
        "NEWSLETTER_SMTP_URL": relay.env_url,
        "NEWSLETTER_LEASE_SECONDS": str(LEASE_SECONDS),
        "NEWSLETTER_BATCH_SIZE": "25",
        "NEWSLETTER_MAX_CONNECTIONS": "2",
        "NEWSLETTER_RETRY_SCHEDULE": "1,1,1",
        "NEWSLETTER_RATE_LIMIT": str(settings.rate_limit),
        "PYTHONPATH": str(REPO),
    }


def scale_out(settings: Settings, relay: Relay, redis: RedisServer) -> Settings:
    return dataclasses.replace(
        settings,
        broker_url=redis.url,
        smtp=parse_smtp_url(relay.env_url),
        lease_seconds=LEASE_SECONDS,
        batch_size=25,
        max_connections=2,
        retry_schedule=(1, 1, 1),
    )


def start_campaign(settings: Settings, recipients: int) -> tuple[int, list[str]]:
    issue_id = seed.rendered_issue(settings)
    emails = [f"w{n:05d}@example.org" for n in range(recipients)]
    seed.subscribers(settings, "weekly", emails)
    with session_scope(settings) as session:
        campaign = service.create_campaign(session, issue_id=issue_id, list_names=["weekly"])
        service.schedule_or_start(session, settings, campaign, utcnow())
        return campaign.id, emails


def finished(settings: Settings, campaign_id: int) -> bool:
    with session_scope(settings) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        return campaign.status == CampaignStatus.SENT


def beat_until_finished(settings: Settings, campaign_id: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not finished(settings, campaign_id):
        assert time.monotonic() < deadline, "the campaign did not finish in time"
        jobs.tick(settings)
        time.sleep(0.5)


def possibly_sent(settings: Settings, campaign_id: int) -> set[str]:
    with session_scope(settings) as session:
        return set(
            session.scalars(
                select(Subscriber.email)
                .join(Delivery, Delivery.subscriber_id == Subscriber.id)
                .where(
                    Delivery.campaign_id == campaign_id,
                    Delivery.status == DeliveryStatus.POSSIBLY_SENT,
                )
            )
        )


def assert_exactly_once(relay: Relay, emails: list[str], uncertain: set[str]) -> None:
    copies = relay.handler.copies()
    assert all(copies[e] <= 1 for e in emails), [e for e in emails if copies[e] > 1]
    missing = [e for e in emails if copies[e] == 0 and e not in uncertain]
    assert not missing


def test_workers_send_every_recipient_exactly_once(
    committed_settings: Settings, redis_server: RedisServer
) -> None:
    with running_relay() as relay:
        settings = scale_out(committed_settings, relay, redis_server)
        campaign_id, emails = start_campaign(settings, 300)
        with (
            worker_process(worker_env(settings, relay, redis_server)),
            worker_process(worker_env(settings, relay, redis_server)),
        ):
            jobs.kick(settings)
            beat_until_finished(settings, campaign_id, timeout=120)

    assert relay.handler.copies() == dict.fromkeys(emails, 1)


def test_killed_workers_and_a_redis_restart_lose_and_duplicate_nothing(
    committed_settings: Settings, redis_server: RedisServer
) -> None:
    rng = random.Random(20251211)
    with running_relay() as relay:
        settings = scale_out(committed_settings, relay, redis_server)
        # Slow enough (≈ 6 s of sending) that every kill lands mid-campaign.
        settings = dataclasses.replace(settings, rate_limit=100.0)
        campaign_id, emails = start_campaign(settings, 600)
        env = worker_env(settings, relay, redis_server)
        kills = 0
        for round_number in range(6):
            with worker_process(env) as process:
                jobs.kick(settings)
                # Kill once this worker has sent a random number of messages: waiting for the
                # event, not for a while, since a loaded machine may start a worker slowly.
                target = len(relay.handler.accepted) + rng.randint(1, 60)
                deadline = time.monotonic() + ROUND_BOUND_SECONDS
                while len(relay.handler.accepted) < target:
                    assert time.monotonic() < deadline, "the worker sent nothing in time"
                    jobs.tick(settings)
                    time.sleep(0.05)
                kill(process)
                kills += 1
            if round_number == 2:
                redis_server.stop()  # Redis dies mid-campaign, queued tasks with it
                redis_server.start()
            assert not finished(settings, campaign_id), "kills must land mid-campaign"
        assert 0 < len(relay.handler.accepted) < len(emails)
        with worker_process(env):
            beat_until_finished(settings, campaign_id, timeout=180)

    uncertain = possibly_sent(settings, campaign_id)
    # At most one message in flight per dead process; each kill ends two pool processes.
    assert len(uncertain) <= 2 * kills
    assert_exactly_once(relay, emails, uncertain)


def test_workers_ride_out_deferrals_rejections_throttling_and_drops(
    committed_settings: Settings, redis_server: RedisServer
) -> None:
    soft = {f"w{n:05d}@example.org" for n in range(0, 20, 4)}
    hard = {f"w{n:05d}@example.org" for n in range(1, 20, 4)}
    throttled = {"count": 0}

    def throttle_domain_twice(rcpt: str, _before: int) -> str | None:
        if not rcpt.endswith("@throttled.example"):
            return None
        throttled["count"] += 1
        return "421 4.7.0 slow down" if throttled["count"] <= 2 else None

    handler = RelayHandler(
        rules=[
            lambda rcpt, before: "451 4.3.0 later" if rcpt in soft and before == 0 else None,
            lambda rcpt, _before: "550 5.1.1 no such user" if rcpt in hard else None,
            throttle_domain_twice,
        ],
        drop_every=37,
    )
    with running_relay(handler) as relay:
        settings = scale_out(committed_settings, relay, redis_server)
        campaign_id, emails = start_campaign(settings, 200)
        throttled_emails = [f"t{n}@throttled.example" for n in range(10)]
        seed.subscribers(settings, "throttled", throttled_emails)
        with session_scope(settings) as session:
            first = session.get(Campaign, campaign_id)
            assert first is not None
            second = service.create_campaign(
                session, issue_id=first.issue_id, list_names=["throttled"]
            )
            service.schedule_or_start(session, settings, second, utcnow())
            second_id = second.id
        with worker_process(worker_env(settings, relay, redis_server)):
            jobs.kick(settings)
            beat_until_finished(settings, campaign_id, timeout=120)
            beat_until_finished(settings, second_id, timeout=120)

    good = [e for e in emails if e not in hard]
    assert relay.handler.copies() == dict.fromkeys([*good, *throttled_emails], 1)
    with session_scope(settings) as session:
        bounced = set(
            session.scalars(
                select(Subscriber.email)
                .join(Delivery, Delivery.subscriber_id == Subscriber.id)
                .where(
                    Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.BOUNCED
                )
            )
        )
    assert bounced == hard


def test_a_scheduled_campaign_resumed_is_sent_by_the_workers(
    committed_settings: Settings, redis_server: RedisServer
) -> None:
    with running_relay() as relay:
        settings = scale_out(committed_settings, relay, redis_server)
        issue_id = seed.rendered_issue(settings)
        emails = [f"s{n:03d}@example.org" for n in range(30)]
        seed.subscribers(settings, "weekly", emails)
        with session_scope(settings) as session:
            campaign = service.create_campaign(
                session,
                issue_id=issue_id,
                list_names=["weekly"],
                send_at=utcnow().replace(year=2099),
            )
            service.schedule_or_start(session, settings, campaign, utcnow())
            campaign_id = campaign.id
        with worker_process(worker_env(settings, relay, redis_server)):
            with session_scope(settings) as session:  # `campaign resume ID`, then its kick
                assert service.resume(session, settings, campaign_id).started == len(emails)
            jobs.kick(settings)
            beat_until_finished(settings, campaign_id, timeout=120)

    assert relay.handler.copies() == dict.fromkeys(emails, 1)
