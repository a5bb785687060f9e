"""The send engine against the sandbox over real HTTP: merge, suppression, limits, results, pause/cancel, crashes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import responses
from django.utils import timezone

from accounts.models import AuditLog, Server
from accounts.services import client_for
from sandbox.models import SandboxMessage
from sending import engine
from sending.models import BatchState, RecipientState, Send, SendBatch, SendRecipient, SendStatus
from suppression.models import Suppression
from tests.sending.sends.conftest import people

pytestmark = pytest.mark.django_db(transaction=True)


def run(send: Send, **options: Any) -> str:
    engine.start(send, actor=send.created_by)
    return engine.run_dispatcher(send.pk, **options)


def test_it_merges_per_recipient_fields_over_global_and_leaves_missing_ones_empty(
    make_send: Callable[..., Send],
) -> None:
    rows = [
        engine.AudienceRow("ann@example.net", "Ann", {"FirstName": "Ann", "City": "Oslo", "Motto": "own motto"}),
        engine.AudienceRow("bob@example.net", "", {"FirstName": "Bob"}),
    ]
    send = make_send(rows, global_fields={"Motto": "be kind"}, mailing_id="spring")

    assert run(send) == "done"

    ann = SandboxMessage.objects.get(to__0__emailAddress="ann@example.net")
    bob = SandboxMessage.objects.get(to__0__emailAddress="bob@example.net")
    assert ann.subject == "Hello Ann"
    assert ann.text_body == "Hi Ann from Oslo, own motto"  # the recipient's value beats the global one
    assert bob.text_body == "Hi Bob from , be kind"  # missing City is empty; Motto comes from Global
    assert ann.mailing_id == "spring"
    ann_row = SendRecipient.objects.get(address="ann@example.net")
    assert ann.message_id == f"mailroom-{send.pk}-{ann_row.pk}"
    assert engine.progress(send).accepted == 2


def test_it_escapes_nothing_and_runs_no_template_engine_on_merge_values(make_send: Callable[..., Send]) -> None:
    rows = [engine.AudienceRow("eve@example.net", "", {"FirstName": "{{ settings.SECRET_KEY }}<b>"})]
    send = make_send(rows)

    run(send)

    assert SandboxMessage.objects.get().subject == "Hello {{ settings.SECRET_KEY }}<b>"


def test_it_skips_suppressed_invalid_and_duplicate_addresses_up_front(
    make_send: Callable[..., Send], inject_server: Server
) -> None:
    now = timezone.now()
    Suppression.objects.create(
        server=inject_server,
        address="gone@example.net",
        reason="hardbounce",
        first_seen_at=now,
        last_update=now,
        mirrored_at=now,
    )
    rows = [
        engine.AudienceRow("ok@example.net"),
        engine.AudienceRow("GONE@example.net"),
        engine.AudienceRow("not an address", line=3),
        engine.AudienceRow("OK@example.net"),
    ]
    send = make_send(rows)

    assert (send.total, send.skipped) == (1, 2)
    run(send)

    assert list(SandboxMessage.objects.values_list("to__0__emailAddress", flat=True)) == ["ok@example.net"]
    skipped = dict(SendRecipient.objects.filter(state=RecipientState.SKIPPED).values_list("address", "reason"))
    assert skipped["gone@example.net"] == "suppressed"
    assert skipped["not an address"].startswith("line 3: ")


def test_it_splits_the_audience_at_the_injection_limits(make_send: Callable[..., Send]) -> None:
    send = make_send(people(1201))

    run(send)

    assert SendBatch.objects.filter(send=send).count() == 3  # 500 + 500 + 201, one request each
    assert SandboxMessage.objects.count() == 1201
    assert set(SandboxMessage.objects.values_list("message_index", flat=True)) == set(range(10))
    assert SandboxMessage.objects.values("transaction_receipt").distinct().count() == 3
    assert engine.progress(send).accepted == 1201
    send.refresh_from_db()
    assert send.status == SendStatus.DONE


def test_it_records_per_address_rejections_with_their_code(make_send: Callable[..., Send]) -> None:
    send = make_send(people(3))
    # An address our own check lets through but SocketLabs refuses (the sandbox's rule: exactly one @).
    SendRecipient.objects.create(send=send, address='"odd@x"@example.net', fields={"FirstName": "Odd"})

    run(send)

    odd = SendRecipient.objects.get(address='"odd@x"@example.net')
    assert (odd.state, odd.code) == (RecipientState.REJECTED, "InvalidAddress")
    assert engine.progress(send).accepted == 3
    assert SandboxMessage.objects.count() == 3


def test_it_pauses_resumes_and_cancels(make_send: Callable[..., Send], queued: list[int]) -> None:
    send = make_send(people(1100))
    engine.start(send, actor=send.created_by)
    first = engine.claim_batch(send)
    assert first is not None
    engine.send_batch(send, first)

    assert engine.pause(send, actor=send.created_by)
    assert engine.run_dispatcher(send.pk) == "stopped"
    assert SandboxMessage.objects.count() == 500

    queued.clear()
    assert engine.resume(send, actor=send.created_by)
    assert queued  # the dispatcher was queued again
    second = engine.claim_batch(send)
    assert second is not None
    engine.send_batch(send, second)
    assert engine.cancel(send, actor=send.created_by)
    assert engine.run_dispatcher(send.pk) == "stopped"

    assert SandboxMessage.objects.count() == 1000
    progress = engine.progress(send)
    assert (progress.accepted, progress.skipped, progress.pending) == (1000, 100, 0)
    actions = list(AuditLog.objects.filter(action__startswith="send.").values_list("action", flat=True))
    assert {"send.create", "send.start", "send.pause", "send.resume", "send.cancel"} <= set(actions)
    assert not engine.resume(send, actor=send.created_by)  # a cancelled send stays cancelled


def test_it_never_sends_twice_across_a_worker_that_died_mid_request(
    make_send: Callable[..., Send], monkeypatch: pytest.MonkeyPatch
) -> None:
    send = make_send(people(1200))
    engine.start(send, actor=send.created_by)

    def crash(*args: Any, **kwargs: Any) -> str:
        raise SystemExit("worker killed after the request, before the result was written")

    with monkeypatch.context() as patch:
        patch.setattr(engine, "record_result", crash)
        with pytest.raises(SystemExit):
            engine.run_dispatcher(send.pk)
    assert SandboxMessage.objects.count() == 500  # the first request reached SocketLabs
    assert SendBatch.objects.get(send=send, seq=1).state == BatchState.IN_FLIGHT

    swept = engine.sweep(older_than=timedelta(0))  # the worker restarts; beat sweeps

    assert (swept.marked_unknown, swept.requeued) == (1, 1)
    assert engine.run_dispatcher(send.pk) == "done"
    assert SandboxMessage.objects.count() == 1200  # nobody twice
    assert SandboxMessage.objects.values("to__0__emailAddress").distinct().count() == 1200
    progress = engine.progress(send)
    assert (progress.accepted, progress.unknown) == (700, 500)
    assert SendBatch.objects.get(send=send, seq=1).state == BatchState.UNKNOWN


def test_it_marks_a_batch_claimed_by_a_dead_worker_unknown_and_resends_nothing(make_send: Callable[..., Send]) -> None:
    send = make_send(people(600))
    engine.start(send, actor=send.created_by)
    claimed = engine.claim_batch(send)  # the worker dies right after claiming
    assert claimed is not None

    assert engine.sweep().marked_unknown == 0  # not stale yet
    SendBatch.objects.filter(pk=claimed.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    assert engine.sweep().marked_unknown == 1
    engine.run_dispatcher(send.pk)

    assert SandboxMessage.objects.count() == 100
    assert engine.progress(send).unknown == 500


def test_retry_resends_rejected_recipients_but_unknown_ones_only_when_confirmed(
    make_send: Callable[..., Send], monkeypatch: pytest.MonkeyPatch
) -> None:
    send = make_send(people(520))
    engine.start(send, actor=send.created_by)
    first = engine.claim_batch(send)
    assert first is not None
    engine._record_unknown(first, "test: no answer")
    engine.run_dispatcher(send.pk)
    SendRecipient.objects.filter(send=send, address="person510@example.net").update(
        state=RecipientState.REJECTED, code="OverQuota"
    )
    send.refresh_from_db()
    assert send.status == SendStatus.DONE

    assert engine.retry_failed(send, actor=send.created_by) == 1
    engine.run_dispatcher(send.pk)
    assert SandboxMessage.objects.filter(to__0__emailAddress="person510@example.net").count() == 2
    assert SandboxMessage.objects.count() == 21

    assert engine.retry_failed(send, actor=send.created_by, include_unknown=True) == 500
    engine.run_dispatcher(send.pk)
    assert SandboxMessage.objects.count() == 521
    assert engine.progress(send).accepted == 520


def test_it_bounds_batches_in_flight_per_server(make_send: Callable[..., Send], settings: Any) -> None:
    settings.SENDING_MAX_IN_FLIGHT_PER_SERVER = 2
    send = make_send(people(2000))
    engine.start(send, actor=send.created_by)

    claims = [engine.claim_batch(send) for _ in range(3)]

    assert claims[0] is not None and claims[1] is not None
    assert claims[2] is None
    assert engine.run_dispatcher(send.pk) == "busy"


def test_a_read_timeout_makes_the_batch_unknown_and_it_is_not_resent(
    make_send: Callable[..., Send], inject_server: Server
) -> None:
    send = make_send(people(3))
    engine.start(send, actor=send.created_by)
    inject_server.inject_url = "http://127.0.0.1:9/inject"
    inject_server.save()
    import requests

    with responses.RequestsMock() as fake:
        fake.post("http://127.0.0.1:9/inject", body=requests.ReadTimeout("read timed out"))
        outcome = engine.run_dispatcher(send.pk, client=client_for(inject_server, sleep=lambda s: None))
        assert len(fake.calls) == 1

    assert outcome == "done"
    assert engine.progress(send).unknown == 3
    batch = SendBatch.objects.get(send=send)
    assert batch.state == BatchState.UNKNOWN
    assert "not re-sent" in batch.last_error


def test_a_503_puts_the_batch_back_for_a_later_retry(make_send: Callable[..., Send], inject_server: Server) -> None:
    send = make_send(people(3))
    engine.start(send, actor=send.created_by)
    inject_server.inject_url = "http://127.0.0.1:9/inject"
    inject_server.save()

    with responses.RequestsMock() as fake:
        fake.post("http://127.0.0.1:9/inject", status=503, json={})
        with pytest.raises(engine.NotTaken):
            engine.run_dispatcher(send.pk, client=client_for(inject_server, sleep=lambda s: None))

    batch = SendBatch.objects.get(send=send)
    assert (batch.state, batch.attempts) == (BatchState.PENDING, 1)
    assert engine.progress(send).pending == 3


def test_a_refused_key_pauses_the_send(make_send: Callable[..., Send], inject_server: Server) -> None:
    inject_server.injection_key = "x" * 20 + "." + "y" * 40
    inject_server.save()
    send = make_send(people(1100))

    run(send)

    send.refresh_from_db()
    assert send.status == SendStatus.PAUSED
    assert "Paused" in send.last_error
    assert SendBatch.objects.filter(send=send, state=BatchState.PENDING).count() == 2
    assert SandboxMessage.objects.count() == 0


def test_only_a_draft_with_somebody_to_send_to_starts(make_send: Callable[..., Send]) -> None:
    send = make_send([engine.AudienceRow("nope")])

    with pytest.raises(engine.SendError, match="nobody to send to"):
        engine.start(send, actor=send.created_by)
    assert Send.objects.get(pk=send.pk).status == SendStatus.DRAFT
