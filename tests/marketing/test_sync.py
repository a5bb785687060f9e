"""Sync with the SocketLabs Marketing API: against the sandbox over real HTTP (live_server), and
with `responses` only for what the sandbox cannot do (503s, then giving up)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses
from django.conf import settings as django_settings
from pytest_django.fixtures import Settings

import socketlabs
from accounts.models import AuditLog, Server, User
from marketing import services, sync
from marketing.models import (
    Contact,
    ContactList,
    CustomField,
    FieldType,
    JobStatus,
    RemoteChange,
    Status,
    SyncJob,
    SyncKind,
)
from sandbox.models import SandboxContact, SandboxContactList, SandboxCustomField
from tests.sandbox.conftest import SandboxKeys, make_sandbox_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def sandbox_on(settings: Settings) -> Iterator[None]:
    settings.SANDBOX_ENABLED = True
    # Live-server threads may outlive a request: close connections per request (as tests/socketlabs does).
    database = django_settings.DATABASES["default"]
    kept = database.get("CONN_MAX_AGE", 0)
    database["CONN_MAX_AGE"] = 0
    yield
    database["CONN_MAX_AGE"] = kept


@pytest.fixture(autouse=True)
def no_broker(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Tasks are run here by the test, not sent to a broker; what would have been sent is recorded."""
    from marketing import tasks

    sent: list[tuple[str, Any]] = []
    monkeypatch.setattr(tasks.run_sync, "delay", lambda *a: sent.append(("delay", a)))
    monkeypatch.setattr(tasks.run_sync, "apply_async", lambda *a, **k: sent.append(("apply_async", (a, k))))
    monkeypatch.setattr(tasks.refresh_counts, "apply_async", lambda *a, **k: None)
    return sent


@pytest.fixture
def keys(live_server: Any) -> SandboxKeys:
    return make_sandbox_server()


@pytest.fixture
def synced(keys: SandboxKeys, live_server: Any, server: Server) -> Server:
    """Our server pointing at the sandbox's Marketing API with a key it knows."""
    server.socketlabs_id = keys.server_id
    server.marketing_url = f"{live_server.url}/sandbox/marketing/v1"
    server.marketing_key = keys.marketing_key
    server.save()
    return server


def fast(server: Server) -> socketlabs.SocketLabsClient:
    """The production client, minus real sleeps and shared breakers."""
    from accounts.services import client_for

    return client_for(server, sleep=lambda s: None, breakers=socketlabs.BreakerRegistry())


def run(server: Server, kind: str, user: User | None = None) -> SyncJob:
    job = sync.request_sync(server=server, kind=kind, actor=user)
    done = sync.run(job.pk, client_factory=fast)
    assert done is not None
    return done


def test_pulling_lists_links_them_by_name_and_creates_the_rest(
    synced: Server, keys: SandboxKeys, marketing: User
) -> None:
    news = SandboxContactList.objects.create(server=keys.server, name="Newsletter")
    vip = SandboxContactList.objects.create(server=keys.server, name="VIP customers")
    local = services.create_list(server=synced, actor=marketing, name="newsletter")
    job = run(synced, SyncKind.PULL_LISTS, marketing)
    assert job.status == JobStatus.DONE, job.message
    assert job.message == "Pulled lists: 2 lists at SocketLabs; 1 new here, 1 linked by name, 0 renamed."
    local.refresh_from_db()
    assert local.remote_id == news.pk
    assert ContactList.objects.get(remote_id=vip.pk).name == "VIP customers"
    assert AuditLog.objects.filter(action="contacts.sync.pull_lists").count() == 1
    vip.delete()
    again = run(synced, SyncKind.PULL_LISTS, marketing)
    assert "1 local list no longer at SocketLabs (unlinked)" in again.message


def test_pulling_contacts_brings_names_typed_fields_and_unsubscribes(
    synced: Server, keys: SandboxKeys, marketing: User
) -> None:
    SandboxCustomField.objects.create(server=keys.server, name="Score", data_type="Number")
    SandboxCustomField.objects.create(server=keys.server, name="City")
    for i in range(620):  # more than one page of 500
        SandboxContact.objects.create(
            server=keys.server, email_address=f"p{i}@example.com", custom_fields={"Score": str(i)}
        )
    SandboxContact.objects.create(
        server=keys.server,
        email_address="ann@example.com",
        first_name="Ann",
        custom_fields={"City": "Oslo"},
        unsubscribed=True,
    )
    services.create_contact(server=synced, actor=marketing, data={"email": "ann@example.com", "last_name": "Lee"})
    job = run(synced, SyncKind.PULL_CONTACTS, marketing)
    assert job.status == JobStatus.DONE, job.message
    assert (job.done, job.total) == (621, 621)
    assert "620 new, 1 updated" in job.message
    assert dict(CustomField.objects.values_list("key", "type")) == {"score": FieldType.NUMBER, "city": FieldType.TEXT}
    ann = Contact.objects.get(email="ann@example.com")
    assert (ann.first_name, ann.last_name, ann.status, ann.custom) == (
        "Ann",
        "Lee",
        Status.UNSUBSCRIBED,
        {"city": "Oslo"},
    )
    assert Contact.objects.get(email="p42@example.com").custom == {"score": 42}


