"""Throughput of bounce intake over SMTP, and of processing, on the test corpus.

Run: ``python bench/bounces.py [messages] [--clients N] [--database-url URL]`` (default 10,000
messages, 8 client processes, a fresh SQLite file in a temp dir; give a PostgreSQL URL to an
empty database to measure that instead — it is migrated first).

Phase 1, intake: the messages (the ``tests/bounces/corpus`` files in turn, each made unique with
its own ``Received`` line and envelope recipient, as real bounces are) are sent over SMTP by N
client processes, each reusing one connection, to ``running_receiver``. Each message is stored and
committed before its 250. The hand-off only collects ids, so this phase is intake alone.
Phase 2, processing: the stored ids are processed in one thread with ``process_message`` (parse,
match, decide, apply, one transaction each), as the receiver's worker thread does in embedded
mode. Figures are wall time, messages per second.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import smtplib
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from newsletter.bounces.processing import process_message  # noqa: E402
from newsletter.bounces.sources.receiver import running_receiver  # noqa: E402
from newsletter.config import load_settings  # noqa: E402
from newsletter.db import session_factory, upgrade, utcnow  # noqa: E402

CORPUS = REPO / "tests" / "bounces" / "corpus"
SECRET = "bench-secret-key-0123456789abcdefghijklmnop"


def corpus() -> list[bytes]:
    return [path.read_bytes() for path in sorted(CORPUS.glob("*/*.eml"))]


def send(port: int, chunk: list[tuple[str, bytes]]) -> None:
    """One client connection sending its share (in its own process: no GIL shared with us)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        for rcpt, raw in chunk:
            smtp.sendmail("", [rcpt], raw)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("messages", nargs="?", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    # flufl.bounce logs a traceback for each detector that trips on a hostile sample, and the
    # service a warning per policy rejection: thousands of lines that would time the terminal.
    logging.disable(logging.CRITICAL)

    tmp = Path(tempfile.mkdtemp(prefix="bench-bounces-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    upgrade(url)
    settings = load_settings(
        {
            "NEWSLETTER_DATABASE_URL": url,
            "NEWSLETTER_SECRET_KEY": SECRET,
            "NEWSLETTER_BASE_URL": "https://news.example.org",
            "NEWSLETTER_FROM": "Weekly <bulletin@news.example.org>",
            "NEWSLETTER_POSTAL_ADDRESS": "1 Bench Street, Almaty",
        }
    )
    domain = settings.bounce_address.domain
    samples = corpus()
    messages = [
        (
            f"bounces+bench{n}@{domain}",
            f"Received: from mx{n}.example.net by bounces.{domain}; bench {n}\r\n".encode()
            + samples[n % len(samples)],
        )
        for n in range(args.messages)
    ]
    stored: list[int] = []
    lock = threading.Lock()

    def collect(bounce_message_id: int) -> None:
        with lock:
            stored.append(bounce_message_id)

    port = free_port()
    sessions = session_factory(settings).begin
    with running_receiver(settings, collect, sessions=sessions, port=port):
        chunks = [messages[i :: args.clients] for i in range(args.clients)]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.clients, mp_context=context) as pool:
            # Start the client processes (and their imports) before the clock does.
            list(pool.map(time.sleep, [0.2] * args.clients))
            started = time.perf_counter()
            list(pool.map(send, [port] * len(chunks), chunks))
            intake = time.perf_counter() - started
    size = sum(len(raw) for _, raw in messages)
    print(f"backend: {url.split(':', 1)[0]}, {args.messages} messages, {size / 1e6:.1f} MB")
    print(
        f"intake over SMTP (store + commit before 250), {args.clients} connections: "
        f"{args.messages / intake:,.0f} messages/s ({intake:.1f} s)"
    )
    assert len(set(stored)) == args.messages, f"stored {len(set(stored))} of {args.messages}"

    started = time.perf_counter()
    for bounce_message_id in stored:
        with sessions() as session:  # a transaction per message, as the job does
            process_message(session, settings, bounce_message_id, utcnow())
    processing = time.perf_counter() - started
    print(
        f"processing (parse + match + decide + apply), 1 thread: "
        f"{args.messages / processing:,.0f} messages/s ({processing:.1f} s)"
    )


if __name__ == "__main__":
    main()
