"""The root click group and what every command shares: settings, a session, output."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.orm import Session

from newsletter.config import Settings, load_settings
from newsletter.db import session_scope


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="newsletter")
def cli() -> None:
    """Assemble the weekly bulletin, manage subscribers, send and track bounces."""


def settings() -> Settings:
    """The validated settings, loaded once per command."""
    ctx = click.get_current_context()
    root = ctx.find_root()
    if not isinstance(root.obj, dict):
        root.obj = {}
    if "settings" not in root.obj:
        root.obj["settings"] = load_settings()
    value: Settings = root.obj["settings"]
    return value


@contextmanager
def transaction() -> Iterator[Session]:
    """One transaction for the command: committed if the command succeeds."""
    with session_scope(settings()) as session:
        yield session


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def emit(document: Any, as_json: bool, human: Callable[[Any], None] | None = None) -> None:
    """Print ``document`` as JSON, or hand it to ``human`` to print for people."""
    if as_json or human is None:
        click.echo(json.dumps(document, ensure_ascii=False, indent=None if as_json else 2))
    else:
        human(document)
