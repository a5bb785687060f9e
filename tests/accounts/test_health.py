"""/health/: database, broker (the real Redis) and how fresh beat's heartbeat is."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from accounts.models import Heartbeat
from accounts.tasks import beat_heartbeat

pytestmark = pytest.mark.django_db

CLOSED_PORT_BROKER = "redis://:s3cret-broker-pw@127.0.0.1:9/0"  # nothing listens on port 9


@pytest.fixture(autouse=True)
def real_broker() -> None:
    if not django_settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.skip("needs CELERY_BROKER_URL=redis://… (the real broker)")


def test_it_is_healthy_with_database_broker_and_a_fresh_beat(client):
    beat_heartbeat()
    response = client.get(reverse("health"))
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["broker"] == {"ok": True}
    assert body["checks"]["beat"]["ok"] is True
    assert body["checks"]["beat"]["age_seconds"] < 5


def test_a_stale_beat_is_reported_but_the_site_still_serves(client):
    Heartbeat.objects.create(name="beat", at=timezone.now() - timedelta(minutes=10))
    response = client.get(reverse("health"))
    assert response.status_code == 200  # load balancers keep sending traffic
    beat = response.json()["checks"]["beat"]
    assert beat["ok"] is False
    assert beat["age_seconds"] >= 600


def test_beat_is_fresh_just_inside_three_minutes(client):
    Heartbeat.objects.create(name="beat", at=timezone.now() - timedelta(minutes=2, seconds=50))
    assert client.get(reverse("health")).json()["checks"]["beat"]["ok"] is True


def test_no_heartbeat_yet_means_beat_has_not_run(client):
    beat = client.get(reverse("health")).json()["checks"]["beat"]
    assert beat == {"ok": False, "last_tick": None}


def test_a_broker_that_is_down_makes_it_unhealthy_quickly(client, settings):
    beat_heartbeat()
    settings.CELERY_BROKER_URL = CLOSED_PORT_BROKER
    started = time.monotonic()
    response = client.get(reverse("health"))
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    body = response.json()
    assert body["ok"] is False
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["broker"]["error"]
    assert body["checks"]["database"] == {"ok": True}
    assert elapsed < 5
    assert "s3cret-broker-pw" not in response.content.decode()


def test_it_needs_no_login_and_is_never_cached(client):
    response = client.get(reverse("health"))
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    assert client.post(reverse("health")).status_code == 405
