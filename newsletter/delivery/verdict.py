"""One SMTP verdict for the whole pipeline: what a reply code and enhanced status say (BNC-03).

The send loop (``delivery.policy``) classifies the relay's reply to RCPT or DATA, and the bounce
stage (``bounces.classify``) classifies the status of a DSN or a provider webhook, with the same
function: ``classify(code, enhanced_status, text)``. The code and the enhanced status travel as
fields; ``text`` is read only for the wording of block lists when the code itself is generic.

The table:

* **hard**, the address does not work: 5.1.x (bad mailbox, bad domain, moved, null MX), a bare
  550 "no such user", and every 5.x.x not listed below;
* **soft**, the mailbox exists but cannot take this message now: 5.2.2 and 4.2.2 mailbox full
  (RFC 3463 §3.3 calls it persistent transient), 5.2.3 and 5.3.4 message too big;
* **policy**, refused because of us (block list, reputation, authentication, content): every
  5.7.x, and block-list wording next to a generic code (5.0.0, 5.5.0, a bare 550/554);
* **throttled**, a 4.7.x "slow down": about the sender's rate, so several recipients of one
  domain saying it back the domain off (AUTH-07);
* **closing**, 421: the server is closing the channel; says nothing about the recipient;
* **deferred**, any other 4xx: try this recipient again later;
* **accepted**, a 2xx.

Pure: no I/O, no SQLAlchemy, not even indirectly (an import-linter contract checks it), so that
every stage may import it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

SERVICE_CLOSING = 421  # RFC 5321 §4.2.2: the server is closing the transmission channel
SOFT_PERMANENT_STATUSES = frozenset({"5.2.2", "5.2.3", "5.3.4"})
MAILBOX_FULL_TRANSIENT = "4.2.2"
# Codes that say nothing beyond "it failed": the wording decides then.
GENERIC_STATUSES = frozenset({"5.0.0", "4.0.0", "5.5.0", "4.5.0"})

# Block-list and reputation wording of the bounce corpus (tests/bounces/corpus/blocklist, …).
_POLICY_TEXT = re.compile(
    r"block(?:ed|list|ing)|spamhaus|black\s?list|(?<!not )\blisted\b|reputation|\bspamcop\b|\brbl\b"
    r"|\bdnsbl\b|barracuda|\bsorbs\b|rejected\s+(?:as|because\s+of)\s+spam|spam\s+(?:policy|detected)"
    # Provider wordings seen in real rejections: "Comcast block for spam … #BL000000",
    # "550 Denied due to spam list".
    r"|\bblock\s+for\s+spam|\bBL\d{6}\b|spam\s+list",
    re.IGNORECASE,
)
_ENHANCED = re.compile(r"(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?!\.?\d)")


class Verdict(enum.StrEnum):
    """What one SMTP reply (or one reported status) means for the recipient."""

    ACCEPTED = "accepted"
    HARD = "hard"  # the address does not work: the only verdict that bounces a recipient
    SOFT = "soft"  # mailbox full, message too big: retry, and the bounce policy counts it
    POLICY = "policy"  # block list, reputation, authentication, content: our fault, not theirs
    THROTTLED = "throttled"  # 4.7.x: slow down; a domain-wide signal when several recipients say it
    CLOSING = "closing"  # 421: the server closes the channel; the domain backs off
    DEFERRED = "deferred"  # another 4xx: this recipient is retried on the schedule
    UNKNOWN = "unknown"  # no code and no known wording


@dataclass(frozen=True, slots=True)
class SmtpReply:
    """An SMTP reply as fields: the basic code, the enhanced status and the text."""

    code: int | None  # 550; None when only an enhanced status is known (a DSN)
    enhanced_status: str | None  # "5.7.1"; None when the server gave none
    text: str  # as the server sent it, for people and for block-list wording

    @property
    def verdict(self) -> Verdict:
        return classify(self.code, self.enhanced_status, self.text)

    @property
    def status(self) -> str | None:
        """The enhanced status, or the class of the basic code ("5.0.0") when there is none."""
        return effective_status(self.code, self.enhanced_status)


def classify(code: int | None, enhanced_status: str | None, text: str | None = None) -> Verdict:
    """The verdict for one reply; see the module docstring for the table."""
    if code == SERVICE_CLOSING:
        return Verdict.CLOSING
    status = effective_status(code, enhanced_status)
    if status is None:
        return Verdict.POLICY if mentions_policy(text) else Verdict.UNKNOWN
    klass, subject, _detail = status.split(".")
    if klass == "2":
        return Verdict.ACCEPTED
    if status in GENERIC_STATUSES and mentions_policy(text):
        return Verdict.POLICY
    if klass == "4":
        if subject == "7":
            return Verdict.THROTTLED
        return Verdict.SOFT if status == MAILBOX_FULL_TRANSIENT else Verdict.DEFERRED
    if subject == "7":
        return Verdict.POLICY
    return Verdict.SOFT if status in SOFT_PERMANENT_STATUSES else Verdict.HARD


def effective_status(code: int | None, enhanced_status: str | None) -> str | None:
    """A valid enhanced status, else "4.0.0"/"5.0.0" for a basic 4xx/5xx code, else None."""
    if enhanced_status:
        match = _ENHANCED.search(enhanced_status)
        if match is not None and (code is None or str(code)[0] == match.group(1)[0]):
            return match.group(1)
    if code is not None and 200 <= code < 600 and str(code)[0] in "245":
        return f"{str(code)[0]}.0.0"
    return None


def mentions_policy(text: str | None) -> bool:
    return bool(text) and _POLICY_TEXT.search(text or "") is not None
