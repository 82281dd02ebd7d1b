"""Recognise automatic replies (out-of-office, vacation responders): they are not bounces (BNC-09).

RFC 3834 asks responders to send ``Auto-Submitted: auto-replied``, but bounces carry that
header too (Postfix, Exim, Exchange), and many responders send nothing standard at all. So a
message counts as an auto-reply when it has a responder signal and no bounce signal.
"""

from __future__ import annotations

import re
from email.message import Message

from newsletter.bounces.event import (
    BounceEvent,
    BounceKind,
    normalise_address,
    normalise_message_id,
)
from newsletter.bounces.mime import header

_RESPONDER_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Vacation")
_RESPONDER_PRECEDENCE = frozenset({"auto_reply", "auto-reply", "autoreply"})
_RESPONDER_SUBJECT = re.compile(
    r"out of (?:the )?office|automatic reply|auto[- ]?reply|auto[- ]?response|autoresponder"
    r"|vacation|on holiday|on leave|away from (?:the|my) office|abwesenheitsnotiz"
    r"|automatische antwort|r[ée]ponse automatique|absence du bureau|respuesta autom[áa]tica"
    r"|fuera de la oficina|risposta automatica|fuori ufficio|automatisch antwoord"
    r"|afwezigheidsbericht|resposta autom[áa]tica|automatyczna odpowied[źz]",
    re.IGNORECASE,
)
_BOUNCE_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status|failure|failed|has failed|notification)"
    r"|returned mail|failure notice|mail delivery failed|non[- ]?delivery|could not be delivered",
    re.IGNORECASE,
)


def is_auto_reply(msg: Message) -> bool:
    """A responder signal (RFC 3834 header, vendor header or subject) and no bounce signal."""
    if _looks_like_bounce(msg):
        return False
    auto_submitted = (header(msg, "Auto-Submitted") or "").lower()
    if auto_submitted.startswith("auto-replied"):
        return True
    if any(msg.get(name) is not None for name in _RESPONDER_HEADERS):
        return True
    if (header(msg, "Precedence") or "").lower() in _RESPONDER_PRECEDENCE:
        return True
    return _RESPONDER_SUBJECT.search(header(msg, "Subject") or "") is not None


def auto_reply_event(msg: Message, envelope_rcpt: str | None) -> BounceEvent:
    """The responder is the subscriber; In-Reply-To names the message it answers."""
    return BounceEvent(
        kind=BounceKind.AUTO_REPLY,
        recipient=normalise_address(header(msg, "From")),
        status=None,
        diagnostic=header(msg, "Subject"),
        envelope_rcpt=envelope_rcpt,
        original_message_id=normalise_message_id(header(msg, "In-Reply-To")),
        classifier="autoreply",
    )


def _looks_like_bounce(msg: Message) -> bool:
    if msg.get("X-Failed-Recipients") is not None:
        return True
    if _BOUNCE_SENDER.search(header(msg, "From") or ""):
        return True
    return _BOUNCE_SUBJECT.search(header(msg, "Subject") or "") is not None
