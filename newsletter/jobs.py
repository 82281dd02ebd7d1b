"""Units of background work, and how they are run: in-process, or on Celery workers.

Each job opens its own sessions (it owns its unit of work: only the edges, this module, the
CLI and the web app, open and commit transactions) and returns a small JSON-able summary; what
a batch of sending is given comes from ``sending``. ``submit`` runs a job right here when no
broker is configured (embedded mode), or sends it to the workers by name when
``NEWSLETTER_BROKER_URL`` is set; ``workers/tasks.py`` registers one thin Celery task per job
under the same name. The library never imports ``workers``: it only knows the task names.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import cache
from typing import Any

from newsletter import sending
from newsletter.bounces import intake, processing
from newsletter.bounces.models import BounceSource
from newsletter.bounces.sources import mailbox
from newsletter.config import Settings, load_settings
from newsletter.db import session_factory, session_scope, utcnow
from newsletter.delivery import lanes, ledger, outbox, transactional
from newsletter.delivery import service as delivery_service
from newsletter.delivery.context import Progress
from newsletter.delivery.sender import StopReason
from newsletter.delivery.transports import Transport
from newsletter.errors import NewsletterError
from newsletter.render import service as render_service
from newsletter.subscribers import consent, import_runs
from newsletter.subscribers.import_runs import ImportSessions

TASK_PREFIX = "newsletter."
logger = logging.getLogger(__name__)
# Longest sleep of the in-process loop between checks, so Ctrl-C and pauses are seen quickly.
IDLE_POLL_SECONDS = 1.0
UNCONFIRMED_PURGE_DAYS = 30  # candidate for a NEWSLETTER_* setting


def assemble_issue(issue_id: int, settings: Settings | None = None) -> dict[str, Any]:
    """Render an issue once and store the HTML and text that every recipient will get."""
    settings = settings or load_settings()
    with session_scope(settings) as session:
        rendering = render_service.render_issue(session, settings, issue_id)
        return {"issue": issue_id, "html_bytes": rendering.html_bytes}


def start_campaign(campaign_id: int, settings: Settings | None = None) -> dict[str, Any]:
    """Create the campaign's ledger rows and set the send lanes going."""
    settings = settings or load_settings()
    with session_scope(settings) as session:
        recipients = delivery_service.start_campaign(session, settings, campaign_id, utcnow())
    kick(settings)
    return {"campaign": campaign_id, "recipients": recipients}


def send_lane(lane: int, settings: Settings | None = None) -> dict[str, Any]:
    """Send one batch on ``lane``; on workers, queue the lane's next batch when one is due."""
    settings = settings or load_settings()
    result = sending.run_batch(settings, lane)
    lane_busy = result.stopped is StopReason.LANE_BUSY  # its holder queues the lane's next batch
    if not settings.in_process and result.next_due_at is not None and not lane_busy:
        delay = max(0.0, (result.next_due_at - utcnow()).total_seconds())
        submit(settings, "send_lane", countdown=delay, lane=lane)
    return {
        "lane": lane,
        "campaign": result.campaign_id,
        "sent": result.sent,
        "stopped": result.stopped.value if result.stopped else None,
    }


def tick(settings: Settings | None = None) -> dict[str, Any]:
    """Periodic upkeep (beat): start due campaigns, recover dead workers' rows, kick lanes."""
    settings = settings or load_settings()
    now = utcnow()
    with session_scope(settings) as session:
        lanes.ensure_lanes(session, settings.max_connections)
        started = delivery_service.start_due_campaigns(session, settings, now)
        released, possibly_sent = ledger.recover_expired_leases(session, now)
        if delivery_service.sending_campaign_ids(session):
            ledger.refresh_statistics(session)
        # Read in this transaction: on SQLite each one takes the write lock.
        due_mail = outbox.due_ids(session, now)
    kicked = kick(settings)
    for message_id in due_mail:
        submit(settings, "send_transactional", message_id=message_id)
    return {
        "started": started,
        "released": released,
        "possibly_sent": possibly_sent,
        "lanes": kicked,
        "transactional": len(due_mail),
    }


