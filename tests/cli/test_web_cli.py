"""``newsletter web --workers 2``: a real server of two processes that share no memory; the
request metrics of both are reported by whichever answers /metrics (multiprocess mode)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from newsletter.db import upgrade
from tests.conftest import REPO, make_env
from tests.delivery.relay import free_port

pytestmark = pytest.mark.slow
START_SECONDS = 60
MAX_REQUESTS = 400


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    url = f"sqlite:///{tmp_path / 'web.db'}"
    upgrade(url)
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(make_env(url), PYTHONPATH=str(REPO), PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "web", "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"newsletter web did not start: {process.stdout.read()!r}")  # type: ignore[union-attr]
        time.sleep(0.1)
    yield base, metrics_dir
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def archive_count(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "newsletter_http_request_duration_seconds_count"
        and sample.labels.get("route") == "/archive"
    )


def test_two_workers_report_one_request_count(server: tuple[str, Path]) -> None:
    base, metrics_dir = server
    sent = 0
    # New connections until both workers have answered (each keeps its own file).
    while sent < MAX_REQUESTS and (sent < 20 or len(list(metrics_dir.glob("histogram_*.db"))) < 2):
        assert httpx.get(f"{base}/archive").status_code == 200
        sent += 1

    assert len(list(metrics_dir.glob("histogram_*.db"))) == 2
    assert archive_count(httpx.get(f"{base}/metrics").text) == sent


def test_a_port_that_is_taken_is_one_line(run_cli) -> None:  # type: ignore[no-untyped-def]
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run_cli("web", "--port", str(port))

    assert result.exit_code == 2
    assert result.stderr.strip().startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr + result.stdout
