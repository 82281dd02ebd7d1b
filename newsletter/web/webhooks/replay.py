"""Webhook nonces seen once (replay protection): Redis with a broker, else the database.

A provider that signs only a timestamp and a token (Mailgun) lets whoever captured one request
send it again with another body; refusing a token seen before closes that door. ``claim`` is
called after the signature is verified and before the events are stored; ``release`` hands the
token back when storing fails, so the provider's retry of that same request still works.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

import redis
from sqlalchemy import delete

from newsletter.config import Settings
from newsletter.db import insert_ignoring_duplicates, session_scope
from newsletter.web.models import WebhookNonce

# Longer than any provider's timestamp window (300 s): an older request fails on its timestamp.
NONCE_TTL_SECONDS = 3600


class NonceStore(Protocol):
    def claim(self, provider: str, nonce: str, now: dt.datetime) -> bool:
        """True the first time ``nonce`` is seen for ``provider``; False for a replay."""
        ...

    def release(self, provider: str, nonce: str) -> None:
        """Forget a claimed nonce (the request it came with was not stored)."""
        ...


@dataclass(frozen=True)
class RedisNonces:
    client: redis.Redis[bytes]
    prefix: str = "newsletter:webhook-nonce"

    def claim(self, provider: str, nonce: str, now: dt.datetime) -> bool:
        return bool(self.client.set(self._key(provider, nonce), "1", nx=True, ex=NONCE_TTL_SECONDS))

    def release(self, provider: str, nonce: str) -> None:
        self.client.delete(self._key(provider, nonce))

    def _key(self, provider: str, nonce: str) -> str:
        return f"{self.prefix}:{provider}:{nonce}"


@dataclass(frozen=True)
class DatabaseNonces:
    settings: Settings

    def claim(self, provider: str, nonce: str, now: dt.datetime) -> bool:
        with session_scope(self.settings) as session:
            session.execute(
                delete(WebhookNonce).where(
                    WebhookNonce.seen_at < now - dt.timedelta(seconds=NONCE_TTL_SECONDS)
                )
            )
            inserted = session.scalar(
                insert_ignoring_duplicates(session, WebhookNonce)
                .values(provider=provider, nonce=nonce[:128], seen_at=now)
                .returning(WebhookNonce.nonce)
            )
            return inserted is not None

    def release(self, provider: str, nonce: str) -> None:
        with session_scope(self.settings) as session:
            session.execute(
                delete(WebhookNonce).where(
                    WebhookNonce.provider == provider, WebhookNonce.nonce == nonce[:128]
                )
            )


def nonce_store(settings: Settings) -> NonceStore:
    if settings.broker_url and settings.broker_url.startswith(("redis://", "rediss://")):
        return RedisNonces(redis.Redis.from_url(settings.broker_url))
    return DatabaseNonces(settings)
