"""What an import writes: update or skip, merged custom fields, statuses, lists, strict or skipping, history.

Every behaviour is checked on both engines: "sql" (COPY into a staging table + set-based upsert,
PostgreSQL) and "orm" (bulk_create batches, the SQLite fallback), which must agree.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.utils import timezone

from accounts.models import AuditLog, Server, User
from marketing import imports, services
from marketing.models import (
    Contact,
    ContactHistory,
    ContactList,
    ContactStats,
    CustomField,
    FieldType,
    HistoryKind,
    ImportJob,
    JobStatus,
    Membership,
    RemoteChange,
    Status,
)
from tests.marketing.conftest import upload

pytestmark = pytest.mark.django_db

RunImport = Callable[..., ImportJob]


ON_POSTGRESQL = connection.vendor == "postgresql"
postgresql_only = pytest.mark.skipif(not ON_POSTGRESQL, reason="the COPY engine is PostgreSQL's")


@pytest.fixture(params=["sql", "orm"])
def engine(request: pytest.FixtureRequest) -> str:
    if request.param == "sql" and not ON_POSTGRESQL:
        pytest.skip("the COPY engine is PostgreSQL's")
    return str(request.param)


def custom(email: str) -> dict[str, object]:
    return dict(Contact.objects.get(email=email).custom)


def test_it_creates_contacts_with_typed_values(
    run_import: RunImport, fields: dict[str, CustomField], engine: str
) -> None:
    job = run_import(
        "Email,First Name,Last Name,city,score,signup,vip,plan\n"
        " Ann@Example.COM ,Ann,Lee,Oslo,7.5,2024-02-01,yes,PRO\n",
        engine=engine,
    )
    assert (job.status, job.created_count, job.committed) == (JobStatus.DONE, 1, True)
    contact = Contact.objects.get()
    assert contact.email == "ann@example.com"
    assert (contact.first_name, contact.last_name, contact.status) == ("Ann", "Lee", Status.SUBSCRIBED)
    assert contact.custom == {"city": "Oslo", "score": 7.5, "signup": "2024-02-01", "vip": True, "plan": "pro"}
    assert (contact.created_via, contact.created_job) == ("import", job.pk)


def test_it_updates_existing_contacts_and_merges_custom_fields(
    run_import: RunImport, fields: dict[str, CustomField], engine: str
) -> None:
    run_import("email,first_name,last_name,city,score\nann@example.com,Ann,Lee,Oslo,1\n", engine=engine)
    job = run_import("email,first_name,last_name,plan,score\nann@example.com,Anna,,team,2\n", engine=engine)
    assert (job.created_count, job.updated_count) == (0, 1)
    contact = Contact.objects.get()
    assert (contact.first_name, contact.last_name) == ("Anna", "Lee")  # an empty cell keeps the stored name
    assert contact.custom == {"city": "Oslo", "score": 2, "plan": "team"}  # merged, not replaced
    history = ContactHistory.objects.get(contact=contact)
    assert history.kind == HistoryKind.IMPORTED
    assert f"import #{job.pk}" in history.summary


def test_it_leaves_existing_contacts_alone_when_asked_to_skip_them(
    run_import: RunImport, fields: dict[str, CustomField], engine: str
) -> None:
    run_import("email,first_name,city\nann@example.com,Ann,Oslo\n", engine=engine)
    job = run_import(
        "email,first_name,city\nann@example.com,Changed,Rome\nbob@example.com,Bob,Rome\n",
        engine=engine,
        update_existing=False,
    )
    assert (job.created_count, job.updated_count, job.skipped_count) == (1, 0, 1)
    ann = Contact.objects.get(email="ann@example.com")
    assert (ann.first_name, ann.custom) == ("Ann", {"city": "Oslo"})


def test_a_reimport_of_the_same_file_changes_nothing(
    run_import: RunImport, fields: dict[str, CustomField], engine: str
) -> None:
    text = "email,first_name,city,score\nann@example.com,Ann,Oslo,3\nbob@example.com,Bob,,4\n"
    run_import(text, engine=engine)
    before = list(Contact.objects.values_list("pk", "updated_at").order_by("pk"))
    again = run_import(text, engine=engine)
    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 0, 2)
    assert list(Contact.objects.values_list("pk", "updated_at").order_by("pk")) == before
    assert not ContactHistory.objects.exists()


def test_new_contacts_get_the_chosen_status(run_import: RunImport, engine: str) -> None:
    job = run_import("email\nann@example.com\n", engine=engine, new_status=Status.UNSUBSCRIBED)
    assert job.status == JobStatus.DONE
    assert Contact.objects.get().status == Status.UNSUBSCRIBED


def test_a_status_column_applies_to_new_contacts_and_never_resubscribes_anyone(
    run_import: RunImport, engine: str
) -> None:
    run_import(
        "email,status\nann@example.com,unsubscribed\nbob@example.com,\ncid@example.com,subscribed\n", engine=engine
    )
    assert dict(Contact.objects.values_list("email", "status")) == {
        "ann@example.com": Status.UNSUBSCRIBED,
        "bob@example.com": Status.SUBSCRIBED,
        "cid@example.com": Status.SUBSCRIBED,
    }
    job = run_import(
        "email,status\nann@example.com,subscribed\nbob@example.com,bounced\ncid@example.com,\n",
        engine=engine,
        new_status=Status.UNSUBSCRIBED,
    )
    assert dict(Contact.objects.values_list("email", "status")) == {
        "ann@example.com": Status.UNSUBSCRIBED,  # an import never re-subscribes
        "bob@example.com": Status.BOUNCED,
        "cid@example.com": Status.SUBSCRIBED,  # an empty cell is not "the status for new contacts"
    }
    assert job.updated_count == 1


def test_a_bad_status_is_a_problem_of_its_row(run_import: RunImport, engine: str) -> None:
    job = run_import("email,status\nann@example.com,maybe\n", engine=engine, skip_invalid=True)
    assert job.problems == [[2, "status", "“maybe” is not a status (subscribed, unsubscribed, bounced or complained)"]]


def test_it_adds_every_contact_of_the_file_to_the_chosen_lists(
    run_import: RunImport, server: Server, admin: User, engine: str
) -> None:
    news = services.create_list(server=server, actor=admin, name="News")
    vip = services.create_list(server=server, actor=admin, name="VIP")
    run_import("email\nann@example.com\n", engine=engine)
    job = run_import(
        "email\nann@example.com\nbob@example.com\n", engine=engine, update_existing=False, list_ids=[news.pk, vip.pk]
    )
    assert job.list_added_count == 4
    assert Membership.objects.filter(contact_list=news).count() == 2
    assert set(Membership.objects.values_list("job_id", flat=True)) == {job.pk}
    again = run_import("email\nann@example.com\n", engine=engine, list_ids=[news.pk])
    assert again.list_added_count == 0
    news.refresh_from_db()
    assert news.member_count == 2  # counted after the import


def test_it_splits_a_full_name(run_import: RunImport, engine: str) -> None:
    run_import("Name,Email\nAnn Marie Lee,ann@example.com\nCher,cher@example.com\n", engine=engine)
    assert dict(Contact.objects.values_list("email", "last_name")) == {"ann@example.com": "Lee", "cher@example.com": ""}
    assert Contact.objects.get(email="ann@example.com").first_name == "Ann Marie"


def test_strict_mode_writes_nothing_when_any_row_is_invalid(
    run_import: RunImport, fields: dict[str, CustomField], engine: str
) -> None:
    run_import("email,city\nold@example.com,Oslo\n", engine=engine)
    job = run_import(
        "email,city,score\nold@example.com,Rome,1\nnew@example.com,Paris,2\nbad@example.com,Lima,lots\n", engine=engine
    )
    assert job.status == JobStatus.FAILED and not job.committed
    assert "nothing was imported" in job.error
    assert job.invalid_count == 1
    assert list(Contact.objects.values_list("email", "custom")) == [("old@example.com", {"city": "Oslo"})]


def test_skip_invalid_mode_writes_only_the_valid_rows(
    run_import: RunImport, fields: dict[str, CustomField], engine: str
) -> None:
    job = run_import(
        "email,score\nann@example.com,1\nbob@example.com,lots\n@nope,2\ncid@example.com,3\n",
        engine=engine,
        skip_invalid=True,
    )
    assert (job.status, job.created_count, job.invalid_count) == (JobStatus.DONE, 2, 2)
    assert job.problems == [
        [3, "score", "“lots” is not a number"],
        [4, "email", "“@nope”: There must be something before the @-sign."],
    ]
    assert set(Contact.objects.values_list("email", flat=True)) == {"ann@example.com", "cid@example.com"}


def test_new_custom_fields_are_created_only_when_the_import_commits(run_import: RunImport, engine: str) -> None:
    failed = run_import("email,Favourite Colour,Visits\nann@example.com,blue,3\nbad,red,x\n", engine=engine)
    assert failed.status == JobStatus.FAILED
    assert not CustomField.objects.exists()
    done = run_import("email,Favourite Colour,Visits\nann@example.com,blue,3\n", engine=engine)
    assert done.fields_created == ["Favourite Colour", "Visits"]
    assert dict(CustomField.objects.values_list("key", "type")) == {
        "favourite_colour": FieldType.TEXT,
        "visits": FieldType.NUMBER,
    }
    assert Contact.objects.get().custom == {"favourite_colour": "blue", "visits": 3}


def test_columns_for_new_fields_are_ignored_when_fields_are_not_to_be_created(run_import: RunImport) -> None:
    job = run_import("email,Colour\nann@example.com,blue\n", create_fields=False)
    assert job.status == JobStatus.DONE
    assert not CustomField.objects.exists()
    assert Contact.objects.get().custom == {}


def test_a_changed_mapping_is_used(run_import: RunImport, fields: dict[str, CustomField]) -> None:
    job = run_import("email,city,other\nann@example.com,Oslo,Bergen\n", mapping=["email", "", "field:city"])
    assert job.status == JobStatus.DONE
    assert custom("ann@example.com") == {"city": "Bergen"}


def test_one_audit_row_per_import_whatever_its_size(run_import: RunImport) -> None:
    rows = "".join(f"p{i}@example.com\n" for i in range(500))
    job = run_import("email\n" + rows)
    entries = AuditLog.objects.filter(action="contacts.import")
    assert entries.count() == 1
    entry = entries.get()
    assert entry.after["created"] == 500
    assert str(job.pk) in entry.target


def test_counts_are_refreshed_after_an_import(run_import: RunImport, server: Server) -> None:
    run_import("email,status\nann@example.com,\nbob@example.com,unsubscribed\n")
    stats = ContactStats.objects.get(server=server)
    assert (stats.total, stats.subscribed, stats.unsubscribed) == (2, 1, 1)


def test_unsubscribes_and_linked_list_additions_wait_in_the_push_outbox(
    run_import: RunImport, server: Server, admin: User, engine: str
) -> None:
    server.marketing_key = "marketing-key-123"
    server.save()
    linked = ContactList.objects.create(server=server, name="Linked", remote_id=77)
    local = ContactList.objects.create(server=server, name="Local")
    run_import(
        "email,first_name,status\nann@example.com,Ann,\nbob@example.com,Bob,unsubscribed\n",
        engine=engine,
        list_ids=[linked.pk, local.pk],
    )
    changes = sorted(RemoteChange.objects.values_list("action", "list_remote_id", "email", "first_name"))
    assert changes == [
        ("add", 77, "ann@example.com", "Ann"),
        ("add", 77, "bob@example.com", "Bob"),
        ("unsubscribe", None, "bob@example.com", ""),
    ]


def test_a_job_runs_once_even_when_its_message_arrives_twice(server: Server, admin: User) -> None:
    job = imports.create_job(server=server, actor=admin, upload=upload("email\nann@example.com\n"))
    imports.queue(
        job=job,
        actor=admin,
        update_existing=True,
        skip_invalid=False,
        new_status="subscribed",
        list_ids=[],
        create_fields=True,
    )
    assert imports.run(job.pk) is not None
    assert imports.run(job.pk) is None  # already claimed and done
    assert Contact.objects.count() == 1


def test_the_sweeper_requeues_an_import_whose_worker_died_and_gives_up_after_three_tries(
    server: Server, admin: User, django_capture_on_commit_callbacks: Callable[..., object]
) -> None:
    job = imports.create_job(server=server, actor=admin, upload=upload("email\nann@example.com\n"))
    stale = timezone.now() - timedelta(minutes=30)
    ImportJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, heartbeat_at=stale, attempts=1)
    with django_capture_on_commit_callbacks() as callbacks:  # type: ignore[operator]
        assert imports.sweep()["requeued"] == 1
    assert len(callbacks) == 1  # run_import is sent again once the sweep commits
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED
    ImportJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, heartbeat_at=stale, attempts=3)
    assert imports.sweep()["failed"] == 1
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "interrupted 3 times" in job.error


def test_progress_is_published_while_the_file_is_read(run_import: RunImport, server: Server) -> None:
    job = run_import("email\n" + "".join(f"p{i}@example.com\n" for i in range(2000)))
    progress = cache.get(f"marketing:import:{job.pk}:progress")
    assert progress is not None
    assert progress["rows_read"] == 2001
    assert progress["bytes_done"] == job.file_size


# --- the PostgreSQL engine's chunks ----------------------------------------------------------------
@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three rows per chunk, so a few lines exercise what a million rows do."""
    from marketing import importer

    monkeypatch.setattr(importer, "CHUNK_ROWS", 3)


