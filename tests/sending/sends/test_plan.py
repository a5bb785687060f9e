"""Batch planning: every pending recipient lands in exactly one batch of at most 500, in id order."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db.models import Count, Max, Min

from sending import engine
from sending.models import RecipientState, Send, SendBatch, SendRecipient
from tests.sending.sends.conftest import people

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("analyze_after", [1, 1000])
def test_batches_cover_every_pending_recipient_once_in_id_order(
    make_send: Callable[..., Send], monkeypatch: pytest.MonkeyPatch, analyze_after: int
) -> None:
    monkeypatch.setattr(engine, "ANALYZE_AFTER_BATCHES", analyze_after)
    send = make_send([*people(1234), engine.AudienceRow("broken")])

    assert engine.plan_batches(send) == 3
    assert engine.plan_batches(send) == 0  # nothing left without a batch

    rows = list(
        SendRecipient.objects.filter(send=send, state=RecipientState.PENDING)
        .values("batch__seq")
        .annotate(n=Count("pk"), first=Min("pk"), last=Max("pk"))
        .order_by("batch__seq")
    )
    assert [(r["batch__seq"], r["n"]) for r in rows] == [(1, 500), (2, 500), (3, 234)]
    assert rows[0]["last"] < rows[1]["first"] and rows[1]["last"] < rows[2]["first"]
    assert not SendRecipient.objects.filter(send=send, state=RecipientState.SKIPPED, batch__isnull=False).exists()

    # Retrying adds batches after the existing ones.
    SendRecipient.objects.filter(send=send, batch__seq=2).update(batch=None)
    assert engine.plan_batches(send) == 1
    assert SendRecipient.objects.filter(send=send, batch__seq=4).count() == 500
    assert SendBatch.objects.filter(send=send).count() == 4
