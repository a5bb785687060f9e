"""Full pulls from the sandbox over real HTTP: add in the sandbox, pull, compare."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from accounts.models import Server
from sandbox.models import SandboxSuppression
from suppression import services
from suppression.models import MirrorState, Suppression, SyncStatus
from tests.suppression.conftest import CLOSED_PORT_URL, Linked

pytestmark = pytest.mark.django_db(transaction=True)


def mirror_of(server: Server) -> dict[str, str]:
    return dict(Suppression.objects.filter(server=server).values_list("address", "reason"))


def test_it_pulls_the_whole_list_and_matches_the_sandbox(linked: Linked) -> None:
    linked.seed("ann@example.com", "bob@example.org", reason="Bounce")
    linked.seed("carl@example.net", reason="Complaint")
    outcome = services.sync(server=linked.server)
    assert outcome.ok, outcome.message
    assert mirror_of(linked.server) == {
        "ann@example.com": "Bounce",
        "bob@example.org": "Bounce",
        "carl@example.net": "Complaint",
    }
    state = MirrorState.objects.get(server=linked.server)
    assert state.last_synced_at is not None
    assert (state.last_sync_rows, state.last_sync_added, state.sync_status) == (3, 3, SyncStatus.IDLE)
    assert state.plan_enabled is True
    entry = Suppression.objects.get(server=linked.server, address="carl@example.net")
    sandbox_entry = SandboxSuppression.objects.get(email_address="carl@example.net")
    assert entry.last_update == sandbox_entry.last_update.replace(microsecond=entry.last_update.microsecond)


def test_it_follows_changes_on_the_next_pull(linked: Linked) -> None:
    linked.seed("ann@example.com", "bob@example.org")
    services.sync(server=linked.server)
    SandboxSuppression.objects.filter(email_address="ann@example.com").delete()
    SandboxSuppression.objects.filter(email_address="bob@example.org").update(reason="Complaint")
    linked.seed("dan@example.com", reason="Unsubscribe")
    outcome = services.sync(server=linked.server)
    assert outcome.ok
    assert mirror_of(linked.server) == {"bob@example.org": "Complaint", "dan@example.com": "Unsubscribe"}
    assert outcome.result is not None
    assert (outcome.result.added, outcome.result.updated, outcome.result.removed) == (1, 1, 1)
    assert set(mirror_of(linked.server)) == linked.sandbox_addresses()


def test_it_says_so_when_the_plan_lacks_suppression(linked: Linked) -> None:
    linked.sandbox.suppression_enabled = False
    linked.sandbox.save()
    outcome = services.sync(server=linked.server)
    assert not outcome.ok
    state = MirrorState.objects.get(server=linked.server)
    assert state.plan_enabled is False
    assert "not part of the SocketLabs plan" in state.plan_message
    assert state.sync_status == SyncStatus.IDLE


def test_it_records_a_failed_pull_and_keeps_the_mirror(linked: Linked) -> None:
    linked.seed("ann@example.com")
    services.sync(server=linked.server)
    linked.server.api_url = CLOSED_PORT_URL
    linked.server.save()
    with pytest.raises(Exception, match="Could not connect"):
        services.sync(server=linked.server)  # transient: raised so Celery retries with backoff
    state = MirrorState.objects.get(server=linked.server)
    assert state.sync_status == SyncStatus.FAILED
    assert "Could not reach SocketLabs" in state.sync_error
    assert mirror_of(linked.server) == {"ann@example.com": "Bounce"}


def test_the_page_says_when_the_mirror_was_last_synced(linked: Linked, as_user: Callable, ops) -> None:  # type: ignore[no-untyped-def]
    client: Client = as_user(ops)
    page = client.get(f"/servers/{linked.server.pk}/suppressions/")
    assert "Last synced from SocketLabs:" in page.content.decode()
    assert "never" in page.content.decode()
    linked.seed("ann@example.com")
    services.sync(server=linked.server)
    page = client.get(f"/servers/{linked.server.pk}/suppressions/")
    body = page.content.decode()
    assert "1 entries: 1 new" in body
    assert "ann@example.com" in body


def test_the_command_pulls_the_servers_it_is_given(linked: Linked, other_server: Server) -> None:
    from io import StringIO

    from django.core.management import CommandError, call_command

    linked.seed("ann@example.com")
    out = StringIO()
    call_command("sync_suppressions", "--server", str(linked.server.pk), stdout=out)
    assert "Pulled 1 entries" in out.getvalue()
    assert mirror_of(linked.server) == {"ann@example.com": "Bounce"}
    with pytest.raises(CommandError, match="No server with id 999999"):
        call_command("sync_suppressions", "--server", "999999")
