"""Pulled report rows written straight into the tables (the pulls' own tests cover how they get there)."""

from __future__ import annotations

from datetime import date

from accounts.models import Server
from reporting.models import ReportDay, ReportKind, StreamScoreDay


def put_day(server: Server, day: date, **totals: int) -> None:
    """put_day(server, day, delivered=95, failed=5, complaints=0, opens=3) — upserts like a pull."""
    for kind, total in totals.items():
        ReportDay.objects.update_or_create(
            server=server, day=day, kind=ReportKind(kind), defaults={"total": total, "unique": None}
        )


def put_score(server: Server, day: date, score: int, rating: str = "") -> None:
    if not rating:
        rating = "Good" if score >= 80 else "Fair" if score >= 50 else "Poor"
    StreamScoreDay.objects.update_or_create(server=server, day=day, defaults={"score": score, "rating": rating})
