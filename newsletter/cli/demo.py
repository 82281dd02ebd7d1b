"""``newsletter demo``: the main job end to end on the embedded defaults, with the samples.

Import the desk's bulletin → assemble, render and check an issue → write previews → import a
subscriber list → send through a local SMTP relay (messages land in ``outbox/``) → receive the
bounces it returns → print the campaign and bounce report. No server needs to be running.

On a terminal it then serves the web app on 127.0.0.1 until Ctrl-C, with the base URL of the
messages pointing at it, so their unsubscribe and view-in-browser links work in a browser
(and a sign-up's confirmation mail lands in ``outbox/`` too). Without a terminal (CI, tests)
it ends after the report, as before.
"""

from __future__ import annotations

import dataclasses
import socket
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from newsletter import jobs
from newsletter.bounces.report import campaign_bounce_summary
from newsletter.bounces.sources.receiver import BackgroundProcessor, running_receiver
from newsletter.cli.context import import_sessions, settings
from newsletter.cli.demo_relay import DemoRelay, free_port, start_relay
from newsletter.cli.issues import warn_if_over_budget
from newsletter.config import PACKAGE_DIR, Settings, parse_smtp_url
from newsletter.content.service import import_bulletin
from newsletter.db import session_factory, session_scope, upgrade, utcnow
from newsletter.delivery import report as delivery_report
from newsletter.delivery import service as delivery_service
from newsletter.issues.service import create_issue
from newsletter.render import service as render_service
from newsletter.subscribers import import_runs
from newsletter.subscribers.models import MailingList, Subscriber, SubscriberStatus
from newsletter.subscribers.service import create_list, list_slug

SAMPLE_BULLETIN = PACKAGE_DIR / "samples" / "bulletin-2025-12-11.txt"
SAMPLE_SUBSCRIBERS = PACKAGE_DIR / "samples" / "subscribers.csv"
DEMO_LIST = "Central Asia Weekly"
DEMO_POSTAL_ADDRESS = "Central Asia News Desk, 12 Abay Avenue, Almaty 050000, Kazakhstan"
WEB_PORT = 8000


def register(cli: click.Group) -> None:
    cli.add_command(demo)


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to write preview.html, preview.txt and outbox/.",
)
def demo(out_dir: Path) -> None:
    """Run the whole pipeline on the shipped samples, with a local SMTP relay."""
    config = demo_settings(settings())
    # Listening from the start: the links printed (and mailed) answer as soon as they are seen.
    web = _web_listener() if _interactive() else None
    with web or nullcontext():
        if web is not None:
            port = web.getsockname()[1]
            config = dataclasses.replace(config, base_url=f"http://127.0.0.1:{port}")
        _run(config, out_dir, web)


def _run(config: Settings, out_dir: Path, web: socket.socket | None) -> None:
    upgrade(config.database_url)
    step("database ready", config.database_url)
    issue_id = assemble(config, out_dir)
    subscribe(config)
    outbox = out_dir / "outbox"
    relay, controller, relay_port = start_relay(outbox)
    config = dataclasses.replace(config, smtp=parse_smtp_url(f"smtp://127.0.0.1:{relay_port}"))
    try:
        step("local SMTP relay", f"127.0.0.1:{relay_port} → {outbox.resolve()}/")
        send(config, issue_id, relay)
        if web is not None:
            serve_web(config, web, outbox)
    finally:
        controller.stop()


def serve_web(config: Settings, listening: socket.socket, outbox: Path) -> None:
    """Serve the web app for the links in the outbox until Ctrl-C (its mail goes there too)."""
    from newsletter.cli.web import serve
    from newsletter.web.app import create_app

    step("web app", f"{config.base_url} (Ctrl-C to stop)")
    step("", f"archive:   {config.base_url}/archive")
    step("", f"subscribe: {config.base_url}/subscribe/{list_slug(DEMO_LIST)}")
    step("", f"the unsubscribe and view links of {outbox.resolve()}/*.eml work now")
    serve(create_app(config), listening=listening)


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _web_listener() -> socket.socket:
    """A socket listening on 8000 when it is free (a URL people remember), else on any port."""
    try:
        return socket.create_server(("127.0.0.1", WEB_PORT))
    except OSError:
        return socket.create_server(("127.0.0.1", 0))


