"""End-to-end sending speed: the sample issue to N subscribers via Celery workers into smtp-sink.

    python bench/send.py [--recipients 20000] [--workers 1 2] [--database postgresql|sqlite]

For each worker count it builds a fresh database with N subscribers, starts Postfix's
``smtp-sink`` and that many Celery worker processes (thread pool, ``--threads`` send lanes
each: a lane spends most of its time waiting on SMTP and database round trips), starts
the campaign and times it until every recipient is done. It prints messages/s, the workers' CPU
per message and their peak memory, then runs ``smtp-source`` (C) with messages of the same size
into the same sink and prints our rate as a fraction of it. Needs Redis on 127.0.0.1:6379 (uses
database 14) and, for PostgreSQL, the local server; run as root (smtp-sink drops to nobody).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from newsletter import jobs  # noqa: E402
from newsletter.config import Settings, load_settings  # noqa: E402
from newsletter.content.service import import_bulletin  # noqa: E402
from newsletter.db import session_scope, upgrade, utcnow  # noqa: E402
from newsletter.delivery import service  # noqa: E402
from newsletter.delivery.models import Campaign, CampaignStatus  # noqa: E402
from newsletter.issues.service import create_issue  # noqa: E402
from newsletter.render.service import render_issue  # noqa: E402
from newsletter.subscribers.models import MailingList, Subscriber, Subscription  # noqa: E402

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/14"
SECRET = "bench-secret-key-0123456789abcdefghijklmn"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fresh_database(kind: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}"
    name = f"nl_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def environment(database_url: str, smtp_port: int, lanes: int) -> dict[str, str]:
    return {
        "NEWSLETTER_DATABASE_URL": database_url,
        "NEWSLETTER_BROKER_URL": REDIS_URL,
        "NEWSLETTER_SECRET_KEY": SECRET,
        "NEWSLETTER_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "NEWSLETTER_POSTAL_ADDRESS": "Central Asia News Desk, 12 Abay Avenue, Almaty, Kazakhstan",
        "NEWSLETTER_MAX_CONNECTIONS": str(lanes),
        "NEWSLETTER_BATCH_SIZE": "500",
    }


def seed(settings: Settings, recipients: int) -> int:
    sample = (REPO / "newsletter" / "samples" / "bulletin-2025-12-11.txt").read_bytes()
    with session_scope(settings) as session:
        import_bulletin(session, sample)
        issue = create_issue(session, subject="Central Asia Weekly — 11 December 2025")
        render_issue(session, settings, issue.id)
        mailing_list = MailingList(name="weekly", description="")
        session.add(mailing_list)
        session.flush()
        for start in range(0, recipients, 10_000):
            rows = [
                {
                    "email": f"reader{n:07d}@example{n % 50}.org",
                    "name": f"Reader {n}",
                    "attributes": {},
                }
                for n in range(start, min(start + 10_000, recipients))
            ]
            session.execute(sa.insert(Subscriber), rows)
        session.execute(
            sa.insert(Subscription).from_select(
                ["subscriber_id", "list_id", "status", "created_at", "updated_at"],
                sa.select(
                    Subscriber.id,
                    sa.literal(mailing_list.id),
                    sa.literal("confirmed"),
                    sa.func.now(),
                    sa.func.now(),
                ),
            )
        )
        return issue.id


def message_size(settings: Settings, issue_id: int) -> int:
    with session_scope(settings) as session:
        campaign = service.create_campaign(session, issue_id=issue_id, list_names=["weekly"])
        message = service.campaign_message(session, settings, campaign.id)
        session.delete(campaign)
    from newsletter.delivery.message import RecipientValues

    raw = message.template.render(
        RecipientValues(
            email="reader0000001@example1.org",
            name="Reader 1",
            message_id="<d1.c1.x@news.example.org>",
            unsubscribe_url="https://news.example.org/u/token",
            view_url="https://news.example.org/issues/1",
        ),
        date=utcnow(),
        eight_bit=True,
    )
    return len(raw)


def tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def run_campaign(
    settings: Settings, issue_id: int, workers: int, threads: int, env: dict[str, str]
) -> tuple[float, float, float, int]:
    """Seconds, worker CPU seconds, peak worker RSS in MB, messages sent."""
    subprocess.run(["redis-cli", "-n", "14", "flushdb"], check=True, capture_output=True)
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers.app",
                "worker",
                "--pool=threads",
                f"--concurrency={threads}",
                f"--hostname=bench{n}@%h",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
                "--loglevel=WARNING",
            ],
            cwd=REPO,
            env={**os.environ, **env, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in range(workers)
    ]
    try:
        handles = [psutil.Process(p.pid) for p in processes]
        time.sleep(3)  # let the workers start
        cpu_before = sum(cpu_seconds(tree(h)) for h in handles)
        peak_rss = 0
        with session_scope(settings) as session:
            campaign = service.create_campaign(session, issue_id=issue_id, list_names=["weekly"])
            started = time.perf_counter()
            service.start_campaign(session, settings, campaign.id, utcnow())
            campaign_id = campaign.id
        jobs.kick(settings)
        while True:
            rss = 0
            for p in [p for h in handles for p in tree(h)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    rss += p.memory_info().rss
            peak_rss = max(peak_rss, rss)
            with session_scope(settings) as session:
                status = session.scalar(
                    sa.select(Campaign.status).where(Campaign.id == campaign_id)
                )
                sent = (
                    session.scalar(
                        sa.select(Campaign.recipient_count).where(Campaign.id == campaign_id)
                    )
                    or 0
                )
            if status == CampaignStatus.SENT:
                break
            time.sleep(0.5)  # the bench's own polling must not steal the workers' CPU
        elapsed = time.perf_counter() - started
        cpu = sum(cpu_seconds(tree(h)) for h in handles) - cpu_before
    finally:
        for process in processes:
            process.terminate()
            process.wait()
    return elapsed, cpu, peak_rss / 1e6, sent


def smtp_source(port: int, count: int, size: int, sessions: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        [
            "smtp-source",
            "-d",
            "-s",
            str(sessions),
            "-m",
            str(count),
            "-l",
            str(size),
            "-M",
            "localhost",
            "-f",
            "sender@example.com",
            "-t",
            "rcpt@example.com",
            f"127.0.0.1:{port}",
        ],
        check=True,
        capture_output=True,
    )
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="worker processes to try"
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="send lanes (threads) per worker process"
    )
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args()
    for tool in ("smtp-sink", "smtp-source", "redis-cli"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install postfix redis-tools")

    print(f"{args.recipients} recipients, database {args.database}, {os.cpu_count()} CPUs")
    print(
        f"{'workers':>7} {'seconds':>8} {'msgs/s':>8} {'CPU µs/msg':>11} {'peak MB':>8} "
        f"{'smtp-source msgs/s':>19} {'ratio':>6}"
    )
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as workdir:
            os.chdir(workdir)
            port = free_port()
            sink = subprocess.Popen(
                ["smtp-sink", "-u", "nobody", "-m", "1000", f"127.0.0.1:{port}", "1024"]
            )
            try:
                database_url = fresh_database(args.database, Path(workdir))
                upgrade(database_url)
                env = environment(database_url, port, workers * args.threads)
                settings = load_settings(env)
                issue_id = seed(settings, args.recipients)
                size = message_size(settings, issue_id)
                elapsed, cpu, peak_mb, sent = run_campaign(
                    settings, issue_id, workers, args.threads, env
                )
                reference = smtp_source(port, args.recipients, size, workers)
            finally:
                sink.terminate()
                sink.wait()
                drop_database(database_url)
            rate = sent / elapsed
            print(
                f"{workers:>7} {elapsed:>8.1f} {rate:>8.0f} {cpu / sent * 1e6:>11.0f} "
                f"{peak_mb:>8.0f} {reference:>19.0f} {rate / reference:>6.2f}"
            )
            print(f"        (message size {size} bytes)")


if __name__ == "__main__":
    main()
