"""How much of each article an issue's email carries. Pure, so the renderer can use it."""

from __future__ import annotations

import enum


class IssueMode(enum.StrEnum):
    FULL = "full"  # every paragraph
    EXCERPT = "excerpt"  # the first paragraph (or its first N words), then "Continue reading"
