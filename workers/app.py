"""The Celery application. Start a worker with ``newsletter worker`` (``celery -A workers.app``)."""

from __future__ import annotations

from celery import Celery

from newsletter.config import load_settings

settings = load_settings()
TICK_SECONDS = 5.0

app = Celery("newsletter", broker=settings.broker_url, include=["workers.tasks"])
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_backend=None,
    task_ignore_result=True,
    # One task at a time per process: batches are large, and a prefetched batch would wait
    # behind the running one while another worker sits idle.
    worker_prefetch_multiplier=1,
    # Redis redelivers an unacknowledged task after this long; it must exceed the longest task.
    broker_transport_options={"visibility_timeout": 3600},
    broker_connection_retry_on_startup=True,
    # Beat starts scheduled campaigns, recovers rows of dead workers and refills idle lanes.
    beat_schedule={
        "tick": {"task": "newsletter.tick", "schedule": TICK_SECONDS},
        "purge-unconfirmed": {"task": "newsletter.purge_unconfirmed", "schedule": 24 * 3600.0},
    },
    # A worker that loses its Redis connection keeps trying instead of exiting.
    broker_connection_max_retries=None,
)
if settings.bounce_mailbox:
    app.conf.beat_schedule["poll-mailbox"] = {
        "task": "newsletter.poll_mailbox",
        "schedule": float(settings.bounce_poll_seconds),
    }
