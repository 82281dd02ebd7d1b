"""Imports every stage's tables so that ``Base.metadata`` is complete (Alembic, tests)."""

from newsletter.content import models as content_models
from newsletter.issues import models as issue_models

__all__ = ["content_models", "issue_models"]
