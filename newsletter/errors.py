"""Every exception the newsletter library raises on purpose.

The tree::

    NewsletterError
    ├── UserError                  the caller's mistake; the CLI prints one line and exits 2
    │   ├── NotFound               an id, name or address that does not exist
    │   ├── InvalidInput           a file or value that cannot be accepted (knows its line)
    │   │   └── LinkExpired            a genuine link that is used up or too old (web: 410)
    │   ├── InvalidTransition      a status change the lifecycle does not allow
    │   ├── ConfigError            a bad NEWSLETTER_* setting
    │   └── CheckFailed            an issue that fails its pre-send check (knows its problems)
    ├── RenderError                a template that does not render (a bug in a template)
    ├── DeliveryError              talking to the SMTP relay failed
    │   ├── TransientDeliveryError     retry later (4xx)
    │   │   └── RelayUnavailableError      the relay dropped us or said 421; says nothing of
    │   │       │                          the recipient (maybe_delivered: after the final dot)
    │   │       └── RelayUnreachableError  no connection at all: wait for the relay
    │   └── PermanentDeliveryError     do not retry (5xx)

A bounce that cannot be read is not an error: ``parse_bounce`` classifies it as unparseable.

Foreign exceptions (smtplib, imaplib, email-validator, SQLAlchemy) are translated into these
where the foreign library is called, with ``raise ... from exc``; nothing above that layer
catches a foreign exception.
"""

from __future__ import annotations


class NewsletterError(Exception):
    """Root of every error the library raises on purpose."""


class UserError(NewsletterError):
    """Something the user can fix: a wrong id, a bad file, a bad option."""


class NotFound(UserError):
    """The thing asked for does not exist."""


class InvalidInput(UserError):
    """Input that cannot be accepted; ``line`` is the 1-based line number when known."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)


class LinkExpired(InvalidInput):
    """A link we really issued that no longer works: expired, or already used (LAW-05)."""


class InvalidTransition(UserError):
    """A status change that the lifecycle does not allow."""


class ConfigError(UserError):
    """A NEWSLETTER_* environment variable has a bad value."""


class CheckFailed(UserError):
    """An issue failed its pre-send check; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("pre-send check failed: " + "; ".join(problems))


class RenderError(NewsletterError):
    """A template failed to render (undefined variable, MJML syntax, ...)."""


class DeliveryError(NewsletterError):
    """Talking to the SMTP relay failed."""

    def __init__(
        self, message: str, *, code: int | None = None, enhanced_status: str | None = None
    ) -> None:
        self.code = code
        self.enhanced_status = enhanced_status
        super().__init__(message)


class TransientDeliveryError(DeliveryError):
    """Retry later: a 4xx reply or a dropped connection."""


class RelayUnavailableError(TransientDeliveryError):
    """The relay is down, dropped the connection, timed out or answered 421.

    ``maybe_delivered`` is True when the connection broke after the whole message was sent:
    the relay may have queued it, so sending it again could duplicate it.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        enhanced_status: str | None = None,
        maybe_delivered: bool = False,
    ) -> None:
        self.maybe_delivered = maybe_delivered
        super().__init__(message, code=code, enhanced_status=enhanced_status)


class RelayUnreachableError(RelayUnavailableError):
    """No connection to the relay could be made: nothing was sent, no recipient was judged."""


class PermanentDeliveryError(DeliveryError):
    """Do not retry: a 5xx reply."""
