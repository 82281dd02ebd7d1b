#!/usr/bin/env python3
"""Quick start: ``python3 dev.py demo`` runs the main job, ``python3 dev.py test`` runs the checks.

Needs only Python 3.11: it creates ``.venv`` and installs the project into it on first use.
``test`` also installs the Debian packages the tests drive (chromium, dovecot) when it can,
starts PostgreSQL and Redis if they are installed but not running, then runs ruff, mypy,
import-linter and pytest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".installed"


def run(*command: str | Path, check: bool = True, **kwargs: object) -> int:
    print("+", " ".join(str(c) for c in command), flush=True)
    return subprocess.run([str(c) for c in command], check=check, cwd=ROOT, **kwargs).returncode  # type: ignore[call-overload]


def ensure_venv(extras: str) -> None:
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = f"{extras}:{(ROOT / 'pyproject.toml').stat().st_mtime_ns}"
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", f".[{extras}]" if extras else ".")
    STAMP.write_text(wanted)


# Debian packages the tests drive for real: the browser that checks how emails render, and the
# IMAP/POP3 server the bounce mailbox poller is tested against.
TEST_PACKAGES = {
    "chromium": "/usr/bin/chromium",
    "dovecot-imapd": "/usr/sbin/dovecot",
    "dovecot-pop3d": "/usr/lib/dovecot/pop3",
}


def ensure_test_packages() -> None:
    missing = [name for name, path in TEST_PACKAGES.items() if not Path(path).exists()]
    if not missing or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-q", env=env)
    run("apt-get", "install", "-y", "-q", *missing, env=env)


def ensure_services() -> None:
    """Start the local PostgreSQL and Redis if they are installed but not running."""
    if shutil.which("redis-cli") and run(
        "redis-cli", "ping", check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ):
        run(
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            check=False,
        )
    if shutil.which("pg_isready") and run("pg_isready", "-h", "127.0.0.1", "-q", check=False):
        clusters = (
            sorted(p.name for p in Path("/etc/postgresql").glob("*"))
            if Path("/etc/postgresql").exists()
            else []
        )
        if clusters:
            run(
                "pg_ctlcluster",
                "--skip-systemctl-redirect",
                clusters[-1],
                "main",
                "start",
                check=False,
            )


def demo(args: list[str]) -> int:
    ensure_venv("")
    return run(BIN / "newsletter", "demo", *args, check=False)


def test(args: list[str]) -> int:
    ensure_venv("test")
    ensure_test_packages()
    ensure_services()
    for check in (
        [BIN / "ruff", "check", "."],
        [BIN / "mypy"],
        [BIN / "lint-imports"],
    ):
        if run(*check, check=False):
            return 1
    return run(BIN / "pytest", *args, check=False)


COMMANDS = {"demo": demo, "test": test}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(f"usage: python3 dev.py {{{'|'.join(COMMANDS)}}} [args…]")
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
