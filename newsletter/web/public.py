"""The subscribers' pages: one-click unsubscribe, sign-up with double opt-in, confirmation,
preferences. Routes only wire: read the form, call the subscriber stage in one transaction,
queue mail after the commit, render a page.

No GET changes anything (mail scanners open every link): each token page shows a button that
POSTs. Every token is verified before anything is looked up with it; a bad one is a 4xx page.
The sign-up page answers the same whatever the address's state (no enumeration).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse

from newsletter import jobs
from newsletter.delivery import transactional
from newsletter.errors import InvalidInput
from newsletter.subscribers import consent, optout, signup
from newsletter.subscribers.address import normalise_email
from newsletter.subscribers.models import MailingList
from newsletter.subscribers.service import find_list, list_slug
from newsletter.subscribers.tokens import read_test_token
from newsletter.web.context import (
    client_ip,
    evidence,
    services_of,
    settings_of,
    transaction,
)
from newsletter.web.pages import render
from newsletter.web.security import CSRF_FIELD, check_csrf

router = APIRouter()

ONE_CLICK = "One-Click"
# Our tokens are lower-case letters, digits and dots (tokens.py); anything else is not one.
Token = Annotated[str, Path(max_length=128, pattern=r"^[A-Za-z0-9.]+$")]
ListKey = Annotated[str, Path(max_length=200)]
Field = Annotated[str, Form(max_length=1000)]


# --- unsubscribe (RFC 8058 one-click) -------------------------------------------------------


@router.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: Token) -> HTMLResponse:
    """The landing page of the unsubscribe link: one button, which list, the preferences."""
    if (test := _test_send(request, token)) is not None:
        return test
    with transaction(request) as session:
        target = optout.unsubscribe_target(session, settings_of(request).secret_key, token)
    return render(request, "unsubscribe.html", {"target": target, "token": token})


@router.post("/u/{token}", response_class=HTMLResponse)
def one_click_unsubscribe(
    request: Request,
    token: Token,
    list_unsubscribe: Annotated[str | None, Form(alias="List-Unsubscribe")] = None,
) -> HTMLResponse:
    """RFC 8058: ``List-Unsubscribe=One-Click`` (urlencoded or multipart), no cookie, no CSRF
    token; 200 at once, never a redirect. Again: 200 and nothing changes."""
    if list_unsubscribe != ONE_CLICK:
        raise HTTPException(status_code=400, detail="Expected the form field List-Unsubscribe.")
    if (test := _test_send(request, token)) is not None:
        return test
    facts = evidence(request)
    with transaction(request) as session:
        target = optout.unsubscribe_one_click(
            session,
            settings_of(request).secret_key,
            token,
            now=services_of(request).clock(),
            ip=facts.ip,
            user_agent=facts.user_agent,
        )
    return render(request, "unsubscribed.html", {"target": target, "token": token})


def _test_send(request: Request, token: str) -> HTMLResponse | None:
    """The page for the unsubscribe link of a test send (``delivery/testsend.py``): it names no
    subscriber, so it explains and changes nothing. None for any other token."""
    try:
        claim = read_test_token(settings_of(request).secret_key, token)
    except InvalidInput:
        return None
    return render(request, "test_send.html", {"claim": claim})


@router.get("/unsubscribe", response_class=HTMLResponse)
def unsubscribe_help(request: Request) -> HTMLResponse:
    """Where the web version's unsubscribe link goes: it carries nobody's token."""
    return render(request, "unsubscribe_help.html")


# --- sign-up (double opt-in) ----------------------------------------------------------------


@router.get("/subscribe/{list_key}", response_class=HTMLResponse)
def subscribe_page(request: Request, list_key: ListKey) -> HTMLResponse:
    with transaction(request) as session:
        mailing_list = find_list(session, list_key)
        page = _subscribe_context(mailing_list)
    return render(request, "subscribe.html", page, with_csrf=True)


@router.post("/subscribe/{list_key}", response_class=HTMLResponse)
def subscribe(
    request: Request,
    background: BackgroundTasks,
    list_key: ListKey,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=200)] = "",
    email: Field = "",
    name: Field = "",
    consent_given: Annotated[str, Form(alias="consent", max_length=10)] = "",
    website: Field = "",  # the honeypot: people never see it, form-filling robots fill it
) -> HTMLResponse:
    check_csrf(request, {CSRF_FIELD: csrf_token})
    settings, services = settings_of(request), services_of(request)
    with transaction(request) as session:
        mailing_list = find_list(session, list_key)
        page = _subscribe_context(mailing_list)
    if website:
        # A robot: answer exactly as for a person, store nothing.
        return render(request, "subscribed.html", page)
    if not services.limiter.allow_ip(client_ip(request)):
        raise HTTPException(status_code=429, detail="Please wait a while before trying again.")
    problem = None if consent_given == "yes" else "Please tick the box to agree."
    try:
        address = normalise_email(email)
    except InvalidInput as exc:
        problem = f"This email address does not look right: {exc}."
    if problem is not None:
        return render(
            request,
            "subscribe.html",
            {**page, "problem": problem, "email": email, "name": name},
            status_code=422,
            with_csrf=True,
        )
    if not services.limiter.allow_address(address):
        raise HTTPException(status_code=429, detail="Please wait a while before trying again.")
    queued: list[int] = []
    with transaction(request) as session:
        mailing_list = find_list(session, list_key)
        result = signup.sign_up(
            session,
            settings.secret_key,
            mailing_list,
            address,
            name=name,
            evidence=evidence(request, f"/subscribe/{list_slug(mailing_list.name)}"),
            now=services.clock(),
        )
        if result.needs_confirmation and result.subscriber_id is not None:
            queued.append(
                transactional.queue_confirmation(
                    session, result.subscriber_id, mailing_list.id, services.clock()
                )
            )
    _send_after_response(request, background, queued)
    return render(request, "subscribed.html", page)


def _subscribe_context(mailing_list: MailingList) -> dict[str, object]:
    return {
        "list_name": mailing_list.name,
        "description": mailing_list.description,
        "double_opt_in": mailing_list.double_opt_in,
        "consent_text": signup.consent_sentence(mailing_list.name),
    }


# --- confirmation ---------------------------------------------------------------------------


@router.get("/confirm/{token}", response_class=HTMLResponse)
def confirm_page(request: Request, token: Token) -> HTMLResponse:
    with transaction(request) as session:
        pending = consent.pending_confirmation(
            session, settings_of(request).secret_key, token, now=services_of(request).clock()
        )
    return render(request, "confirm.html", {"list_name": pending.list_name}, with_csrf=True)


@router.post("/confirm/{token}", response_class=HTMLResponse)
def confirm(
    request: Request,
    token: Token,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=200)] = "",
) -> HTMLResponse:
    check_csrf(request, {CSRF_FIELD: csrf_token})
    facts = evidence(request)
    settings, services = settings_of(request), services_of(request)
    with transaction(request) as session:
        pending = consent.pending_confirmation(
            session, settings.secret_key, token, now=services.clock()
        )
        consent.confirm(
            session,
            settings.secret_key,
            token,
            now=services.clock(),
            ip=facts.ip,
            user_agent=facts.user_agent,
        )
    return render(request, "confirmed.html", {"list_name": pending.list_name})


# --- preferences ----------------------------------------------------------------------------


@router.get("/preferences/{token}", response_class=HTMLResponse)
def preferences_page(request: Request, token: Token) -> HTMLResponse:
    with transaction(request) as session:
        entries = signup.preferences(session, settings_of(request).secret_key, token)
    return render(request, "preferences.html", {"entries": entries, "token": token}, with_csrf=True)


@router.post("/preferences/{token}", response_class=HTMLResponse)
def update_preferences(
    request: Request,
    background: BackgroundTasks,
    token: Token,
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=200)] = "",
    lists: Annotated[list[int] | None, Form(alias="list")] = None,
    leave_all: Annotated[str, Form(max_length=10)] = "",
) -> HTMLResponse:
    check_csrf(request, {CSRF_FIELD: csrf_token})
    settings, services = settings_of(request), services_of(request)
    queued: list[int] = []
    with transaction(request) as session:
        changes = signup.update_preferences(
            session,
            settings.secret_key,
            token,
            keep=set(lists or []),
            leave_all=bool(leave_all),
            evidence=evidence(request, "/preferences"),
            now=services.clock(),
        )
        for list_id in changes.to_confirm:
            queued.append(
                transactional.queue_confirmation(
                    session, changes.subscriber_id, list_id, services.clock()
                )
            )
        entries = signup.preferences(session, settings.secret_key, token)
    _send_after_response(request, background, queued)
    return render(
        request,
        "preferences.html",
        {
            "entries": entries,
            "token": token,
            "saved": True,
            "left_all": bool(leave_all),
            "asked": len(changes.to_confirm),
        },
        with_csrf=True,
    )


def _send_after_response(request: Request, background: BackgroundTasks, ids: list[int]) -> None:
    """Hand committed outbox rows to the job after the answer has gone out: in embedded mode
    the job sends right here, and the visitor must not wait for (or time) the relay."""
    settings = settings_of(request)
    for message_id in ids:
        background.add_task(jobs.submit, settings, "send_transactional", message_id=message_id)
