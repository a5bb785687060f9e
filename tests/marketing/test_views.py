"""The contacts pages: roles, the import wizard step by step, search and pages, export, builder, bulk actions."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import AuditLog, Server, User
from marketing import imports, services
from marketing.models import Contact, ContactList, CustomField, ImportJob, JobStatus, Segment, SyncJob
from tests.marketing.conftest import upload

pytestmark = pytest.mark.django_db

AsUser = Callable[[User], Client]
HTMX = {"HTTP_HX_REQUEST": "true"}


def url(name: str, server: Server, *args: Any) -> str:
    return reverse(f"marketing:{name}", args=[server.pk, *args])


def add(server: Server, user: User, email: str, **data: Any) -> Contact:
    return services.create_contact(server=server, actor=user, data={"email": email, **data})


# --- roles ------------------------------------------------------------------------------------------
READ_PAGES = ["contacts", "lists", "segments", "fields", "imports", "sync", "contact_new"]


@pytest.mark.parametrize("persona", ["viewer", "ops", "marketing", "admin"])
def test_every_role_reads_the_pages(
    request: pytest.FixtureRequest, server: Server, as_user: AsUser, persona: str
) -> None:
    user = request.getfixturevalue(persona)
    client = as_user(user)
    for name in ["contacts", "lists", "segments", "fields", "imports", "sync"]:
        response = client.get(url(name, server))
        assert response.status_code == 200, name
        assert (b"Add a contact" in response.content) == (persona in ("marketing", "admin")) or name != "contacts"


@pytest.mark.parametrize("persona", ["viewer", "ops"])
def test_viewers_and_ops_cannot_change_anything(
    request: pytest.FixtureRequest, server: Server, marketing: User, as_user: AsUser, persona: str
) -> None:
    contact = add(server, marketing, "ann@example.com")
    news = services.create_list(server=server, actor=marketing, name="News")
    client = as_user(request.getfixturevalue(persona))
    posts = [
        (url("contact_new", server), {"email": "x@example.com", "status": "subscribed"}),
        (url("contact_edit", server, contact.pk), {"email": "y@example.com", "status": "subscribed"}),
        (url("contact_delete", server, contact.pk), {}),
        (url("contact_lists", server, contact.pk), {"lists": [news.pk]}),
        (url("lists", server), {"name": "New"}),
        (url("list_delete", server, news.pk), {}),
        (url("fields", server), {"label": "City", "type": "text"}),
        (url("imports", server), {"file": upload("email\na@example.com\n")}),
        (url("contacts_bulk", server), {"action": "delete", "confirm_all": "yes"}),
        (url("segments", server), {"name": "S", "c-0-field": "email", "c-0-op": "empty"}),
        (url("sync", server), {"kind": "pull_lists"}),
    ]
    for target, data in posts:
        assert client.post(target, data).status_code == 403, target
    assert client.get(url("contact_new", server)).status_code == 403
    assert list(Contact.objects.values_list("email", flat=True)) == ["ann@example.com"]
    assert ContactList.objects.count() == 1 and not CustomField.objects.exists()


def test_an_outsider_gets_404_everywhere(server: Server, marketing: User, outsider: User, as_user: AsUser) -> None:
    contact = add(server, marketing, "ann@example.com")
    client = as_user(outsider)
    for target in [
        url("contacts", server),
        url("contact_detail", server, contact.pk),
        url("contacts_export", server),
        url("sync", server),
    ]:
        assert client.get(target).status_code == 404, target
    assert client.post(url("contact_delete", server, contact.pk)).status_code == 404
    assert Contact.objects.count() == 1


def test_a_contact_of_another_server_is_404_through_this_servers_urls(
    server: Server, other_server: Server, admin: User, as_user: AsUser
) -> None:
    theirs = Contact.objects.create(server=other_server, email="secret@example.com")
    assert as_user(admin).get(url("contact_detail", server, theirs.pk)).status_code == 404


# --- the wizard -------------------------------------------------------------------------------------
def test_the_wizard_from_upload_to_report(
    server: Server,
    marketing: User,
    as_user: AsUser,
    fields: dict[str, CustomField],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    client = as_user(marketing)
    news = services.create_list(server=server, actor=marketing, name="News")
    text = (
        "E-mail Address,First,Surname,City,Lead Score,Colour\n"
        "ann@example.com,Ann,Lee,Oslo,5,blue\n"
        "bad-address,Bob,,Rome,x,red\n"
    )
    response = client.post(url("imports", server), {"file": upload(text)})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == url("import_map", server, job.pk)

    page = client.get(url("import_map", server, job.pk)).content.decode()
    assert "comma-separated, with a header row" in page
    assert job.mapping == ["email", "first_name", "last_name", "field:city", "new:text", "new:text"]  # "x" is no number
    mapping = {
        f"col_{i}": t
        for i, t in enumerate(["email", "first_name", "last_name", "field:city", "field:score", "new:text"])
    }
    assert client.post(url("import_map", server, job.pk), mapping)["Location"] == url("import_preview", server, job.pk)

    preview = client.get(url("import_preview", server, job.pk)).content.decode()
    assert "ann@example.com" in preview and "Oslo" in preview
    assert "Not imported:" in preview and "“bad-address” has no @" in preview and "“x” is not a number" in preview
    assert "<code>colour</code> (text)" in preview

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            url("import_preview", server, job.pk),
            {
                "existing": "update",
                "invalid": "skip",
                "new_status": "subscribed",
                "lists": [news.pk],
                "create_fields": "on",
            },
        )
    assert response["Location"] == url("import_detail", server, job.pk)
    assert len(callbacks) == 1  # the task is sent once the job row is committed
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    queued = client.get(url("import_detail", server, job.pk)).content.decode()
    assert 'hx-trigger="every 1s"' in queued

    imports.run(job.pk)
    fragment = client.get(url("import_progress", server, job.pk), **HTMX).content.decode()
    assert "<html" not in fragment
    assert 'data-testid="created-count">1<' in fragment and 'data-testid="invalid-count">1<' in fragment
    assert "every 1s" not in fragment  # finished: polling stops
    report = client.get(url("import_report", server, job.pk))
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert rows[0] == ["line", "column", "problem"]
    assert [r[:2] for r in rows[1:]] == [["3", "E-mail Address"], ["3", "Lead Score"]]
    contact = Contact.objects.get()
    assert contact.custom == {"city": "Oslo", "score": 5, "colour": "blue"}
    assert CustomField.objects.filter(key="colour").exists()


def test_a_bad_upload_is_refused_in_the_form(server: Server, marketing: User, as_user: AsUser) -> None:
    response = as_user(marketing).post(url("imports", server), {"file": upload("name\nAnn\n")})
    assert response.status_code == 200
    assert "No e-mail column" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_a_mapping_without_an_email_column_is_refused(server: Server, marketing: User, as_user: AsUser) -> None:
    job = imports.create_job(server=server, actor=marketing, upload=upload("email,name\na@example.com,A\n"))
    response = as_user(marketing).post(url("import_map", server, job.pk), {"col_0": "", "col_1": "first_name"})
    assert "Choose the column that holds the e-mail addresses" in response.content.decode()


def test_progress_shows_the_share_read_and_an_eta(server: Server, marketing: User, as_user: AsUser) -> None:
    from django.core.cache import cache
    from django.utils import timezone

    job = imports.create_job(server=server, actor=marketing, upload=upload("email\n" + "a@example.com\n" * 100))
    ImportJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, started_at=timezone.now() - timezone.timedelta(seconds=10), phase="reading"
    )
    cache.set(
        f"marketing:import:{job.pk}:progress", {"bytes_done": job.file_size // 2, "rows_read": 51, "phase": "reading"}
    )
    page = as_user(marketing).get(url("import_progress", server, job.pk), **HTMX).content.decode()
    assert 'value="49"' in page or 'value="50"' in page
    assert "line 51" in page and "left" in page


def test_a_strict_import_that_failed_can_run_again_skipping_invalid_rows(
    server: Server, marketing: User, as_user: AsUser, run_import: Callable[..., ImportJob]
) -> None:
    failed = run_import("email\nann@example.com\nnope\n", actor=marketing)
    client = as_user(marketing)
    page = client.get(url("import_detail", server, failed.pk)).content.decode()
    assert "Import again, skipping the invalid rows" in page
    response = client.post(url("import_retry", server, failed.pk))
    again = ImportJob.objects.exclude(pk=failed.pk).get()
    assert response["Location"] == url("import_detail", server, again.pk)
    assert again.status == JobStatus.QUEUED and again.skip_invalid


# --- contacts page ----------------------------------------------------------------------------------
def test_search_filters_and_keyset_pages(server: Server, marketing: User, as_user: AsUser) -> None:
    for i in range(120):
        add(server, marketing, f"user{i:03d}@example.com", first_name="Zed" if i == 7 else "")
    client = as_user(marketing)
    first = client.get(url("contacts", server))
    assert first.context["next_after"] == "user049@example.com"
    assert len(first.context["rows"]) == 50
    second = client.get(url("contacts", server), {"after": first.context["next_after"]})
    assert second.context["rows"][0][0].email == "user050@example.com"
    assert second.context["prev_before"] == "user050@example.com"
    back = client.get(url("contacts", server), {"before": second.context["prev_before"]})
    assert [c.email for c, _ in back.context["rows"]] == [c.email for c, _ in first.context["rows"]]
    found = client.get(url("contacts", server), {"q": "USER11"})
    assert [c.email for c, _ in found.context["rows"]] == [f"user{i}@example.com" for i in range(110, 120)]
    by_name = client.get(url("contacts", server), {"c-0-field": "first_name", "c-0-op": "starts", "c-0-value": "ze"})
    assert [c.email for c, _ in by_name.context["rows"]] == ["user007@example.com"]


def test_the_contacts_page_never_counts_on_load(server: Server, marketing: User, as_user: AsUser) -> None:
    for i in range(5):
        add(server, marketing, f"p{i}@example.com")
    client = as_user(marketing)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(
            url("contacts", server),
            {"status": "subscribed", "c-0-field": "email", "c-0-op": "starts", "c-0-value": "p"},
        )
    assert response.status_code == 200
    assert not [
        q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper() and "marketing_contact" in q["sql"]
    ]
    counted = client.get(
        url("contacts_count", server),
        {"status": "subscribed", "c-0-field": "email", "c-0-op": "starts", "c-0-value": "p"},
        **HTMX,
    )
    assert 'data-testid="count">5<' in counted.content.decode()


def test_the_builder_draws_a_row_for_the_chosen_field(
    server: Server, marketing: User, as_user: AsUser, fields: dict[str, CustomField]
) -> None:
    client = as_user(marketing)
    row = client.get(url("condition_row", server), {"index": "2", "c-2-field": "custom.score"}, **HTMX).content.decode()
    assert 'name="c-2-op"' in row and '<option value="gte"' in row and 'type="number"' in row
    choice = client.get(
        url("condition_row", server), {"index": "0", "c-0-field": "custom.plan"}, **HTMX
    ).content.decode()
    assert '<option value="team"' in choice
    added = client.get(url("condition_row", server), {"index": "3", "add": "1"}, **HTMX).content.decode()
    assert 'hx-swap-oob="true"' in added and "index=4" in added
    assert client.get(url("condition_row", server), {"remove": "1"}, **HTMX).content == b""


def test_bad_conditions_are_explained_and_show_nothing(
    server: Server, marketing: User, as_user: AsUser, fields: dict[str, CustomField]
) -> None:
    add(server, marketing, "ann@example.com")
    response = as_user(marketing).get(
        url("contacts", server), {"c-0-field": "custom.score", "c-0-op": "gt", "c-0-value": "lots"}
    )
    page = response.content.decode()
    assert "Condition 1: Score “lots” is not a number." in page
    assert response.context["rows"] == []


def test_a_segment_is_saved_from_the_builder_and_applied(
    server: Server, marketing: User, as_user: AsUser, fields: dict[str, CustomField]
) -> None:
    add(server, marketing, "ann@example.com", custom={"plan": "pro"})
    add(server, marketing, "bob@example.com", custom={"plan": "free"})
    client = as_user(marketing)
    response = client.post(
        url("segments", server),
        {"name": "Pro", "match": "all", "c-0-field": "custom.plan", "c-0-op": "eq", "c-0-value": "pro"},
    )
    segment = Segment.objects.get()
    assert response["Location"] == url("contacts", server) + f"?segment={segment.pk}"
    assert segment.cached_count == 1
    shown = client.get(url("contacts", server), {"segment": segment.pk})
    assert [c.email for c, _ in shown.context["rows"]] == ["ann@example.com"]
    assert shown.context["known_count"] == 1  # the segment's kept count, no COUNT on load
    recount = client.post(url("segment_count", server, segment.pk), **HTMX)
    assert 'data-testid="count">1<' in recount.content.decode()
    listing = client.get(url("segments", server)).content.decode()
    assert "Plan is pro" in listing


def test_export_streams_every_matching_contact_with_formulas_escaped(
    server: Server, marketing: User, as_user: AsUser, fields: dict[str, CustomField]
) -> None:
    add(server, marketing, "ann@example.com", first_name="=cmd()", custom={"city": "+Oslo", "vip": "yes"})
    add(server, marketing, "bob@example.com", status="unsubscribed")
    response = as_user(marketing).get(url("contacts_export", server), {"status": "subscribed"})
    assert response.streaming
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == [
        "email",
        "first_name",
        "last_name",
        "status",
        "created_at",
        "city",
        "plan",
        "score",
        "signup",
        "vip",
    ]
    assert len(rows) == 2
    assert rows[1][1] == "'=cmd()" and rows[1][5] == "'+Oslo" and rows[1][9] == "true"
    assert AuditLog.objects.get(action="contacts.export").target == "status subscribed"


def test_bulk_actions_apply_to_the_filtered_contacts(server: Server, marketing: User, as_user: AsUser) -> None:
    for email in ("ann@a.example", "amy@a.example", "bob@b.example"):
        add(server, marketing, email)
    news = services.create_list(server=server, actor=marketing, name="News")
    client = as_user(marketing)
    client.post(url("contacts_bulk", server), {"q": "a", "action": "add", "target_list": news.pk})
    assert set(Contact.objects.filter(memberships__contact_list=news).values_list("email", flat=True)) == {
        "ann@a.example",
        "amy@a.example",
    }
    refused = client.post(url("contacts_bulk", server), {"action": "delete"}, follow=True)
    assert "tick the confirmation box" in refused.content.decode()
    assert Contact.objects.count() == 3
    client.post(url("contacts_bulk", server), {"list": news.pk, "action": "delete"})
    assert list(Contact.objects.values_list("email", flat=True)) == ["bob@b.example"]


# --- contacts, lists, fields ----------------------------------------------------------------------
def test_add_edit_and_delete_a_contact(
    server: Server, marketing: User, as_user: AsUser, fields: dict[str, CustomField]
) -> None:
    client = as_user(marketing)
    response = client.post(
        url("contact_new", server),
        {
            "email": "Ann@Example.com",
            "first_name": "Ann",
            "status": "subscribed",
            "custom_score": "12",
            "custom_vip": "true",
        },
    )
    contact = Contact.objects.get()
    assert response["Location"] == url("contact_detail", server, contact.pk)
    assert contact.custom == {"score": 12, "vip": True}
    bad = client.post(
        url("contact_edit", server, contact.pk),
        {"email": "ann@example.com", "status": "subscribed", "custom_score": "x"},
    )
    assert "Score: “x” is not a number." in bad.content.decode()
    client.post(
        url("contact_edit", server, contact.pk),
        {
            "email": "ann@example.com",
            "first_name": "Anna",
            "status": "unsubscribed",
            "custom_score": "12",
            "custom_vip": "true",
        },
    )
    page = client.get(url("contact_detail", server, contact.pk)).content.decode()
    assert "Edited first name" in page and "Status changed from subscribed to unsubscribed" in page
    confirm = client.get(url("contact_delete", server, contact.pk)).content.decode()
    assert f"Delete <strong>ann@example.com</strong> from the contacts of server {server.name}?" in confirm
    client.post(url("contact_delete", server, contact.pk))
    assert not Contact.objects.exists()


def test_a_duplicate_address_is_refused_in_the_form(server: Server, marketing: User, as_user: AsUser) -> None:
    add(server, marketing, "ann@example.com")
    response = as_user(marketing).post(url("contact_new", server), {"email": "ANN@example.com", "status": "subscribed"})
    assert "ann@example.com is already a contact of this server." in response.content.decode()


def test_lists_and_fields_are_managed_on_their_pages(server: Server, marketing: User, as_user: AsUser) -> None:
    client = as_user(marketing)
    client.post(url("lists", server), {"name": "News", "description": "Monthly"})
    news = ContactList.objects.get()
    assert "already a list" in client.post(url("lists", server), {"name": "news"}).content.decode()
    client.post(url("list_edit", server, news.pk), {"name": "Newsletter", "description": ""})
    news.refresh_from_db()
    assert news.name == "Newsletter"
    client.post(url("fields", server), {"label": "Tier", "type": "choice", "choices": "gold, silver, gold"})
    tier = CustomField.objects.get()
    assert (tier.key, tier.choices) == ("tier", ["gold", "silver"])
    client.post(url("field_edit", server, tier.pk), {"label": "Level", "choices": "gold,silver,bronze"})
    tier.refresh_from_db()
    assert (tier.label, tier.choices, tier.type) == ("Level", ["gold", "silver", "bronze"], "choice")
    client.post(url("field_delete", server, tier.pk))
    client.post(url("list_delete", server, news.pk))
    assert not CustomField.objects.exists() and not ContactList.objects.exists()
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {
        "contacts.list.create",
        "contacts.list.update",
        "contacts.list.delete",
        "contacts.field.create",
        "contacts.field.update",
        "contacts.field.delete",
    } <= actions


def test_sync_needs_a_marketing_key(server: Server, marketing: User, as_user: AsUser) -> None:
    response = as_user(marketing).post(url("sync", server), {"kind": "pull_lists"}, follow=True)
    assert "No Marketing API key is stored for server 10001" in response.content.decode()
    assert not SyncJob.objects.exists()


def test_sync_jobs_are_queued_once(server: Server, marketing: User, as_user: AsUser) -> None:
    server.marketing_key = "marketing-key"
    server.save()
    client = as_user(marketing)
    client.post(url("sync", server), {"kind": "pull_lists"})
    client.post(url("sync", server), {"kind": "pull_lists"})
    assert SyncJob.objects.count() == 1
    page = client.get(url("sync", server)).content.decode()
    assert 'hx-trigger="every 2s"' in page
