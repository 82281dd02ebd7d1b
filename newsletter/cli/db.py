"""``newsletter db …``: the schema."""

from __future__ import annotations

import click

from newsletter.cli.context import settings
from newsletter.db import upgrade


def register(cli: click.Group) -> None:
    cli.add_command(db)


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the current version (safe to repeat)."""
    upgrade(settings().database_url)
    click.echo("database is up to date", err=True)
