"""``newsletter bounces …`` (process, report, review, apply, serve, poll, process-pending) and
``newsletter subscriber reinstate``.

Each command owns its transactions; the work is in ``newsletter.bounces`` (``intake``,
``processing``, ``review``, ``reinstate``) and the sources. ``bounces process`` stores and
processes each file in its own transaction, so one bad file does not undo the others.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from newsletter import jobs
from newsletter.bounces import intake, processing, review
from newsletter.bounces.event import BounceSource
from newsletter.bounces.parse import MAX_MESSAGE_BYTES
from newsletter.bounces.reinstate import reinstate
from newsletter.bounces.report import bounce_report
from newsletter.bounces.sources import mailbox, receiver
from newsletter.cli.context import database, emit, json_option, reading, settings, transaction
from newsletter.cli.subscribers import subscriber_group
from newsletter.config import Settings
from newsletter.db import session_factory, utcnow
from newsletter.errors import InvalidInput, file_error


def register(cli: click.Group) -> None:
    cli.add_command(bounces_group)
    subscriber_group.add_command(subscriber_reinstate)


@click.group("bounces")
def bounces_group() -> None:
    """Bounce intake (SMTP receiver, mailbox poller), processing and reports."""


@bounces_group.command("process")
@click.argument("files", nargs=-1, required=True)
@click.option("--rcpt", help="Envelope recipient (VERP address); default: Delivered-To/To.")
@json_option
def bounces_process(files: tuple[str, ...], rcpt: str | None, as_json: bool) -> None:
    """Store and process bounce messages from FILES ("-" reads one from stdin).

    With --json, prints one JSON object per event (a message reporting several recipients
    gives several lines), each with the file it came from and the evidence that tied it to a
    delivery ("none": stored unverified, see `bounces review`).
    """
    config = settings()
    for name in files:
        raw = _read(name)
        envelope = rcpt or intake.envelope_rcpt_from_headers(raw)
        with transaction() as session:
            message = intake.record_raw(
                session, raw, source=BounceSource.FILE, envelope_rcpt=envelope
            )
            session.flush()
            results = processing.process_message(session, config, message.id, utcnow())
        for result in results:
            document = {"file": name, "message": message.id, **result.as_document()}
            if as_json:
                click.echo(json.dumps(document, ensure_ascii=False))
            else:
                click.echo(
                    f"{name}: {result.kind.value} {result.email or '-'} "
                    f"{result.status or ''} [evidence: {result.evidence.value}] "
                    f"→ {result.action.value} ({result.reason})"
                )
        if not results and not as_json:
            click.echo(f"{name}: no failures reported")


@bounces_group.command("process-pending")
@json_option
def bounces_process_pending(as_json: bool) -> None:
    """Process stored messages that were never processed (e.g. after a crash)."""
    config = settings()
    with transaction() as session:
        ids = intake.pending_message_ids(session)
    for bounce_message_id in ids:  # a transaction each: a failure keeps those done before it
        with transaction() as session:
            processing.process_message(session, config, bounce_message_id, utcnow())
    emit({"processed": len(ids)}, as_json, lambda d: click.echo(f"processed {d['processed']}"))


@bounces_group.command("report")
@click.option("--campaign", "campaign_id", type=int, help="One campaign (rates ÷ sent).")
@json_option
def bounces_report(campaign_id: int | None, as_json: bool) -> None:
    """Bounces by kind and by recipient domain; rates for a campaign."""
    with reading() as session:
        document = bounce_report(session, campaign_id)

    def human(d: dict[str, Any]) -> None:
        if "sent" in d:
            click.echo(
                f"campaign {d['campaign']}: {d['sent']} sent, hard-bounce rate "
                f"{d['hard_bounce_rate']:.2%}, complaint rate {d['complaint_rate']:.2%}"
            )
        kinds = ", ".join(f"{n} {kind}" for kind, n in d["by_kind"].items() if n)
        click.echo(f"by kind: {kinds or 'none'}")
        evidence = ", ".join(f"{n} {name}" for name, n in d["by_evidence"].items() if n)
        click.echo(f"by evidence: {evidence or 'none'}")
        if d.get("unverified"):
            click.echo(f"unverified, waiting for review: {d['unverified']} (`bounces review`)")
        for domain, counts in d["by_domain"].items():
            click.echo(f"  {domain}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))

    emit(document, as_json, human)


@bounces_group.command("review")
@json_option
def bounces_review(as_json: bool) -> None:
    """List the reports no evidence ties to a message we sent; they were applied to nobody.

    Look at one (its stored message is `message`), then `newsletter bounces apply EVENT_ID`
    to act on it. With --json, one JSON object per event.
    """
    with transaction() as session:
        events = review.unverified_events(session)
    for event in events:
        if as_json:
            click.echo(json.dumps(event.as_document(), ensure_ascii=False))
            continue
        subscriber = event.subscriber_status or "no such subscriber"
        click.echo(
            f"event {event.event_id}: {event.kind} {event.email or '-'} ({subscriber}) "
            f"{event.status or ''} from {event.source.value}, message {event.bounce_message_id}"
            f" at {event.received_at:%Y-%m-%d %H:%M}"
        )
    if not events and not as_json:
        click.echo("nothing to review")


@bounces_group.command("apply")
@click.argument("event_id", type=int)
@click.option("--by", default=None, help="Who decided (default: the OS user).")
@json_option
def bounces_apply(event_id: int, by: str | None, as_json: bool) -> None:
    """Act on one unverified event after looking at it: the bounce policy runs for its address."""
    config = settings()
    with transaction() as session:
        result = review.apply_unverified(
            session, config, event_id, by=by or _os_user(), now=utcnow()
        )
    emit(
        result.as_document(),
        as_json,
        lambda d: click.echo(f"event {d['event']}: {d['email']} → {d['action']} ({d['reason']})"),
    )


@bounces_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=2525, show_default=True, type=int)
def bounces_serve(host: str, port: int) -> None:
    """Run the SMTP receiver for the bounce domain until interrupted."""
    config = database()
    handoff, finish = _handoff(config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with receiver.running_receiver(
            config, handoff, sessions=session_factory(config).begin, host=host, port=port
        ):
            click.echo(f"receiving bounces for @{config.bounce_address.domain} on {host}:{port}")
            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a person stops it
                stop.wait()
    finally:
        finish()  # also when the port is taken: the processing thread must not linger


@bounces_group.command("poll")
@click.option("--imap", "imap_url", help="imap[s]://user:pass@host[:port]/FOLDER")
@click.option("--pop3", "pop3_url", help="pop3[s]://user:pass@host[:port]")
@json_option
def bounces_poll(imap_url: str | None, pop3_url: str | None, as_json: bool) -> None:
    """Fetch bounces from a mailbox: store, acknowledge (move/delete), then process."""
    if bool(imap_url) == bool(pop3_url):
        raise InvalidInput("give exactly one of --imap and --pop3")
    url = mailbox.parse_mailbox_url(imap_url or pop3_url or "")
    source = BounceSource.IMAP if url.scheme.startswith("imap") else BounceSource.POP3
    config = database()

    def store(raw: bytes) -> int:
        """Store one fetched message and commit, before the poller acknowledges it."""
        envelope = intake.envelope_rcpt_from_headers(raw)
        with transaction() as session:
            return intake.record_raw(session, raw, source=source, envelope_rcpt=envelope).id

    result = mailbox.poll(url, store)
    handoff, finish = _handoff(config, sweep=False)
    for bounce_message_id in result.stored_ids:
        handoff(bounce_message_id)
    finish()
    document = {
        "fetched": result.fetched,
        "acknowledged": result.acknowledged,
        "vanished": result.vanished,
        "stored": len(set(result.stored_ids)),
        "refused": result.refused,
    }
    emit(document, as_json, _print_poll)


def _print_poll(d: dict[str, Any]) -> None:
    click.echo(
        f"fetched {d['fetched']}, acknowledged {d['acknowledged']}, vanished {d['vanished']}"
    )
    if d["refused"]:
        click.echo(f"refused {d['refused']} over the size limit of a bounce (left on the server)")


@click.command("reinstate")
@click.argument("email")
@click.option("--by", default=None, help="Who is reinstating (default: the OS user).")
@json_option
def subscriber_reinstate(email: str, by: str | None, as_json: bool) -> None:
    """Make a bounced or complained subscriber active again (audited)."""
    who = by or _os_user()
    with transaction() as session:
        change = reinstate(session, email, utcnow(), by=who)
        document = {
            "email": email,
            "old": change.old.value,
            "new": change.new.value,
            "by": who,
        }
    emit(document, as_json, lambda d: click.echo(f"{d['email']}: {d['old']} → {d['new']}"))


def _handoff(
    config: Settings, *, sweep: bool = True
) -> tuple[Callable[[int], None], Callable[[], None]]:
    """Where stored ids go: a worker thread here (embedded) or the ``process_bounce`` task."""
    if config.in_process:
        processor = receiver.BackgroundProcessor(config, session_factory(config).begin)
        processor.start(sweep=sweep)
        return processor, processor.join

    def submit(bounce_message_id: int) -> None:
        jobs.submit(config, "process_bounce", bounce_message_id=bounce_message_id)

    return submit, lambda: None


def _read(name: str) -> bytes:
    """The message in file ``name`` (or stdin), refused past the size limit of a bounce."""
    try:
        if name == "-":
            raw = sys.stdin.buffer.read(MAX_MESSAGE_BYTES + 1)
        else:
            with Path(name).open("rb") as stream:
                raw = stream.read(MAX_MESSAGE_BYTES + 1)  # no more than it takes to refuse it
    except OSError as exc:
        raise file_error("read", name, exc) from exc
    if len(raw) > MAX_MESSAGE_BYTES:
        raise InvalidInput(
            f"{name}: larger than {MAX_MESSAGE_BYTES // 1024 // 1024} MB, the limit of a bounce "
            "message (as the SMTP receiver); not stored"
        )
    return raw


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"
