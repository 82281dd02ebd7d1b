"""Long-running work as plain functions; a Celery task (``workers/``) only calls one of them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from newsletter.config import Settings
from newsletter.db import session_factory, session_scope, utcnow
from newsletter.subscribers.consent import purge_unconfirmed
from newsletter.subscribers.importer import ImportMode, run_import
from newsletter.subscribers.models import ConsentSource, LegalBasis
from newsletter.subscribers.service import get_list


def import_file(
    settings: Settings,
    path: str | Path,
    list_name: str,
    upsert: bool = False,
    reactivate: bool = False,
    *,
    legal_basis: LegalBasis = LegalBasis.CONSENT,
    check_deliverability: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Import a subscriber CSV into the list named ``list_name``; a JSON-ready summary.

    Commits after every batch (see ``run_import``): safe to run again after a crash, and the
    task may be ``acks_late``. ``{"created", "updated", "unchanged", "errors", "error_count"}``.
    """
    with session_scope(settings) as session:
        list_id = get_list(session, list_name).id
    result = run_import(
        session_factory(settings).begin,
        Path(path),
        list_id,
        pepper=settings.secret_key,
        mode=ImportMode.UPSERT if upsert else ImportMode.ADD,
        reactivate_suppressed=reactivate,
        source=ConsentSource.IMPORT,
        legal_basis=legal_basis,
        check_deliverability=check_deliverability,
        progress=progress,
    )
    return result.as_document()


UNCONFIRMED_PURGE_DAYS = 30  # candidate for a NEWSLETTER_* setting


def purge_stale_unconfirmed(
    settings: Settings, days: int = UNCONFIRMED_PURGE_DAYS
) -> dict[str, int]:
    """Daily: forget double opt-in sign-ups never confirmed within ``days`` (LAW-05)."""
    with session_scope(settings) as session:
        purged = purge_unconfirmed(session, older_than=dt.timedelta(days=days), now=utcnow())
    return {"purged": purged}
