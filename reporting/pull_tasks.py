"""Celery tasks of report pulls (issue 9)."""

from __future__ import annotations