@postgresql_only
def test_repeats_across_chunks_keep_the_first_line_when_skipping(
    run_import: RunImport, fields: dict[str, CustomField], small_chunks: None
) -> None:
    rows = [f"p{i}@example.com,{i}" for i in range(10)]
    rows[7] = "p1@example.com,70"  # line 9 repeats line 3, two chunks later
    rows[8] = "p8@example.com,8"
    rows.insert(9, "p8@example.com,80")  # line 11 repeats line 10 in the same chunk
    job = run_import("email,score\n" + "\n".join(rows) + "\n", skip_invalid=True, engine="sql")
    assert job.status == JobStatus.DONE
    assert [p[:2] for p in job.problems] == [[9, "email"], [11, "email"]]
    assert job.problems[0][2] == "the address is already on line 3"
    assert custom("p1@example.com") == {"score": 1}  # the first occurrence, not line 9's 70
    assert custom("p8@example.com") == {"score": 8}
    assert (job.created_count, job.invalid_count) == (9, 2)
    assert Contact.objects.count() == 9


@postgresql_only
def test_repeats_across_chunks_fail_a_strict_import(
    run_import: RunImport, fields: dict[str, CustomField], small_chunks: None
) -> None:
    text = "email,score\n" + "".join(f"p{i}@example.com,{i}\n" for i in range(7)) + "p0@example.com,9\n"
    job = run_import(text, engine="sql")
    assert job.status == JobStatus.FAILED
    assert job.problems == [[9, "email", "the address is already on line 2"]]
    assert not Contact.objects.exists()


