from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from reporting import routes
from reporting.models import InboundRoute


class Command(BaseCommand):
    help = "Check that every inbound route's MX points at mx.socketlabs.com now (what beat queues nightly)."

    def handle(self, *args: Any, **options: Any) -> None:
        ids = list(InboundRoute.objects.order_by("pk").values_list("pk", flat=True))
        routes.check_routes(ids)
        for route in InboundRoute.objects.filter(pk__in=ids).order_by("domain_or_address"):
            self.stdout.write(f"{route.domain_or_address}: {route.get_mx_status_display()}. {route.mx_detail}")
        self.stdout.write(f"Checked {len(ids)} route(s).")
