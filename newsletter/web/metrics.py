"""Prometheus metrics: figures read from the database at scrape time, plus request latency.

Every business figure (messages by status, bounces by kind, sign-ups and unsubscribes, queue
depths, campaign progress) is counted in the database when ``/metrics`` is scraped, so it is
the same whichever web process or host answers and survives restarts. Request latency is
measured in each process; ``newsletter web`` runs the workers in prometheus-client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), so any worker reports all of them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter.bounces.models import BounceEventRecord, BounceMessage
from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.delivery import outbox
from newsletter.delivery.models import OPEN_STATUSES, Campaign, CampaignStatus, Delivery
from newsletter.subscribers.models import ConsentEvent

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
REQUEST_LATENCY = Histogram(
    "newsletter_http_request_duration_seconds",
    "Time to answer an HTTP request, by route (the path template, never a token).",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CAMPAIGNS_SHOWN = (CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.PAUSED)


class RequestMetrics:
    """Pure ASGI middleware timing each request under its route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def record_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            REQUEST_LATENCY.labels(scope["method"], route, str(status[0])).observe(
                time.perf_counter() - started
            )


class DatabaseCollector(Collector):
    """The business figures, counted in the database at each scrape."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        with session_scope(self.settings) as session:
            deliveries = GaugeMetricFamily(
                "newsletter_deliveries",
                "Campaign messages by delivery status (sent, failed, bounced, pending, ...).",
                labels=["status"],
            )
            for status, count in session.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)
            ):
                deliveries.add_metric([status.value], count)
            yield deliveries
            sent = session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.sent_at.is_not(None))
            )
            yield CounterMetricFamily(
                "newsletter_messages_sent", "Campaign messages the relay accepted.", sent or 0
            )
            bounces = CounterMetricFamily(
                "newsletter_bounce_events",
                "Bounce events received, by kind (hard, soft, complaint, ...).",
                labels=["kind"],
            )
            for kind, count in session.execute(
                select(BounceEventRecord.kind, func.count()).group_by(BounceEventRecord.kind)
            ):
                bounces.add_metric([kind.value], count)
            yield bounces
            consent = CounterMetricFamily(
                "newsletter_consent_events",
                "Sign-ups, confirmations and unsubscribes, by source (form, email, import, ...).",
                labels=["action", "source"],
            )
            for action, source, count in session.execute(
                select(ConsentEvent.action, ConsentEvent.source, func.count()).group_by(
                    ConsentEvent.action, ConsentEvent.source
                )
            ):
                consent.add_metric([action.value, source.value], count)
            yield consent
            yield self._queues(session)
            yield from self._campaigns(session)

    def _queues(self, session: Session) -> GaugeMetricFamily:
        queues = GaugeMetricFamily(
            "newsletter_queue_depth", "Work waiting, by queue.", labels=["queue"]
        )
        queues.add_metric(
            ["deliveries"],
            session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.status.in_(OPEN_STATUSES))
            )
            or 0,
        )
        queues.add_metric(["transactional"], outbox.pending_count(session))
        queues.add_metric(
            ["bounces"],
            session.scalar(
                select(func.count())
                .select_from(BounceMessage)
                .where(BounceMessage.processed_at.is_(None))
            )
            or 0,
        )
        return queues

    def _campaigns(self, session: Session) -> Iterator[Metric]:
        recipients = GaugeMetricFamily(
            "newsletter_campaign_recipients",
            "Recipients of each unfinished campaign.",
            labels=["campaign"],
        )
        remaining = GaugeMetricFamily(
            "newsletter_campaign_remaining",
            "Messages of each unfinished campaign still to send (pending or deferred).",
            labels=["campaign"],
        )
        campaigns = session.execute(
            select(Campaign.id, Campaign.recipient_count).where(
                Campaign.status.in_(CAMPAIGNS_SHOWN)
            )
        ).all()
        open_rows = {
            campaign_id: count
            for campaign_id, count in session.execute(
                select(Delivery.campaign_id, func.count())
                .where(
                    Delivery.campaign_id.in_([c for c, _ in campaigns]),
                    Delivery.status.in_(OPEN_STATUSES),
                )
                .group_by(Delivery.campaign_id)
            )
        }
        for campaign_id, count in campaigns:
            recipients.add_metric([str(campaign_id)], count)
            remaining.add_metric([str(campaign_id)], open_rows.get(campaign_id, 0))
        yield recipients
        yield remaining


def exposition(database: CollectorRegistry) -> bytes:
    """The text of ``/metrics``: this process's (or every worker's) metrics and the database's."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        local = generate_latest(registry)
    else:
        local = generate_latest(REGISTRY)
    return local + generate_latest(database)


def database_registry(settings: Settings) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(settings))
    return registry


__all__ = ["CONTENT_TYPE_LATEST", "RequestMetrics", "database_registry", "exposition"]
