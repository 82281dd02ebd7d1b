"""``newsletter list …``, ``subscribers …``, ``subscriber …`` and ``segment …``.

``subscribers import`` and ``import-status`` live in ``subscriber_import`` (an import job,
followed wherever it runs); they are added to the ``subscribers`` group here.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import click

from newsletter.bounces.erasure import forget_subscriber
from newsletter.cli import subscriber_import
from newsletter.cli.context import emit, json_option, reading, settings, transaction
from newsletter.db import utcnow
from newsletter.delivery import outbox
from newsletter.errors import file_error
from newsletter.subscribers.consent import unsubscribe
from newsletter.subscribers.models import ConsentSource
from newsletter.subscribers.segments import count_segment, create_segment, get_segment
from newsletter.subscribers.service import (
    create_list,
    erase_subscriber,
    export_list,
    find_subscriber,
    get_list,
    list_lists,
    subscriber_data,
    subscriber_lists,
)


def register(cli: click.Group) -> None:
    for group in (list_group, subscribers_group, subscriber_group, segment_group):
        cli.add_command(group)


# --- newsletter list ------------------------------------------------------------------------


@click.group("list")
def list_group() -> None:
    """Mailing lists."""


@list_group.command("create")
@click.argument("name")
@click.option("--double-opt-in", is_flag=True, help="New subscribers must confirm by email.")
@click.option("--description", default="", help="What the list is for.")
@json_option
def list_create(name: str, double_opt_in: bool, description: str, as_json: bool) -> None:
    """Create a mailing list."""
    with transaction() as session:
        created = create_list(session, name, double_opt_in=double_opt_in, description=description)
        document = {"name": created.name, "double_opt_in": created.double_opt_in}
    emit(document, as_json, lambda d: click.echo(f"created list {d['name']}"))


@list_group.command("ls")
@json_option
def list_ls(as_json: bool) -> None:
    """Show every list with its subscription counts."""
    with reading() as session:
        document = [summary.as_document() for summary in list_lists(session)]

    def human(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            counts = ", ".join(f"{n} {status}" for status, n in row["subscriptions"].items())
            optin = " (double opt-in)" if row["double_opt_in"] else ""
            click.echo(f"{row['name']}{optin}: {counts}")

    emit(document, as_json, human)


# --- newsletter subscribers -----------------------------------------------------------------


@click.group("subscribers")
def subscribers_group() -> None:
    """Import and export subscribers in bulk."""


for _command in subscriber_import.COMMANDS:
    subscribers_group.add_command(_command)


@subscribers_group.command("export")
@click.option("--list", "list_name", required=True, help="The list to export.")
@click.option("--out", type=click.Path(path_type=Path), help="File to write; stdout by default.")
def subscribers_export(list_name: str, out: Path | None) -> None:
    """Export a list as CSV (email,name,status,subscription_status,attributes as JSON).

    The file imports back as it was, suppressions included.
    """
    with reading() as session:
        list_id = get_list(session, list_name).id
        if out is None:
            _write_csv(sys.stdout, export_list(session, list_id))
            return
        try:
            with out.open("w", encoding="utf-8", newline="") as stream:
                _write_csv(stream, export_list(session, list_id))
        except OSError as exc:
            raise file_error("write", out, exc) from exc


def _write_csv(stream: IO[str], rows: Iterator[list[str]]) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    for row in rows:
        writer.writerow(row)


# --- newsletter subscriber ------------------------------------------------------------------


@click.group("subscriber")
def subscriber_group() -> None:
    """One subscriber: show, unsubscribe, export (GDPR access), delete (GDPR erasure)."""


@subscriber_group.command("show")
@click.argument("email")
@json_option
def subscriber_show(email: str, as_json: bool) -> None:
    """Status of a subscriber and of each of their subscriptions."""
    with reading() as session:
        subscriber = find_subscriber(session, email)
        document = {
            "email": subscriber.email,
            "status": subscriber.status.value,
            "lists": {
                name: status.value
                for name, status in subscriber_lists(session, subscriber.id).items()
            },
        }

    def human(d: dict[str, Any]) -> None:
        click.echo(f"{d['email']}: {d['status']}")
        for name, status in d["lists"].items():
            click.echo(f"  {name}: {status}")

    emit(document, as_json, human)


@subscriber_group.command("unsubscribe")
@click.argument("email")
@click.option("--list", "list_name", help="Only from this list; from every list by default.")
@json_option
def subscriber_unsubscribe(email: str, list_name: str | None, as_json: bool) -> None:
    """Unsubscribe at once (from one list, or from all); running it again changes nothing."""
    with transaction() as session:
        subscriber = find_subscriber(session, email)
        list_id = get_list(session, list_name).id if list_name else None
        changed = unsubscribe(
            session, subscriber.id, list_id=list_id, source=ConsentSource.ADMIN, now=utcnow()
        )
        document = {"email": subscriber.email, "list": list_name, "changed": changed}

    def human(d: dict[str, Any]) -> None:
        where = f"list {d['list']}" if d["list"] else "every list"
        state = "unsubscribed from" if d["changed"] else "was already unsubscribed from"
        click.echo(f"{d['email']} {state} {where}")

    emit(document, as_json, human)


@subscriber_group.command("export")
@click.argument("email")
def subscriber_export(email: str) -> None:
    """Every piece of data held about a subscriber, consent records included, as JSON."""
    with reading() as session:
        document = subscriber_data(session, email)
    emit(document, True)


@subscriber_group.command("delete")
@click.argument("email")
@json_option
def subscriber_delete(email: str, as_json: bool) -> None:
    """Erase a subscriber for good, consent records included (GDPR erasure).

    Only a keyed hash of the address is kept, so that no import adds it again.
    """
    with transaction() as session:
        subscriber = find_subscriber(session, email)
        address = subscriber.email
        # Bounces and queued mail name the address too; they are later stages' records, so
        # erased from here.
        forget_subscriber(session, subscriber.id, address)
        outbox.forget_subscriber(session, subscriber.id)
        erase_subscriber(session, settings().secret_key, address)
    emit({"erased": True}, as_json, lambda d: click.echo(f"erased {address}"))


# --- newsletter segment ---------------------------------------------------------------------


@click.group("segment")
def segment_group() -> None:
    """Saved filters over a list, evaluated when a campaign is sent."""


@segment_group.command("create")
@click.argument("name")
@click.option("--list", "list_name", required=True, help="The list the segment narrows.")
@click.option("--where", "expression", required=True, help="e.g. \"attributes.city = 'Almaty'\"")
@json_option
def segment_create(name: str, list_name: str, expression: str, as_json: bool) -> None:
    """Save a segment and print how many subscribers it matches now."""
    with transaction() as session:
        segment = create_segment(session, name, get_list(session, list_name).id, expression)
        document = {
            "name": segment.name,
            "list": list_name,
            "count": count_segment(session, segment),
        }
    emit(document, as_json, lambda d: click.echo(f"segment {d['name']}: {d['count']} subscribers"))


@segment_group.command("count")
@click.argument("name")
@json_option
def segment_count(name: str, as_json: bool) -> None:
    """How many subscribers the segment would mail now."""
    with reading() as session:
        segment = get_segment(session, name)
        document = {"name": segment.name, "count": count_segment(session, segment)}
    emit(document, as_json, lambda d: click.echo(f"segment {d['name']}: {d['count']} subscribers"))
