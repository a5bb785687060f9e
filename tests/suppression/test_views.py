"""Pages: roles, the plan notice, keyset search without counts, CSV export, confirmation wording."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditLog, Server, User
from suppression import mirror
from suppression.models import ImportJob, MirrorState, PendingWrite
from tests.suppression.conftest import put_in_mirror, upload

pytestmark = pytest.mark.django_db

AsUser = Callable[[User], Client]


def url(server: Server, rest: str = "") -> str:
    return f"/servers/{server.pk}/suppressions/{rest}"


def body(response) -> str:  # type: ignore[no-untyped-def]
    return response.content.decode()


# --- roles ------------------------------------------------------------------------------------
READ_PAGES = ["", "check/?address=a%40example.com", "status/", "export.csv"]
CHANGES = [
    ("add/", {"address": "a@example.com", "reason": "Bounce"}),
    ("remove/", {"address": "a@example.com"}),
    ("sync/", {}),
    ("import/", {}),
]


@pytest.mark.parametrize("role", ["viewer", "marketing", "ops", "admin"])
@pytest.mark.parametrize("page", READ_PAGES)
def test_every_role_may_check_search_and_export(
    request: pytest.FixtureRequest, as_user: AsUser, server: Server, role: str, page: str
) -> None:
    user = request.getfixturevalue(role)
    assert as_user(user).get(url(server, page)).status_code in (200, 302)


@pytest.mark.parametrize("role", ["viewer", "marketing"])
@pytest.mark.parametrize(("page", "data"), CHANGES)
def test_viewers_and_marketing_cannot_change_the_list(
    request: pytest.FixtureRequest, as_user: AsUser, server: Server, role: str, page: str, data: dict
) -> None:
    client = as_user(request.getfixturevalue(role))
    assert client.post(url(server, page), data).status_code == 403
    assert client.get(url(server, "remove/?address=a%40example.com")).status_code == 403
    assert PendingWrite.objects.count() == 0


@pytest.mark.parametrize(("page", "data"), [("", None), *CHANGES])
def test_an_outsider_gets_404_everywhere(as_user: AsUser, server: Server, outsider: User, page: str, data) -> None:  # type: ignore[no-untyped-def]
    client = as_user(outsider)
    response = client.post(url(server, page), data) if data is not None else client.get(url(server, page))
    assert response.status_code == 404


def test_the_change_forms_are_shown_only_to_ops_and_admins(
    as_user: AsUser, server: Server, viewer: User, ops: User
) -> None:
    assert "Add an address" not in body(as_user(viewer).get(url(server)))
    assert "Import a file" not in body(as_user(viewer).get(url(server)))
    page = body(as_user(ops).get(url(server)))
    assert "Add an address" in page and "Import a file" in page and "Sync now" in page


def test_the_sidebar_links_to_the_suppression_pages(as_user: AsUser, server: Server, viewer: User) -> None:
    page = body(as_user(viewer).get(f"/servers/{server.pk}/"))
    assert f'href="{url(server)}"' in page
    assert f'href="{url(server, "import/")}"' in page


# --- plan without suppression ------------------------------------------------------------------
def test_a_plan_without_suppression_is_said_plainly_and_the_actions_are_hidden(
    as_user: AsUser, server: Server, ops: User
) -> None:
    put_in_mirror(server, "old@example.com")
    MirrorState.objects.create(
        server=server, plan_enabled=False, plan_message="Suppression management is not part of the plan (403)."
    )
    client = as_user(ops)
    page = body(client.get(url(server)))
    assert "Suppression management is not part of the plan (403)." in page
    assert "Add an address" not in page
    assert "Import a file" not in page
    assert "Remove…" not in page
    assert "Check the plan again" in page
    response = client.post(url(server, "add/"), {"address": "new@example.com", "reason": "Bounce"}, follow=True)
    assert "not part of the plan" in body(response)
    assert PendingWrite.objects.count() == 0
    assert "Importing is not available" in body(client.get(url(server, "import/")))


# --- search --------------------------------------------------------------------------------------
def seed_many(server: Server) -> None:
    rows = []
    for i in range(120):
        domain = "example.com" if i % 2 else "example.org"
        reason = "Bounce" if i % 3 else "Complaint"
        stamp = datetime(2024, 1, 1 + i % 28, tzinfo=UTC).isoformat()
        rows.append((f"user{i:03d}@{domain}", domain, reason, "api", stamp))
    mirror.load(server.pk, rows, replace=True)


def addresses_on(page: str) -> list[str]:
    return [line.strip()[4:-5] for line in page.splitlines() if line.strip().startswith("<td>user")]


def test_search_pages_by_keyset_without_counting(as_user: AsUser, server: Server, viewer: User) -> None:
    seed_many(server)
    client = as_user(viewer)
    with CaptureQueriesContext(connection) as queries:
        first = client.get(url(server))
    assert not any("COUNT(" in q["sql"].upper() for q in queries), "no full-table count on page load"
    seen = addresses_on(body(first))
    assert len(seen) == 50 and seen[0] == "user000@example.org"
    after = first.context["page"].next_cursor
    second = client.get(url(server), {"after": after})
    more = addresses_on(body(second))
    assert more[0] > seen[-1] and len(more) == 50
    third = client.get(url(server), {"after": second.context["page"].next_cursor})
    assert len(addresses_on(body(third))) == 20
    assert third.context["page"].next_cursor is None
    assert "← First page" in body(third)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"address": "user01", "match": "prefix"}, 10),
        ({"address": "USER010@example.org", "match": "exact"}, 1),
        ({"domain": "@Example.com"}, 60),
        ({"reason": "Complaint"}, 40),
        ({"since": "2024-01-27", "until": "2024-01-28"}, 8),
        ({"domain": "example.com", "reason": "Complaint", "address": "user1"}, 3),
    ],
)
def test_search_filters(as_user: AsUser, server: Server, viewer: User, query: dict, expected: int) -> None:
    seed_many(server)
    client = as_user(viewer)
    found: list[str] = []
    params = dict(query)
    while True:
        response = client.get(url(server), params)
        found += addresses_on(body(response))
        cursor = response.context["page"].next_cursor
        if not cursor:
            break
        params = {**query, "after": cursor}
    assert len(found) == expected == len(set(found))


def test_newest_first_pages_through_ties_in_order(as_user: AsUser, server: Server, viewer: User) -> None:
    seed_many(server)
    client = as_user(viewer)
    found: list[str] = []
    params: dict[str, str] = {"order": "newest"}
    while True:
        response = client.get(url(server), params)
        found += [r.address for r in response.context["page"].rows]
        if not response.context["page"].next_cursor:
            break
        params = {"order": "newest", "after": response.context["page"].next_cursor}
    assert len(found) == len(set(found)) == 120
    assert found[0] == "user111@example.com"  # 2024-01-28, and the greatest address on that day


def test_the_search_uses_the_primary_key_for_a_prefix(server: Server) -> None:
    seed_many(server)
    from django.db import connection, transaction

    from suppression.services import SearchFilters, filtered

    # On 120 rows a sequential scan is the right plan, which says nothing about the shape at a
    # million: with fresh statistics and sequential and bitmap scans ruled out, the query must be answerable
    # by walking an index in address order (no sort), as it is at scale.
    qs = filtered(server, SearchFilters(address="user01")).order_by("address")[:51]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("ANALYZE suppression_suppression")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        plan = qs.explain()
    assert "Index" in plan and "Sort" not in plan, plan


def test_htmx_search_returns_only_the_results(as_user: AsUser, server: Server, viewer: User) -> None:
    seed_many(server)
    response = as_user(viewer).get(
        url(server), {"reason": "Complaint"}, headers={"HX-Request": "true", "HX-Target": "results"}
    )
    page = body(response)
    assert page.lstrip().startswith('<div id="results">')
    assert "<html" not in page


def test_the_check_answers_with_reason_and_date(as_user: AsUser, server: Server, viewer: User) -> None:
    put_in_mirror(server, "bob@example.net", reason="Complaint")
    client = as_user(viewer)
    hit = body(client.get(url(server, "check/"), {"address": "Bob@Example.net"}, headers={"HX-Request": "true"}))
    assert "is suppressed on Acme-1: Complaint" in hit
    assert "2024-01-02" in hit
    miss = body(client.get(url(server, "check/"), {"address": "ann@example.net"}, headers={"HX-Request": "true"}))
    assert "is not suppressed on Acme-1" in miss
    bad = body(client.get(url(server, "check/"), {"address": "nope"}, headers={"HX-Request": "true"}))
    assert "Not an e-mail address" in bad


def test_the_cross_server_check_shows_each_visible_server(
    as_user: AsUser, server: Server, other_server: Server, site_admin: User, viewer: User
) -> None:
    put_in_mirror(server, "bob@example.net", reason="Complaint")
    put_in_mirror(other_server, "bob@example.net", reason="Unsubscribe")
    page = body(as_user(site_admin).get("/suppressions/check/", {"address": "bob@example.net"}))
    assert "Acme-1" in page and "Other-2" in page
    assert "Complaint" in page and "Unsubscribe" in page
    only_mine = body(as_user(viewer).get("/suppressions/check/", {"address": "bob@example.net"}))
    assert "Other-2" not in only_mine and "Unsubscribe" not in only_mine


# --- remove confirmation and export -------------------------------------------------------------
def test_remove_asks_first_naming_the_address_and_the_server(as_user: AsUser, server: Server, ops: User) -> None:
    put_in_mirror(server, "bob@example.net")
    page = body(as_user(ops).get(url(server, "remove/"), {"address": "bob@example.net"}))
    assert "Remove bob@example.net from the suppression list of Acme-1?" in page
    assert PendingWrite.objects.count() == 0


def test_export_streams_the_current_search_with_formulas_escaped(as_user: AsUser, server: Server, viewer: User) -> None:
    mirror.load(
        server.pk,
        [
            ("=hyperlink@example.com", "example.com", "Bounce", "api", None),
            ("+plus@example.com", "example.com", "Bounce", "=cmd()", None),
            ("-minus@example.com", "example.com", "Complaint", "@sum", None),
            ("plain@example.org", "example.org", "Bounce", "api", None),
        ],
        replace=True,
    )
    response = as_user(viewer).get(url(server, "export.csv"), {"domain": "example.com"})
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["emailAddress", "reason", "source"]
    assert [r[:3] for r in rows[1:]] == [
        ["'+plus@example.com", "Bounce", "'=cmd()"],
        ["'-minus@example.com", "Complaint", "'@sum"],
        ["'=hyperlink@example.com", "Bounce", "api"],
    ]
    assert AuditLog.objects.filter(action="suppression.export", server=server).count() == 1


def test_an_export_imports_back_unchanged(
    as_user: AsUser, server: Server, other_server: Server, site_admin: User
) -> None:
    mirror.load(server.pk, [("-dash@example.com", "example.com", "Bounce", "api", None)], replace=True)
    exported = b"".join(as_user(site_admin).get(url(server, "export.csv")).streaming_content)
    from suppression import imports

    job = imports.create_job(actor=site_admin, kind="add", upload=upload(exported), servers=[other_server])
    assert list(job.targets.get().entries.values_list("address", flat=True)) == ["-dash@example.com"]


# --- import pages --------------------------------------------------------------------------------
def test_uploading_shows_the_diff_and_keeps_it_to_ops(
    as_user: AsUser, server: Server, other_server: Server, ops: User, viewer: User
) -> None:
    put_in_mirror(server, "known@example.com")
    client = as_user(ops)
    response = client.post(
        url(server, "import/"),
        {"file": upload("email\nnew@example.com\nknown@example.com\nbroken\n"), "kind": "add", "reason": "Bounce"},
    )
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/suppressions/jobs/{job.pk}/"
    page = body(client.get(response["Location"]))
    assert "What applying this file would do" in page
    assert 'data-testid="to-change">1<' in page and 'data-testid="unchanged">1<' in page
    assert "Skip the invalid rows" in page
    assert '<td class="num">4</td>' in page  # line 4 is the bad row
    assert as_user(viewer).get(response["Location"]).status_code == 200
    assert as_user(viewer).post(f"/suppressions/jobs/{job.pk}/apply/").status_code == 403


def test_an_outsider_cannot_see_a_job(as_user: AsUser, server: Server, ops: User, outsider: User) -> None:
    from suppression import imports

    job = imports.create_job(actor=ops, kind="add", upload=upload("email\na@example.com\n"), servers=[server])
    for path in ("", "progress/", "report.csv"):
        assert as_user(outsider).get(f"/suppressions/jobs/{job.pk}/{path}").status_code == 404
    assert job.pk not in [j.pk for j in as_user(outsider).get("/suppressions/jobs/").context["jobs"]]


def test_the_cross_server_choice_offers_only_servers_the_user_may_change(
    as_user: AsUser, server: Server, other_server: Server, ops: User
) -> None:
    from accounts.models import Membership

    Membership.objects.create(user=ops, server=other_server, role="viewer")
    page = body(as_user(ops).get(url(server, "import/")))
    assert "Also apply to" not in page
    Membership.objects.filter(user=ops, server=other_server).update(role="ops")
    assert "Also apply to" in body(as_user(ops).get(url(server, "import/")))


def test_a_prefix_ending_in_the_last_code_point_still_searches(as_user: AsUser, server: Server, viewer: User) -> None:
    response = as_user(viewer).get(url(server), {"address": "a\U0010ffff"})
    assert response.status_code == 200
