"""The README's first command: the demo runs end to end with no configuration at all."""

from __future__ import annotations

import email
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_demo_runs_the_whole_pipeline_on_embedded_defaults(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["PYTHONPATH"] = str(REPO)

    result = subprocess.run(
        [sys.executable, "-m", "newsletter", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "newsletter.db").exists()
    assert "%%NL." not in (tmp_path / "preview.html").read_text()
    assert "Two-Dimensional Outlook" in (tmp_path / "preview.txt").read_text()
    messages = sorted((tmp_path / "outbox").glob("*.eml"))
    recipients = {email.message_from_bytes(m.read_bytes())["To"] for m in messages}
    assert len(messages) == 6
    assert not any("no-such-reader" in r for r in recipients)
    assert "suppressed: moved-away@example.net (bounced)" in result.stdout
    assert "suppressed: no-such-reader@example.org (bounced)" in result.stdout
    assert "line 8: the name contains a line break" in result.stdout

    again = subprocess.run(
        [sys.executable, "-m", "newsletter", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert again.returncode == 0, again.stderr
    assert "bulletin already there" in again.stdout
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 5  # the bounced two are not mailed


def test_on_a_terminal_the_demo_serves_the_links_of_its_outbox(tmp_path: Path) -> None:
    import pty
    import re
    import signal
    import threading
    import time

    import httpx

    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["PYTHONPATH"] = str(REPO)
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "demo"],
        cwd=tmp_path,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    output: list[bytes] = []

    def drain() -> None:  # a full pty would block the demo
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            output.append(chunk)

    threading.Thread(target=drain, daemon=True).start()
    try:
        deadline = time.monotonic() + 300
        archive = None
        while archive is None and time.monotonic() < deadline and process.poll() is None:
            archive = re.search(rb"archive:\s+(http://127\.0\.0\.1:\d+)/archive", b"".join(output))
            time.sleep(0.2)
        assert archive is not None, b"".join(output).decode(errors="replace")
        base = archive.group(1).decode()
        assert b"/subscribe/central-asia-weekly" in b"".join(output)

        assert "Central Asia Weekly" in httpx.get(f"{base}/archive").text
        first = sorted((tmp_path / "outbox").glob("*.eml"))[0]
        message = email.message_from_bytes(first.read_bytes())
        unsubscribe = re.findall(r"<(http[^>]+)>", str(message["List-Unsubscribe"]))[0]
        assert unsubscribe.startswith(base)
        assert httpx.get(unsubscribe).status_code == 200
        assert httpx.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 200
        assert "already unsubscribed" in httpx.get(unsubscribe).text
        assert httpx.get(f"{base}/issues/1").status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        os.close(master)
    assert process.returncode == 0
