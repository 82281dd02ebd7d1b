"""Test sends: the message a list's subscribers get, to a few addresses, without a campaign.

A seed or an editor must judge the real message, so a test is built like a campaign's: the
headers from ``service.campaign_headers`` (List-Id, Feedback-ID and List-Unsubscribe of the
list), the parts from ``MessageTemplate``, the DKIM signature of the configured key, sent
through the ``Transport`` the caller configured. What has to differ does, and nothing else:
the subject starts with ``[TEST]``, the To and Message-ID are the tester's, the Feedback-ID
names no campaign (``c0``: there is none yet), and where a subscriber's unsubscribe token
would be there is a signed test token (``tokens.sign_test_token``) that names the issue and
the list, unsubscribes nobody, and opens a "this was a test" page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.delivery.dkim import DkimSigner
from newsletter.delivery.message import MessageTemplate, RecipientValues
from newsletter.delivery.service import campaign_headers
from newsletter.delivery.transports import Transport
from newsletter.errors import DeliveryError, InvalidInput
from newsletter.issues.service import get_issue
from newsletter.render import service as render_service
from newsletter.subscribers.address import normalise_email
from newsletter.subscribers.models import MailingList
from newsletter.subscribers.service import get_list
from newsletter.subscribers.tokens import sign_test_token, unsubscribe_mailto, unsubscribe_url

TEST_SUBJECT_PREFIX = "[TEST] "
NO_CAMPAIGN = 0  # the campaign id in a test's Feedback-ID


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    to: str
    accepted: bool
    reply: str  # the relay's reply, or why it refused

    def as_document(self) -> dict[str, str]:
        return {
            "to": self.to,
            "result": f"{'accepted' if self.accepted else 'refused'}: {self.reply}",
        }


@dataclass(frozen=True, slots=True)
class IssueTestReport:
    issue_id: int
    list_name: str
    signed: bool
    outcomes: tuple[RecipientOutcome, ...]

    def as_document(self) -> dict[str, Any]:
        return {
            "issue": self.issue_id,
            "list": self.list_name,
            "dkim": self.signed,
            "results": [outcome.as_document() for outcome in self.outcomes],
        }


def send_test(
    session: Session,
    settings: Settings,
    issue_id: int,
    addresses: list[str],
    *,
    transport: Transport,
    signer: DkimSigner | None,
    now: dt.datetime,
    list_name: str | None = None,
) -> IssueTestReport:
    """Send the issue, as list ``list_name``'s subscribers get it, to each address.

    Without ``list_name`` the only list there is; with several, the caller must choose (the
    List-Id, the Feedback-ID and the unsubscribe links are the list's). Each address gets the
    relay's answer; a refusal does not stop the others.
    """
    if not addresses:
        raise InvalidInput("give at least one address with --to")
    recipients = [normalise_email(address) for address in addresses]
    issue = get_issue(session, issue_id)
    mailing_list = _tested_list(session, list_name)
    rendering = render_service.render_if_changed(session, settings, issue_id)
    template = MessageTemplate.build(
        campaign_headers(settings, TEST_SUBJECT_PREFIX + issue.subject, mailing_list, NO_CAMPAIGN),
        rendering.html,
        rendering.text,
    )
    token = sign_test_token(settings.secret_key, issue_id, mailing_list.id)
    # As sender.build: a signed message stays 7-bit, so no later hop breaks the body hash.
    eight_bit = transport.eight_bit and signer is None
    outcomes: list[RecipientOutcome] = []
    for number, email in enumerate(recipients):
        values = RecipientValues(
            email=email,
            name="",
            message_id=f"<test.i{issue_id}.{number}.{now:%Y%m%d%H%M%S%f}@{settings.sending_domain}>",
            unsubscribe_url=unsubscribe_url(settings, token),
            unsubscribe_mailto=unsubscribe_mailto(settings, token),
            view_url=f"{settings.base_url}/issues/{issue_id}",
        )
        raw = template.render(values, date=now, eight_bit=eight_bit)
        message = signer.sign(raw) if signer else raw
        try:
            reply = transport.send(str(settings.bounce_address.addr_spec), email, message)
        except DeliveryError as exc:
            outcomes.append(RecipientOutcome(email, accepted=False, reply=str(exc)))
        else:
            outcomes.append(RecipientOutcome(email, accepted=True, reply=reply.reply))
    return IssueTestReport(issue_id, mailing_list.name, signer is not None, tuple(outcomes))


def _tested_list(session: Session, list_name: str | None) -> MailingList:
    if list_name is not None:
        return get_list(session, list_name)
    lists = list(session.scalars(sa.select(MailingList).order_by(MailingList.name).limit(50)))
    if len(lists) == 1:
        return lists[0]
    if not lists:
        raise InvalidInput(
            "there is no list yet: a test send is the message a list's subscribers get; "
            "create one with `newsletter list create NAME`"
        )
    names = ", ".join(m.name for m in lists)
    raise InvalidInput(f"give --list NAME: which list's message to test ({names})")