@postgresql_only
def test_a_strict_import_stops_writing_at_the_first_bad_chunk_and_reports_everything(
    run_import: RunImport, fields: dict[str, CustomField], small_chunks: None
) -> None:
    text = "email,score\n" + "".join(f"p{i}@example.com,{'x' if i in (4, 8) else i}\n" for i in range(10))
    job = run_import(text, engine="sql")
    assert [p[0] for p in job.problems] == [6, 10]
    assert not Contact.objects.exists()


@postgresql_only
def test_an_address_another_transaction_inserted_meanwhile_is_upserted(
    run_import: RunImport, server: Server, admin: User, fields: dict[str, CustomField], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plain INSERT of a first import meets a contact it did not expect: the chunk falls back to ON CONFLICT."""
    from marketing import importer

    services.create_contact(server=server, actor=admin, data={"email": "ann@example.com", "custom": {"city": "Oslo"}})
    plain = importer._insert_sql
    monkeypatch.setattr(importer, "_insert_sql", lambda plan, check_existing: plain(plan, check_existing=False))
    job = run_import("email,score\nann@example.com,1\nbob@example.com,2\n", engine="sql")
    assert job.status == JobStatus.DONE, job.error
    assert (job.created_count, job.updated_count) == (1, 1)
    assert custom("ann@example.com") == {"city": "Oslo", "score": 1}


def test_backslashes_tabs_quotes_and_line_breaks_arrive_unchanged(
    run_import: RunImport, fields: dict[str, CustomField], engine: str
) -> None:
    city = 'C:\\temp\t"quoted"\\N'
    text = 'email,first_name,city\nann@example.com,"back\\slash\r\nand tab\t","' + city.replace('"', '""') + '"\n'
    job = run_import(text, engine=engine)
    assert job.status == JobStatus.DONE, job.error
    contact = Contact.objects.get()
    assert contact.first_name == "back\\slash\r\nand tab"  # trimmed at the ends only
    assert contact.custom == {"city": city}
