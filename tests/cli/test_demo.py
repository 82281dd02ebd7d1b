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