def import_subscribers(job_id: int, settings: Settings | None = None) -> dict[str, Any]:
    """Run a queued import job (its file is in the database); commits per batch, so running
    it again after a crash completes it. Progress and errors are on the job's row."""
    settings = settings or load_settings()
    sessions = ImportSessions(
        write=session_factory(settings).begin,
        read=session_factory(settings, readonly=True).begin,
    )
    report = import_runs.run_import_job(
        sessions,
        job_id,
        pepper=settings.secret_key,
        progress=lambda rows: logger.info("import job %d: %d rows done", job_id, rows),
    )
    return {"job": job_id, "status": report.status.value, "rows": report.rows_done}


def process_bounce(bounce_message_id: int, settings: Settings | None = None) -> dict[str, Any]:
    """Parse and apply one stored bounce message (processing it twice changes nothing)."""
    settings = settings or load_settings()
    with session_scope(settings) as session:
        results = processing.process_message(session, settings, bounce_message_id, utcnow())
    return {
        "message": bounce_message_id,
        "events": len(results),
        "actions": dict(Counter(result.action.value for result in results)),
    }


def send_transactional(message_id: int, settings: Settings | None = None) -> dict[str, Any]:
    """Send one queued transactional mail (a confirmation); a failure is retried by ``tick``."""
    settings = settings or load_settings()
    transport = sending.new_transport(settings)
    try:
        return transactional.send_queued(
            session_factory(settings).begin,
            settings,
            transport,
            message_id,
            signer=sending.dkim_signer(settings),
        ).as_document()
    finally:
        transport.close()


def send_due_transactional(settings: Settings) -> int:
    """Hand every due transactional mail to ``send_transactional`` (here, or on the workers),
    as ``tick`` does; the web app runs it in embedded mode. Returns how many were handed over."""
    with session_scope(settings) as session:
        due = outbox.due_ids(session, utcnow())
    for message_id in due:
        submit(settings, "send_transactional", message_id=message_id)
    return len(due)


def purge_unconfirmed(settings: Settings | None = None) -> dict[str, Any]:
    """Daily: forget double opt-in sign-ups never confirmed within 30 days (LAW-05)."""
    with session_scope(settings or load_settings()) as session:
        purged = consent.purge_unconfirmed(
            session, older_than=dt.timedelta(days=UNCONFIRMED_PURGE_DAYS), now=utcnow()
        )
    return {"purged": purged}


def task_name(job: str) -> str:
    return TASK_PREFIX + job


def submit(
    settings: Settings, job: str, *, countdown: float = 0, **kwargs: Any
) -> dict[str, Any] | None:
    """Run ``job`` now (embedded mode) and return its summary, or queue it and return None.

    Call it after the caller's transaction has committed: a worker must see the rows.
    """
    if settings.in_process:
        return JOBS[job](settings=settings, **kwargs)
    _celery_client(settings.broker_url).send_task(
        task_name(job), kwargs=kwargs, countdown=countdown or None
    )
    return None


def kick(settings: Settings) -> list[int]:
    """On workers: queue a batch on every free lane while a campaign has work due."""
    if settings.in_process:
        return []  # the in-process loop (run_until_idle) does the sending
    now = utcnow()
    with session_scope(settings) as session:
        lanes.ensure_lanes(session, settings.max_connections)
        free = lanes.free_lanes(session, settings.max_connections, now)
        due = any(
            (ledger.next_due_at(session, c, now) or now + dt.timedelta(days=1)) <= now
            for c in delivery_service.sending_campaign_ids(session)
        )
    if not due:
        return []
    for lane in free:
        submit(settings, "send_lane", lane=lane)
    return free


