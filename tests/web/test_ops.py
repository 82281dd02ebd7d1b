"""``/healthz`` names what is down; ``/metrics`` speaks Prometheus and counts from the database."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from newsletter.config import Settings
from tests.web.conftest import MakeClient, add_reader, make_list


def test_health_is_ok_without_a_broker(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "none"}


@pytest.mark.redis
def test_health_checks_the_broker_when_one_is_set(make_client: MakeClient) -> None:
    up = make_client(broker_url="redis://127.0.0.1:6379/15").get("/healthz")
    down = make_client(broker_url="redis://127.0.0.1:1/0").get("/healthz")

    assert (up.status_code, up.json()) == (200, {"database": "ok", "broker": "ok"})
    assert (down.status_code, down.json()) == (503, {"database": "ok", "broker": "down"})


def test_health_is_503_naming_the_database_when_it_is_down(
    make_client: MakeClient, tmp_path: Any
) -> None:
    response = make_client(database_url=f"sqlite:///{tmp_path}/no/dir/x.db").get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"database": "down", "broker": "none"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_unsubscribes_and_time_requests_by_route(
    client: TestClient, web_settings: Settings
) -> None:
    reader = add_reader(web_settings, make_list(web_settings, "Weekly"), "a@example.org")
    client.post(f"/u/{reader.token}", data={"List-Unsubscribe": "One-Click"})

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = samples(response.text)
    assert (
        values[
            ("newsletter_consent_events_total", (("action", "unsubscribe"), ("source", "email")))
        ]
        == 1
    )
    assert values[("newsletter_queue_depth", (("queue", "deliveries"),))] == 0
    assert ("newsletter_messages_sent_total", ()) in values
    routes = {
        dict(labels).get("route") for name, labels in values if name.startswith("newsletter_http")
    }
    assert "/u/{token}" in routes
    assert reader.token not in response.text
