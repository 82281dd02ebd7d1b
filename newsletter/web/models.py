"""The web layer's one table: webhook nonces already seen (Mailgun replay protection).

Used when no broker is configured; with one, the nonces live in Redis instead (see
``webhooks/replay.py``). Rows older than the providers' timestamp window are useless (a request
that old is refused by its timestamp) and are deleted as new ones arrive.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.db import Base


class WebhookNonce(Base):
    __tablename__ = "webhook_nonces"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(index=True)