def run_until_idle(
    settings: Settings,
    *,
    wait: bool,
    progress: Progress | None = None,
    idle: Callable[[dt.datetime], None] | None = None,
    transport: Transport | None = None,
) -> None:
    """Embedded mode: send every due batch in this process; with ``wait``, until all are done.

    Retries that are not due yet are left for the next run unless ``wait`` is set; then
    ``idle`` is told, before each pause, when the next work is due (the CLI says what it
    waits for). Mail goes through ``transport`` when given, otherwise through the configured
    relay; each batch closes its connection when it ends.
    """
    while True:
        tick(settings)
        result = sending.run_batch(settings, 0, progress, transport=transport)
        if result.claimed:
            continue
        if not wait or result.next_due_at is None:
            return
        if idle is not None:
            idle(result.next_due_at)
        pause_seconds = (result.next_due_at - utcnow()).total_seconds()
        time.sleep(min(max(pause_seconds, 0.05), IDLE_POLL_SECONDS))


def run_worker(
    settings: Settings, stop: threading.Event, *, transport: Transport | None = None
) -> None:
    """`newsletter worker` without a broker: every background task, in this process, until
    ``stop`` is set.

    The same work as Celery workers and beat do: start scheduled campaigns, recover dead
    workers' rows, send, process stored bounces, and poll the bounce mailbox
    (NEWSLETTER_BOUNCE_MAILBOX) every NEWSLETTER_BOUNCE_POLL_SECONDS.
    """
    next_poll = time.monotonic()
    while not stop.is_set():
        try:
            tick(settings)
            result = sending.run_batch(settings, 0, transport=transport)
            process_pending_bounces(settings)
            if settings.bounce_mailbox and time.monotonic() >= next_poll:
                next_poll = time.monotonic() + settings.bounce_poll_seconds
                poll_mailbox(settings)
        except NewsletterError:
            # The database or the mailbox is unreachable for now. Every step starts from the
            # rows (claims under leases, stored bounces), so trying again later loses nothing.
            logger.exception("embedded worker: this round failed; trying again")
            stop.wait(IDLE_POLL_SECONDS)
            continue
        if result.claimed:
            continue
        due = result.next_due_at
        pause_seconds = (due - utcnow()).total_seconds() if due else IDLE_POLL_SECONDS
        stop.wait(min(max(pause_seconds, 0.05), IDLE_POLL_SECONDS))


def process_pending_bounces(settings: Settings) -> dict[str, Any]:
    """Process every stored bounce message not processed yet (embedded mode's sweep)."""
    with session_scope(settings) as session:
        pending = intake.pending_message_ids(session)
    for bounce_message_id in pending:
        process_bounce(bounce_message_id, settings)
    return {"processed": len(pending)}


def poll_mailbox(settings: Settings | None = None) -> dict[str, Any]:
    """Fetch NEWSLETTER_BOUNCE_MAILBOX: store each message, acknowledge it, then process it."""
    settings = settings or load_settings()
    if not settings.bounce_mailbox:
        return {"fetched": 0}
    url = mailbox.parse_mailbox_url(settings.bounce_mailbox)
    source = BounceSource.IMAP if url.scheme.startswith("imap") else BounceSource.POP3

    def store(raw: bytes) -> int:
        envelope = intake.envelope_rcpt_from_headers(raw)
        with session_scope(settings) as session:  # stored and committed before it is acknowledged
            return intake.record_raw(session, raw, source=source, envelope_rcpt=envelope).id

    result = mailbox.poll(url, store)
    for bounce_message_id in dict.fromkeys(result.stored_ids):
        process_bounce(bounce_message_id, settings)
    return {"fetched": result.fetched, "stored": len(set(result.stored_ids))}


@cache
def _celery_client(broker_url: str | None) -> Any:
    from celery import Celery

    return Celery("newsletter-client", broker=broker_url)


JOBS: dict[str, Callable[..., dict[str, Any]]] = {
    "assemble_issue": assemble_issue,
    "import_subscribers": import_subscribers,
    "poll_mailbox": poll_mailbox,
    "process_bounce": process_bounce,
    "purge_unconfirmed": purge_unconfirmed,
    "send_transactional": send_transactional,
    "start_campaign": start_campaign,
    "send_lane": send_lane,
    "tick": tick,
}