def test_pushing_sends_list_additions_removals_and_unsubscribes(
    synced: Server, keys: SandboxKeys, marketing: User
) -> None:
    remote = SandboxContactList.objects.create(server=keys.server, name="Newsletter")
    linked = ContactList.objects.create(server=synced, name="Newsletter", remote_id=remote.pk)
    ann = services.create_contact(
        server=synced, actor=marketing, data={"email": "ann@example.com", "first_name": "Ann"}
    )
    bob = services.create_contact(server=synced, actor=marketing, data={"email": "bob@example.com"})
    services.set_contact_lists(contact=ann, actor=marketing, list_ids=[linked.pk])
    services.set_contact_lists(contact=bob, actor=marketing, list_ids=[linked.pk])
    services.update_contact(contact=bob, actor=marketing, data={"status": "unsubscribed"})
    assert sync.pending_changes(synced).count() == 3
    job = run(synced, SyncKind.PUSH, marketing)
    assert job.status == JobStatus.DONE, job.message
    assert job.message == "Pushed 3 changes to SocketLabs (2 list additions, 0 removals, 1 unsubscribes)."
    assert set(remote.contacts.values_list("email_address", flat=True)) == {"ann@example.com", "bob@example.com"}
    assert SandboxContact.objects.get(email_address="ann@example.com").first_name == "Ann"
    assert SandboxContact.objects.get(email_address="bob@example.com").unsubscribed
    assert not RemoteChange.objects.exists()
    services.set_contact_lists(contact=ann, actor=marketing, list_ids=[])
    removal = run(synced, SyncKind.PUSH, marketing)
    assert "1 removals" in removal.message
    assert list(remote.contacts.values_list("email_address", flat=True)) == ["bob@example.com"]


def test_a_change_socketlabs_refuses_is_kept_with_the_reason_and_the_rest_goes_through(
    synced: Server, keys: SandboxKeys, marketing: User
) -> None:
    remote = SandboxContactList.objects.create(server=keys.server, name="Newsletter")
    RemoteChange.objects.create(server=synced, action="add", list_remote_id=999_999, email="gone@example.com")
    RemoteChange.objects.create(server=synced, action="add", list_remote_id=remote.pk, email="ann@example.com")
    job = run(synced, SyncKind.PUSH, marketing)
    assert job.status == JobStatus.DONE
    assert "SocketLabs refused 1" in job.message
    refused = RemoteChange.objects.get()
    assert refused.email == "gone@example.com"
    assert refused.error.startswith("SocketLabs has no such list or contact (404)")
    assert remote.contacts.count() == 1
    assert sync.retry_refused(server=synced, actor=marketing) == 1
    assert sync.pending_changes(synced).count() == 1


def test_a_refused_key_is_said_in_plain_words(synced: Server, marketing: User) -> None:
    synced.marketing_key = "not-the-right-key"
    synced.save()
    job = run(synced, SyncKind.PULL_LISTS, marketing)
    assert job.status == JobStatus.FAILED
    assert job.message == (
        f"SocketLabs refused the Marketing API key for server {synced.socketlabs_id} (401). "
        "Check the key under Admin → Servers."
    )
    assert "not-the-right-key" not in job.message


def test_the_sync_page_shows_the_last_result(synced: Server, marketing: User, as_user: Callable[[User], Any]) -> None:
    run(synced, SyncKind.PULL_LISTS, marketing)
    page = as_user(marketing).get(f"/servers/{synced.pk}/contacts/sync/").content.decode()
    assert "Pulled lists: 0 lists at SocketLabs" in page


# --- what the sandbox cannot do ----------------------------------------------------------------------
REMOTE = "https://marketing.example.test/marketing/v1"


@pytest.fixture
def remote_server(server: Server) -> Server:
    server.marketing_url = REMOTE
    server.marketing_key = "marketing-key-1234"
    server.save()
    return server


@responses.activate
def test_it_rides_out_a_503_and_then_succeeds(remote_server: Server, marketing: User) -> None:
    lists = f"{REMOTE}/lists"
    responses.get(lists, status=503, json={"data": None, "errors": [{"errorType": "Unavailable", "message": "later"}]})
    responses.get(lists, status=503, json={"data": None, "errors": [{"errorType": "Unavailable", "message": "later"}]})
    responses.get(
        lists,
        json={
            "timestamp": "x",
            "totalCount": 1,
            "totalPages": 1,
            "count": 1,
            "collection": [{"id": 5, "name": "News"}],
        },
    )
    job = run(remote_server, SyncKind.PULL_LISTS, marketing)
    assert job.status == JobStatus.DONE, job.message
    assert len(responses.calls) == 3
    assert ContactList.objects.get().remote_id == 5


@responses.activate
def test_when_socketlabs_stays_down_the_job_waits_and_tries_again_then_fails(
    remote_server: Server, marketing: User, no_broker: list[tuple[str, Any]]
) -> None:
    responses.get(f"{REMOTE}/lists", status=503, json={"data": None, "errors": []})
    job = run(remote_server, SyncKind.PULL_LISTS, marketing)
    assert job.status == JobStatus.RETRYING
    assert job.message.startswith("SocketLabs had an internal error (HTTP 503). Mailroom tries again at ")
    assert job.next_attempt_at is not None
    assert ("apply_async", (((job.pk,),), {"countdown": 60})) in no_broker
    for _ in range(3):
        SyncJob.objects.filter(pk=job.pk).update(status=JobStatus.RETRYING)
        job = sync.run(job.pk, client_factory=fast) or job
    assert job.status == JobStatus.FAILED
    assert "(after 4 attempts)" in job.message
