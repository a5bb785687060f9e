"""Large audiences expand in a background job, not in the web request; the summary polls its progress.

The job's state lives in the database (`Send.audience_*`), so a worker that stops mid-way is
replaced by the minute sweep, and the restarted job reads the audience again without duplicates.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Server, User
from marketing.models import Contact, ContactList, Membership, Status
from sending import audience, engine
from sending.models import AudienceState, RecipientState, Send, SendRecipient, SendStatus, Template

pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs(monkeypatch: pytest.MonkeyPatch, settings: Any, tmp_path: Path) -> list[int]:
    """Audience jobs the engine queued; tests run `audience.expand` themselves. Inline limits are tiny."""
    settings.SENDING_INLINE_AUDIENCE_ROWS = 3
    settings.SENDING_INLINE_AUDIENCE_BYTES = 64
    settings.MEDIA_ROOT = tmp_path
    calls: list[int] = []
    monkeypatch.setattr(engine, "enqueue_audience", calls.append)
    return calls


@pytest.fixture
def template(server: Server) -> Template:
    return Template.objects.create(server=server, name="Spring", subject="Hi %%FirstName%%", text_body="Hello")


@pytest.fixture
def customers(server: Server) -> ContactList:
    contact_list = ContactList.objects.create(server=server, name="Customers")
    for i in range(6):
        status = Status.UNSUBSCRIBED if i == 5 else Status.SUBSCRIBED
        contact = Contact.objects.create(server=server, email=f"c{i}@example.net", first_name=f"C{i}", status=status)
        Membership.objects.create(contact_list=contact_list, contact=contact)
    return contact_list


def _wizard(template: Template, **extra: Any) -> dict[str, Any]:
    return {"template": template.pk, "from_address": "news@example.com", **extra}


def test_a_large_list_is_expanded_by_the_job_and_the_summary_polls_until_it_is_ready(
    as_user: Callable[[User], Client],
    marketing: User,
    server: Server,
    template: Template,
    customers: ContactList,
    jobs: list[int],
) -> None:
    client = as_user(marketing)

    response = client.post(
        reverse("sending:send_new", args=[server.pk]), _wizard(template, audience="lists", lists=[str(customers.pk)])
    )

    send = Send.objects.get()
    assert response.status_code == 302
    assert jobs == [send.pk]
    assert send.audience_state == AudienceState.EXPANDING
    assert send.audience_expected == 6
    assert not SendRecipient.objects.exists()  # nothing was expanded inside the request
    page = client.get(response["Location"]).content.decode()
    assert "Preparing the audience in the background: 0 of 6 rows read" in page
    assert "Confirm and send" not in page
    with pytest.raises(engine.SendError, match="still being prepared"):
        engine.start(send, actor=marketing)
    progress_url = reverse("sending:send_progress", args=[server.pk, send.pk]) + "?audience=1"
    assert "HX-Refresh" not in client.get(progress_url, headers={"HX-Request": "true"})

    assert audience.expand(send.pk) == "ready"

    send.refresh_from_db()
    assert (send.audience_state, send.total, send.skipped, send.audience_done) == (AudienceState.READY, 5, 1, 6)
    assert client.get(progress_url, headers={"HX-Request": "true"})["HX-Refresh"] == "true"
    page = client.get(response["Location"]).content.decode()
    assert "<strong>5</strong> recipients, <strong>1</strong> skipped" in page
    assert "Confirm and send" in page
    assert audience.expand(send.pk) == "skipped"  # a second delivery of the task does nothing


def test_a_small_list_still_expands_at_once(
    as_user: Callable[[User], Client],
    marketing: User,
    server: Server,
    template: Template,
    customers: ContactList,
    jobs: list[int],
    settings: Any,
) -> None:
    settings.SENDING_INLINE_AUDIENCE_ROWS = 100

    as_user(marketing).post(
        reverse("sending:send_new", args=[server.pk]), _wizard(template, audience="lists", lists=[str(customers.pk)])
    )

    send = Send.objects.get()
    assert not jobs
    assert (send.audience_state, send.total, send.skipped) == (AudienceState.READY, 5, 1)


def test_a_large_csv_is_kept_on_disk_for_the_job_and_removed_afterwards(
    as_user: Callable[[User], Client], marketing: User, server: Server, template: Template, jobs: list[int]
) -> None:
    body = "Email,FirstName\n" + "".join(f"p{i}@example.net,P{i}\n" for i in range(20)) + "broken,X\n"
    upload = SimpleUploadedFile("people.csv", body.encode())

    as_user(marketing).post(
        reverse("sending:send_new", args=[server.pk]), _wizard(template, audience="csv", csv_file=upload)
    )

    send = Send.objects.get()
    stored = Path(django_settings.MEDIA_ROOT) / send.audience_spec["path"]
    assert stored.read_text() == body
    assert not SendRecipient.objects.exists()

    assert audience.expand(send.pk) == "ready"

    send.refresh_from_db()
    assert (send.total, send.skipped) == (20, 1)
    assert SendRecipient.objects.get(address="p7@example.net").fields == {"FirstName": "P7"}
    assert not stored.exists()


def test_an_unreadable_csv_fails_the_job_in_words(
    server: Server, marketing: User, template: Template, jobs: list[int]
) -> None:
    send = engine.create_send(server=server, actor=marketing, template=template, from_address="a@example.com")
    audience.prepare(send, kind="csv", upload=SimpleUploadedFile("x.csv", b"Name,City\n" + b"Ann,Oslo\n" * 20))

    assert audience.expand(send.pk) == "failed"

    send.refresh_from_db()
    assert send.audience_state == AudienceState.FAILED
    assert "No e-mail column" in send.audience_error
    with pytest.raises(engine.SendError, match="could not be prepared: No e-mail column"):
        engine.start(send, actor=marketing)


def test_a_job_whose_worker_stopped_is_requeued_by_the_sweep_and_finishes_without_duplicates(
    server: Server, marketing: User, template: Template, customers: ContactList, jobs: list[int]
) -> None:
    send = engine.create_send(server=server, actor=marketing, template=template, from_address="a@example.com")
    assert audience.prepare(send, kind="lists", list_ids=[customers.pk])
    # The first worker got through part of the audience, then died (no heartbeat since).
    engine.add_recipients(send, [engine.AudienceRow("c0@example.net", "", {"FirstName": "C0"})])
    Send.objects.filter(pk=send.pk).update(
        audience_state=AudienceState.EXPANDING, audience_heartbeat=timezone.now() - timedelta(minutes=2)
    )
    jobs.clear()

    assert engine.sweep(older_than=timedelta(minutes=15)).audiences_requeued == 1
    assert jobs == [send.pk]
    assert engine.sweep().audiences_requeued == 0  # the heartbeat was renewed: not queued twice

    assert audience.expand(send.pk) == "ready"

    rows = list(SendRecipient.objects.filter(send=send).values_list("address", flat=True))
    assert len(rows) == len(set(rows)) == 6
    send.refresh_from_db()
    assert (send.total, send.skipped, send.status) == (5, 1, SendStatus.DRAFT)


def test_a_send_discarded_while_its_audience_is_prepared_is_left_alone(
    server: Server, marketing: User, template: Template, customers: ContactList, jobs: list[int]
) -> None:
    send = engine.create_send(server=server, actor=marketing, template=template, from_address="a@example.com")
    audience.prepare(send, kind="lists", list_ids=[customers.pk])
    engine.cancel(send, actor=marketing)

    assert audience.expand(send.pk) == "skipped"
    assert not SendRecipient.objects.filter(state=RecipientState.PENDING).exists()


def test_the_job_is_queued_after_commit_and_runs_as_a_celery_task(
    server: Server,
    marketing: User,
    template: Template,
    customers: ContactList,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from sending import send_tasks

    settings.SENDING_INLINE_AUDIENCE_ROWS = 3
    delayed: list[int] = []
    monkeypatch.setattr(send_tasks.expand_send_audience, "delay", delayed.append)
    send = engine.create_send(server=server, actor=marketing, template=template, from_address="a@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        assert audience.prepare(send, kind="lists", list_ids=[customers.pk])
        assert not delayed  # not before the draft is committed

    assert delayed == [send.pk]
    assert send_tasks.expand_send_audience.apply(args=(send.pk,)).get() == "ready"
    send.refresh_from_db()
    assert (send.total, send.skipped) == (5, 1)
