"""Celery tasks of alerts and digests (issue 9)."""

from __future__ import annotations
