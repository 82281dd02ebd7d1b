"""Security of every answer: headers, cookies, no open redirect, plain error pages, and proxy
headers believed only from the configured proxies."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from newsletter.config import Settings
from newsletter.db import session_scope
from newsletter.subscribers.models import ConsentEvent
from newsletter.subscribers.tokens import unsubscribe_token
from newsletter.web.app import create_app
from tests.web.conftest import MakeClient, add_reader, csrf_of, make_list, web_services

PATHS = [
    "/",
    "/archive",
    "/unsubscribe",
    "/subscribe/weekly",
    "/u/not.a.token",
    "/confirm/c0000.1.1.1.aaaa",
    "/preferences/junk",
    "/issues/1",
    "/no/such/page",
    "/healthz",
    "/static/style.css",
]


@pytest.fixture
def weekly(web_settings: Settings) -> int:
    return make_list(web_settings, "Weekly")


@pytest.mark.parametrize("path", PATHS)
def test_every_answer_has_the_security_headers(client: TestClient, weekly: int, path: str) -> None:
    response = client.get(path, follow_redirects=False)

    policy = response.headers["content-security-policy"]
    script = next((d for d in policy.split(";") if d.strip().startswith("script-src")), "")
    assert "unsafe-inline" not in script
    assert "frame-ancestors 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["strict-transport-security"].startswith("max-age=")
    assert not 300 <= response.status_code < 400


def test_the_session_cookie_is_httponly_lax_and_secure_behind_https(
    client: TestClient, weekly: int
) -> None:
    cookie = client.get("/subscribe/weekly").headers["set-cookie"].lower()

    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" in cookie


def test_on_a_local_http_address_the_cookie_is_not_secure(
    make_client: MakeClient, weekly: int
) -> None:
    client = make_client(base_url="http://127.0.0.1:8000")
    response = client.get("/subscribe/weekly")

    assert "secure" not in response.headers["set-cookie"].lower()
    assert "strict-transport-security" not in response.headers


def test_pages_without_a_form_set_no_cookie(client: TestClient, web_settings: Settings) -> None:
    reader = add_reader(web_settings, make_list(web_settings, "Weekly"), "a@example.org")
    for path in ("/archive", f"/u/{reader.token}", "/unsubscribe"):
        assert "set-cookie" not in client.get(path).headers, path


@pytest.mark.parametrize(
    "path",
    [
        "/archive/",
        "//evil.example/",
        "/subscribe/weekly?next=https://evil.example/",
        "/u/x?redirect=https://evil.example/",
        "/%2F%2Fevil.example",
    ],
)
def test_nothing_redirects_anywhere(client: TestClient, weekly: int, path: str) -> None:
    response = client.get(path, follow_redirects=False, headers={"Host": "evil.example"})

    assert not 300 <= response.status_code < 400
    assert "location" not in response.headers


def test_an_unexpected_error_is_a_plain_page_without_internals(
    web_settings: Settings,
) -> None:
    app = create_app(web_settings, web_services(web_settings))

    def broken() -> None:
        raise RuntimeError("SELECT secret FROM internals -- /srv/app/secret.py line 3")

    app.add_api_route("/broken", broken)
    client = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)

    response = client.get("/broken")

    assert response.status_code == 500
    assert response.headers["content-type"].startswith("text/html")
    for leak in ("SELECT", "Traceback", "secret.py", "RuntimeError", "internals"):
        assert leak not in response.text


def test_a_database_outage_is_a_plain_5xx_page(
    make_client: MakeClient, web_settings: Settings, tmp_path: Any
) -> None:
    client = make_client(database_url=f"sqlite:///{tmp_path}/no/such/dir/x.db")
    token = unsubscribe_token(web_settings.secret_key, 1, 1)

    for method, path in (("GET", "/archive"), ("GET", f"/u/{token}"), ("POST", f"/u/{token}")):
        response = client.request(method, path, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 500
        for leak in ("sqlite", "OperationalError", "Traceback", "SELECT", "no/such/dir"):
            assert leak not in response.text


def test_forwarded_headers_are_believed_only_from_a_trusted_proxy(
    make_client: MakeClient, web_settings: Settings, weekly: int
) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    # TestClient connects as "testclient"; trusting that name stands for trusting the proxy.
    for trusted, expected in ((False, "testclient"), (True, "203.0.113.7")):
        settings = dataclasses.replace(
            web_settings, trusted_proxies=("testclient",) if trusted else ()
        )
        client = make_client(
            services=web_services(settings), trusted_proxies=settings.trusted_proxies
        )
        form = client.get("/subscribe/weekly")
        client.post(
            "/subscribe/weekly",
            data={
                "csrf_token": csrf_of(form),
                "email": f"p{trusted}@example.org",
                "consent": "yes",
            },
            headers=forwarded,
        )
        with session_scope(web_settings) as session:
            ips = set(session.scalars(select(ConsentEvent.ip)))
        assert expected in ips
    assert ips == {"testclient", "203.0.113.7"}
