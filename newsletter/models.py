"""Imports every stage's tables so that ``Base.metadata`` is complete (Alembic, tests)."""

from newsletter.bounces import models as bounce_models
from newsletter.content import models as content_models
from newsletter.delivery import models as delivery_models
from newsletter.delivery import outbox as outbox_models
from newsletter.issues import models as issue_models
from newsletter.render import models as render_models
from newsletter.subscribers import models as subscriber_models
from newsletter.web import models as web_models

__all__ = [
    "bounce_models",
    "content_models",
    "delivery_models",
    "issue_models",
    "outbox_models",
    "render_models",
    "subscriber_models",
    "web_models",
]
