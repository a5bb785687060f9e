from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from accounts.fields import EncryptedTextField, rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the newest key in MAILROOM_ENCRYPTION_KEYS. "
        "Put the new key first, keep the old ones after it, run this, then drop the old keys."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        for model in apps.get_models():
            fields = [f for f in model._meta.get_fields() if isinstance(f, EncryptedTextField)]
            if not fields:
                continue
            table = connection.ops.quote_name(model._meta.db_table)
            pk = connection.ops.quote_name(model._meta.pk.column or "id")
            columns = [connection.ops.quote_name(f.column or f.name) for f in fields]
            # Raw SQL on purpose: rotate the stored tokens without decrypting into Python objects
            # or touching any other column (no save() side effects, no auto_now fields).
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SELECT {pk}, {', '.join(columns)} FROM {table}")  # noqa: S608
                rows = cursor.fetchall()
                for row in rows:
                    updates = {col: rotate(value) for col, value in zip(columns, row[1:], strict=True) if value}
                    if not updates:
                        continue
                    assignments = ", ".join(f"{col} = %s" for col in updates)
                    cursor.execute(
                        f"UPDATE {table} SET {assignments} WHERE {pk} = %s",  # noqa: S608
                        [*updates.values(), row[0]],
                    )
                    total += len(updates)
            self.stdout.write(f"{model._meta.label}: {len(rows)} rows checked")
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {total} secrets with the newest key."))
