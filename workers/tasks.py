"""Thin Celery tasks: ids in, one ``newsletter.jobs`` call, a small JSON summary out.

``acks_late``: a task is acknowledged when it ends, so a worker killed mid-task has it
redelivered. Every task here is safe to run twice: rendering overwrites, starting a started
campaign adds no rows, a batch only ever sends rows it claimed under its own lease, an
import upserts, a stored bounce is processed once whatever happens, and a transactional mail
is sent only by whoever claims its outbox row.
"""

from __future__ import annotations

from typing import Any

from newsletter import jobs
from workers.app import app


@app.task(name=jobs.task_name("assemble_issue"), acks_late=True)
def assemble_issue(issue_id: int) -> dict[str, Any]:
    return jobs.assemble_issue(issue_id)


@app.task(name=jobs.task_name("start_campaign"), acks_late=True)
def start_campaign(campaign_id: int) -> dict[str, Any]:
    return jobs.start_campaign(campaign_id)


@app.task(name=jobs.task_name("send_lane"), acks_late=True)
def send_lane(lane: int) -> dict[str, Any]:
    return jobs.send_lane(lane)


@app.task(name=jobs.task_name("tick"))
def tick() -> dict[str, Any]:
    return jobs.tick()


@app.task(name=jobs.task_name("import_subscribers"), acks_late=True)
def import_subscribers(job_id: int) -> dict[str, Any]:
    return jobs.import_subscribers(job_id)


@app.task(name=jobs.task_name("process_bounce"), acks_late=True)
def process_bounce(bounce_message_id: int) -> dict[str, Any]:
    return jobs.process_bounce(bounce_message_id)


@app.task(name=jobs.task_name("send_transactional"), acks_late=True)
def send_transactional(message_id: int) -> dict[str, Any]:
    return jobs.send_transactional(message_id)


@app.task(name=jobs.task_name("poll_mailbox"))
def poll_mailbox() -> dict[str, Any]:
    return jobs.poll_mailbox()


@app.task(name=jobs.task_name("purge_unconfirmed"))
def purge_unconfirmed() -> dict[str, Any]:
    return jobs.purge_unconfirmed()
