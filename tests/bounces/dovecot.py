"""A real Dovecot (IMAP + POP3) for the mailbox poller tests, on free ports in a temp dir.

Dovecot refuses to run mail processes as root, so mail belongs to the ``mail`` user (uid 8)
and the temporary directory is made traversable for it. Authentication is a static password
over plaintext on 127.0.0.1 (no TLS: the poller's TLS path is imaplib's own).
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import unavailable

DOVECOT = Path("/usr/sbin/dovecot")
USER = "bounces"
PASSWORD = "secret-password"
START_TIMEOUT_SECONDS = 10.0

CONFIG = """\
protocols = imap pop3
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
first_valid_gid = {gid}
default_internal_user = dovecot
default_login_user = dovenull
pop3_uidl_format = %g
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
service pop3-login {{
  chroot =
}}
"""


@dataclass(frozen=True)
class Dovecot:
    root: Path
    imap_port: int
    pop3_port: int

    def imap_url(self, folder: str = "INBOX") -> str:
        return f"imap://{USER}:{PASSWORD}@127.0.0.1:{self.imap_port}/{folder}"

    def pop3_url(self) -> str:
        return f"pop3://{USER}:{PASSWORD}@127.0.0.1:{self.pop3_port}"

    def append(self, *messages: bytes, folder: str = "INBOX") -> None:
        """Deliver messages through IMAP APPEND (as an MTA's LDA would store them)."""
        with self.imap() as conn:
            for raw in messages:
                typ, _ = conn.append(folder, None, None, raw)
                assert typ == "OK"

    def count(self, folder: str) -> int:
        with self.imap() as conn:
            typ, data = conn.select(folder, readonly=True)
            if typ != "OK":
                return 0
            return int(data[0] or 0)

    @contextmanager
    def imap(self) -> Iterator[imaplib.IMAP4]:
        conn = imaplib.IMAP4("127.0.0.1", self.imap_port)
        conn.login(USER, PASSWORD)
        try:
            yield conn
        finally:
            conn.logout()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for(port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    text = log.read_text() if log.exists() else "(no log)"
    raise RuntimeError(f"dovecot did not listen on {port}:\n{text[-2000:]}")


@contextmanager
def running_dovecot() -> Iterator[Dovecot]:
    """Start a private Dovecot and stop it (and remove its files) afterwards."""
    if not DOVECOT.exists() or os.geteuid() != 0:
        unavailable("needs /usr/sbin/dovecot and root (to start it on private ports)")
    mail = pwd.getpwnam("mail")
    root = Path(tempfile.mkdtemp(prefix="dovecot-"))
    root.chmod(0o755)
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    for sub in ("mail", "home"):
        os.chown(root / sub, mail.pw_uid, mail.pw_gid)
    imap_port, pop3_port = free_port(), free_port()
    config = root / "dovecot.conf"
    config.write_text(
        CONFIG.format(
            root=root,
            uid=mail.pw_uid,
            gid=mail.pw_gid,
            password=PASSWORD,
            imap_port=imap_port,
            pop3_port=pop3_port,
        )
    )
    # -F: stay in the foreground, so the test owns the process and can stop exactly it.
    process = subprocess.Popen(
        [str(DOVECOT), "-F", "-c", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(imap_port, root / "dovecot.log")
        _wait_for(pop3_port, root / "dovecot.log")
        yield Dovecot(root, imap_port, pop3_port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=START_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)
