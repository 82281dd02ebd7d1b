"""Routes for operators and their tools: ``GET /healthz`` and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from newsletter.config import Settings
from newsletter.db import get_engine
from newsletter.web.context import settings_of
from newsletter.web.metrics import CONTENT_TYPE_LATEST, exposition

router = APIRouter()
CHECK_TIMEOUT_SECONDS = 2.0


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    """200 when the database (and the broker, if one is configured) answer; 503 naming what
    does not."""
    settings = settings_of(request)
    state = {"database": _database(settings), "broker": _broker(settings)}
    healthy = all(value in ("ok", "none") for value in state.values())
    return JSONResponse(state, status_code=200 if healthy else 503)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(exposition(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)


def _database(settings: Settings) -> str:
    try:
        with get_engine(settings).connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        # Any failure at all means "down" here: this is the one question the check answers.
        return "down"
    return "ok"


def _broker(settings: Settings) -> str:
    if settings.broker_url is None:
        return "none"
    try:
        client = redis.Redis.from_url(
            settings.broker_url,
            socket_timeout=CHECK_TIMEOUT_SECONDS,
            socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
        )
        try:
            client.ping()
        finally:
            client.close()
    except Exception:
        # As above: a broker that cannot be pinged for any reason is down.
        return "down"
    return "ok"
