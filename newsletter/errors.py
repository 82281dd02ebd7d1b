"""Every exception the newsletter library raises on purpose.

The tree::

    NewsletterError
    ├── UserError                  the caller's mistake; the CLI prints one line and exits 2
    │   ├── NotFound               an id, name, address or file that does not exist
    │   ├── InvalidInput           a file or value that cannot be accepted (knows its line)
    │   │   ├── AlreadyExists      a name that is taken (also when a concurrent create won)
    │   │   └── LinkExpired        a genuine link that is used up or too old (web: 410)
    │   ├── InvalidTransition      a status change the lifecycle does not allow
    │   ├── AlreadySent            an issue sent (or being sent) to that audience already;
    │   │                          names the earlier campaign (``send --again`` overrides)
    │   ├── ConfigError            a bad NEWSLETTER_* setting (a database that does not exist,
    │   │                          a read-only database file for a command that writes, ...)
    │   ├── SchemaOutOfDate        the database schema is not the one this version needs
    │   └── CheckFailed            an issue that fails its pre-send check (knows its problems)
    ├── StorageError               the database or a file could not be written: disk full, I/O
    │   │                          error; the transaction was rolled back (the CLI exits 1)
    │   └── DatabaseUnavailable    the database cannot be reached now: refused, timed out,
    │                              locked, gone away; try again later
    ├── RenderError                a template that does not render (a bug in a template)
    ├── ImportFailed               an import job that a fault (not its file) stopped on the
    │                              process that ran it; that process's log has the details
    ├── DeliveryError              talking to the SMTP relay failed
    │   ├── TransientDeliveryError     retry later (4xx)
    │   │   └── RelayUnavailableError      the relay dropped us or said 421; says nothing of
    │   │       │                          the recipient (maybe_delivered: after the final dot)
    │   │       └── RelayUnreachableError  no connection at all: wait for the relay
    │   ├── PermanentDeliveryError     do not retry (5xx)
    │   └── UndeliverableAddress       an address this relay cannot carry (a non-ASCII local
    │                                  part without SMTPUTF8): found before the fence, the row
    │                                  fails and the batch goes on

A bounce that cannot be read is not an error: ``parse_bounce`` classifies it as unparseable.

Foreign exceptions (smtplib, imaplib, email-validator, SQLAlchemy) are translated into these
where the foreign library is called, with ``raise ... from exc``; nothing above that layer
catches a foreign exception. The database's errors are translated by the engine itself (see
``newsletter.db``), an ``OSError`` on a file the user named by ``file_error``.
"""

from __future__ import annotations

import errno
import os


class NewsletterError(Exception):
    """Root of every error the library raises on purpose."""


class UserError(NewsletterError):
    """Something the user can fix: a wrong id, a bad file, a bad option."""


class NotFound(UserError):
    """The thing asked for does not exist."""


class InvalidInput(UserError):
    """Input that cannot be accepted; ``line`` and ``column`` are 1-based, when known."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        self.line = line
        self.column = column
        where = [f"line {line}"] if line is not None else []
        if column is not None:
            where.append(f"column {column}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


class AlreadyExists(InvalidInput):
    """A name that is taken. Raised by the check before an insert, and by the unique index
    when a concurrent command created the same name between that check and the insert."""


class LinkExpired(InvalidInput):
    """A link we really issued that no longer works: expired, or already used (LAW-05)."""


class InvalidTransition(UserError):
    """A status change that the lifecycle does not allow."""


class AlreadySent(UserError):
    """The issue went (or is going) to this list or segment already: one send per audience."""

    def __init__(self, message: str, *, campaign_id: int) -> None:
        self.campaign_id = campaign_id
        super().__init__(message)


class ConfigError(UserError):
    """A NEWSLETTER_* environment variable has a bad value."""


class SchemaOutOfDate(UserError):
    """The database schema is behind (or ahead of) what this version of the code needs."""


class CheckFailed(UserError):
    """An issue failed its pre-send check; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("pre-send check failed: " + "; ".join(problems))


class StorageError(NewsletterError):
    """Writing (or reading) the database or a file failed for a reason the input did not
    cause: a full disk, an I/O error. What the transaction did was rolled back."""


class DatabaseUnavailable(StorageError):
    """The database cannot be reached or used right now (refused, timed out, locked)."""


class RenderError(NewsletterError):
    """A template failed to render (undefined variable, MJML syntax, ...)."""


class ImportFailed(NewsletterError):
    """An import job that a fault stopped (the database, a bug), reported by another process
    than the one that ran it: the runner's log holds the traceback."""


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


class UndeliverableAddress(DeliveryError):
    """The recipient's address cannot be sent through this relay; nothing was sent.

    Not a bounce (the relay never saw it) and not the campaign's fault: the row is ``failed``
    with the reason, and `campaign resend --unsent` may try it through a relay that can.
    """


# errno values that say the machine, not the path, is at fault: retrying elsewhere or later
# (after freeing space) helps, correcting the command line does not.
_STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG})


def file_error(action: str, path: str | os.PathLike[str], exc: OSError) -> NewsletterError:
    """Our error for an ``OSError`` on a file the user named: ``raise file_error(...) from exc``.

    ``action`` is a verb ("read", "write"). A full disk or an I/O error is a ``StorageError``;
    a missing file a ``NotFound``; anything else (a directory, no permission, a device) is the
    user's to fix, an ``InvalidInput``.
    """
    reason = exc.strerror or str(exc)
    message = f"cannot {action} {os.fspath(path)}: {reason}"
    if exc.errno in _STORAGE_ERRNOS:
        return StorageError(message)
    if isinstance(exc, FileNotFoundError):
        return NotFound(message)
    return InvalidInput(message)
