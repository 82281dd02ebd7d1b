"""The root click group and what every command shares: settings, a session, output.

A command opens its transactions with ``transaction()`` when it writes and ``reading()`` when it
only reads; a command that hands the database to a job instead calls ``database()`` first.
Each makes sure the database is ready once per command (``db.ensure_schema``): in embedded mode
a command that writes creates or upgrades the SQLite file and says so on stderr; a command that
only reads writes nothing at all (no database file, no ``newsletter.secret``) and works on a
file it may not write.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.orm import Session

from newsletter.config import Settings, load_settings
from newsletter.db import ensure_schema, session_factory, session_scope
from newsletter.subscribers.import_runs import ImportSessions


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="newsletter")
@click.option(
    "--debug",
    is_flag=True,
    expose_value=False,
    help="On an error, show the Python traceback too (may be given anywhere on the line).",
)
def cli() -> None:
    """Assemble the weekly bulletin, manage subscribers, send and track bounces."""


def _state() -> dict[str, Any]:
    root = click.get_current_context().find_root()
    if not isinstance(root.obj, dict):
        root.obj = {}
    state: dict[str, Any] = root.obj
    return state


def settings() -> Settings:
    """The validated settings, loaded once per command (creating the key file if needed)."""
    return _settings(create_secret_key=True)


def _settings(*, create_secret_key: bool) -> Settings:
    state = _state()
    # Settings loaded by a reader hold a key for this process only; a writer needs the stored one.
    if "settings" not in state or (create_secret_key and not state["key_stored"]):
        state["settings"] = load_settings(create_secret_key=create_secret_key)
        state["key_stored"] = create_secret_key
    value: Settings = state["settings"]
    return value


def database() -> Settings:
    """The settings, once the database is ready for a command that writes."""
    config = settings()
    _ensure_schema(config, writes=True)
    return config


def _ensure_schema(config: Settings, *, writes: bool) -> None:
    state = _state()
    if state.get("schema_ready_for_writes") or (not writes and state.get("schema_ready")):
        return
    done = ensure_schema(config, writes=writes)
    if done is not None:
        click.echo(done, err=True)
    state["schema_ready"] = True
    state["schema_ready_for_writes"] = writes


@contextmanager
def transaction() -> Iterator[Session]:
    """One transaction for the command: committed if the command succeeds."""
    with session_scope(database()) as session:
        yield session


def import_sessions(config: Settings) -> ImportSessions:
    """The transactions an import run opens on ``config``'s database (see ``import_runs``)."""
    return ImportSessions(
        write=session_factory(config).begin, read=session_factory(config, readonly=True).begin
    )


@contextmanager
def reading() -> Iterator[Session]:
    """A transaction for a command that only reads: it cannot write, and writes no file."""
    config = _settings(create_secret_key=False)
    _ensure_schema(config, writes=False)
    with session_scope(config, readonly=True) as session:
        yield session


json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")


def emit(document: Any, as_json: bool, human: Callable[[Any], None] | None = None) -> None:
    """Print ``document`` as JSON, or hand it to ``human`` to print for people."""
    if as_json or human is None:
        click.echo(json.dumps(document, ensure_ascii=False, indent=None if as_json else 2))
    else:
        human(document)
