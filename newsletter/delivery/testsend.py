"""Test sends: the issue as subscribers get it, to a few addresses, without campaign or ledger."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.delivery.message import CampaignHeaders, MessageTemplate, RecipientValues
from newsletter.delivery.transports.smtp import SmtpTransport
from newsletter.errors import DeliveryError, InvalidInput
from newsletter.issues.service import get_issue
from newsletter.render import service as render_service
from newsletter.subscribers.address import normalise_email

TEST_SUBJECT_PREFIX = "[TEST] "


def send_test(
    session: Session, settings: Settings, issue_id: int, addresses: list[str]
) -> list[dict[str, str]]:
    """Send the issue's current rendering to each address; report the relay's answer for each."""
    if not addresses:
        raise InvalidInput("give at least one address with --to")
    recipients = [normalise_email(address) for address in addresses]
    issue = get_issue(session, issue_id)
    rendering = render_service.render_if_changed(session, settings, issue_id)
    template = MessageTemplate.build(
        CampaignHeaders(
            from_address=settings.from_address,
            reply_to=settings.reply_to,
            subject=TEST_SUBJECT_PREFIX + issue.subject,
            list_id=f"test.{settings.sending_domain}",
            list_name="Test sends",
            feedback_id=f"test:i{issue_id}:nl:{settings.feedback_id_sender}",
        ),
        rendering.html,
        rendering.text,
    )
    results: list[dict[str, str]] = []
    with SmtpTransport(settings.smtp, require_tls=settings.smtp_require_tls) as transport:
        for number, email in enumerate(recipients):
            values = RecipientValues(
                email=email,
                name="",
                message_id=f"<test.i{issue_id}.{number}.{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S%f}"
                f"@{settings.sending_domain}>",
                # A test recipient has no subscription: the links show where they will point.
                unsubscribe_url=f"{settings.base_url}/u/test",
                view_url=f"{settings.base_url}/issues/{issue_id}",
            )
            message = template.render(
                values, date=dt.datetime.now(dt.UTC), eight_bit=transport.eight_bit
            )
            try:
                reply = transport.send(str(settings.bounce_address.addr_spec), email, message)
            except DeliveryError as exc:
                results.append({"to": email, "result": f"refused: {exc}"})
            else:
                results.append({"to": email, "result": f"accepted: {reply.reply}"})
    return results
