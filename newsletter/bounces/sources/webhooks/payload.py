"""Reading webhook requests the same way in every adapter: JSON bodies and header lookup."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from newsletter.errors import InvalidInput

MAX_BODY_BYTES = 5 * 1024 * 1024  # SendGrid batches up to ~1 MB; anything far bigger is abuse


def load_json(body: bytes, provider: str) -> Any:
    """Decode a JSON body, turning every way it can be wrong into ``InvalidInput``."""
    if len(body) > MAX_BODY_BYTES:
        raise InvalidInput(f"{provider} webhook body is {len(body)} bytes, too large")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInput(f"{provider} webhook body is not JSON: {exc}") from exc


def require_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} is not a JSON object")
    return value


def optional_str(value: Any) -> str | None:
    """A string field, or None for missing, null, empty or non-string values."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup: frameworks disagree on header-name case."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None