def assemble(config: Settings, out_dir: Path) -> int:
    with session_scope(config) as session:
        imported = import_bulletin(session, SAMPLE_BULLETIN.read_bytes())
        record = imported.bulletin_import
        rates = len(record.snapshot.rates) if record.snapshot else 0
        step(
            "bulletin imported" if imported.created else "bulletin already there",
            f"{record.date}: {len(record.articles)} articles, {rates} rates",
        )
        issue = create_issue(session, subject=f"Central Asia Weekly — {record.date:%d %B %Y}")
        issue_id = issue.id
    step("issue assembled", f"issue {issue_id}")

    jobs.submit(config, "assemble_issue", issue_id=issue_id)
    with session_scope(config) as session:
        rendering = render_service.stored_rendering(session, issue_id)
        problems = render_service.check_issue(session, config, issue_id, rendering)
        preview = render_service.preview(rendering, config)
    step("issue rendered", f"{rendering.html_bytes / 1000:.1f} KB of HTML, once for everyone")
    warn_if_over_budget(issue_id, rendering.html_bytes, None)  # the check below suggests more
    step("pre-send check", "passed" if not problems else "; ".join(problems))

    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, text_path = out_dir / "preview.html", out_dir / "preview.txt"
    html_path.write_text(preview.html, encoding="utf-8")
    text_path.write_text(preview.text, encoding="utf-8")
    step("previews written", f"{html_path.resolve()}")
    step("", f"{text_path.resolve()}")
    return issue_id


def subscribe(config: Settings) -> None:
    with session_scope(config) as session:
        if session.scalar(select(MailingList.id).where(MailingList.name == DEMO_LIST)) is None:
            create_list(session, DEMO_LIST, description="The weekly bulletin")
    report = import_runs.import_file(
        import_sessions(config), SAMPLE_SUBSCRIBERS, DEMO_LIST, pepper=config.secret_key
    )
    report.raise_failure()
    summary = report.counts_document()
    step(
        "subscribers imported",
        f"{SAMPLE_SUBSCRIBERS.name}: created {summary['created']}, updated {summary['updated']}, "
        f"unchanged {summary['unchanged']}, errors {summary['error_count']}",
    )
    for error in summary["errors"]:
        step("", f"line {error['line']}: {error['error']}")


def send(config: Settings, issue_id: int, relay: DemoRelay) -> None:
    receiver_port = free_port()
    sessions = session_factory(config).begin
    processor = BackgroundProcessor(config, sessions)
    processor.start()
    try:
        with running_receiver(config, processor, sessions=sessions, port=receiver_port):
            step("bounce receiver", f"127.0.0.1:{receiver_port} (VERP {config.bounce_address})")
            with session_scope(config) as session:
                campaign = delivery_service.create_campaign(
                    session, issue_id=issue_id, list_names=[DEMO_LIST]
                )
                recipients = delivery_service.schedule_or_start(session, config, campaign, utcnow())
                campaign_id = campaign.id
            step("campaign started", f"campaign {campaign_id}: {recipients} recipients")
            jobs.run_until_idle(config, wait=True)
            returned = relay.return_bounces(receiver_port)
            step(
                "messages delivered",
                f"{relay.accepted} accepted, {relay.refused} refused at once (550), "
                f"{returned} returned later as DSN",
            )
    finally:
        processor.join()
    report(config, campaign_id)


def report(config: Settings, campaign_id: int) -> None:
    with session_scope(config) as session:
        summary = delivery_report.report(session, campaign_id, utcnow())
        bounces = campaign_bounce_summary(session, campaign_id)
        suppressed = [
            (s.email, str(s.status))
            for s in session.scalars(
                select(Subscriber)
                .where(Subscriber.status != SubscriberStatus.ACTIVE)
                .order_by(Subscriber.email)
            )
        ]
    counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items() if v)
    step("campaign report", f"campaign {campaign_id} {summary.status}: {counts}")
    step("bounces", _bounce_line(bounces))
    for email, status in suppressed:
        step("", f"suppressed: {email} ({status})")


def _bounce_line(bounces: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in bounces["by_kind"].items() if v) or "none"
    return (
        f"{kinds}; hard-bounce rate {bounces['hard_bounce_rate']:.1%}, "
        f"complaint rate {bounces['complaint_rate']:.1%}"
    )


def demo_settings(config: Settings) -> Settings:
    """The demo runs without any configuration; fill what a real sender must set."""
    if config.postal_address:
        return config
    return dataclasses.replace(config, postal_address=DEMO_POSTAL_ADDRESS)


def step(title: str, detail: str) -> None:
    mark = click.style("✓", fg="green") if title else " "
    click.echo(f"{mark} {title:<20} {detail}")
