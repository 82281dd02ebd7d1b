"""The subscriber stage's jobs as ``newsletter/jobs.py`` calls them today: from ``Settings``.

Transitional. These two open their own sessions, which only the edges should do; they stay
here, with the signatures ``newsletter/jobs.py`` calls, while issue 10 rewrites that module,
and move into it (its task wrappers) with issue 12's part for it, when this module goes. The
work itself is in ``import_runs`` and ``consent``, which take their sessions from the caller.
``tests/test_sessions.py`` allows these two and nothing else in the stage.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from newsletter.config import Settings
from newsletter.db import session_factory, session_scope, utcnow
from newsletter.subscribers.consent import purge_unconfirmed
from newsletter.subscribers.import_runs import ImportSessions
from newsletter.subscribers.import_runs import run_import_job as run_job
from newsletter.subscribers.importjob import ImportJobReport

UNCONFIRMED_PURGE_DAYS = 30  # candidate for a NEWSLETTER_* setting


def run_import_job(
    settings: Settings, job_id: int, *, progress: Callable[[int], None] | None = None
) -> ImportJobReport:
    """The ``import_subscribers`` job: ``import_runs.run_import_job`` on this database."""
    sessions = ImportSessions(
        write=session_factory(settings).begin,
        read=session_factory(settings, readonly=True).begin,
    )
    return run_job(sessions, job_id, pepper=settings.secret_key, progress=progress)


def purge_stale_unconfirmed(
    settings: Settings, days: int = UNCONFIRMED_PURGE_DAYS
) -> dict[str, int]:
    """Daily: forget double opt-in sign-ups never confirmed within ``days`` (LAW-05)."""
    with session_scope(settings) as session:
        purged = purge_unconfirmed(session, older_than=dt.timedelta(days=days), now=utcnow())
    return {"purged": purged}
