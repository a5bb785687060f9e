"""Fixtures for contacts: files on a private MEDIA_ROOT, import jobs built and run through the services."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from pytest_django.fixtures import Settings

from accounts.models import Server, User
from marketing import imports, services
from marketing.models import CustomField, FieldType, ImportJob


@pytest.fixture(autouse=True)
def media_root(settings: Settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def upload(content: str | bytes, name: str = "contacts.csv") -> SimpleUploadedFile:
    data = content.encode() if isinstance(content, str) else content
    return SimpleUploadedFile(name, data, content_type="text/csv")


@pytest.fixture
def fields(server: Server, admin: User) -> dict[str, CustomField]:
    """Typed custom fields: city (text), score (number), signup (date), vip (yes/no), plan (choice)."""
    return {
        "city": services.create_field(server=server, actor=admin, label="City", type=FieldType.TEXT),
        "score": services.create_field(server=server, actor=admin, label="Score", type=FieldType.NUMBER),
        "signup": services.create_field(server=server, actor=admin, label="Signup", type=FieldType.DATE),
        "vip": services.create_field(server=server, actor=admin, label="VIP", type=FieldType.BOOLEAN),
        "plan": services.create_field(
            server=server, actor=admin, label="Plan", type=FieldType.CHOICE, choices=["free", "pro", "team"]
        ),
    }


@pytest.fixture
def run_import(server: Server, admin: User) -> Callable[..., ImportJob]:
    """Upload `content`, optionally change the mapping, queue with options and run it here (no broker)."""

    def run(
        content: str | bytes,
        *,
        mapping: list[str] | None = None,
        engine: str = "auto",
        update_existing: bool = True,
        skip_invalid: bool = False,
        new_status: str = "subscribed",
        list_ids: list[int] | None = None,
        create_fields: bool = True,
        actor: Any = None,
    ) -> ImportJob:
        job = imports.create_job(server=server, actor=actor or admin, upload=upload(content))
        if mapping is not None:
            assert imports.save_mapping(job=job, targets=mapping) == []
        imports.queue(
            job=job,
            actor=actor or admin,
            update_existing=update_existing,
            skip_invalid=skip_invalid,
            new_status=new_status,
            list_ids=list_ids or [],
            create_fields=create_fields,
        )
        result = imports.run(job.pk, engine=engine)
        assert result is not None
        return result

    return run
