"""Demo data: one sandbox account with three servers, and matching Mailroom servers pointing at the sandbox.

Safe to run any number of times. The sandbox keeps only key hashes, so a key can be handed to
Mailroom only when it is issued; on a re-run, a key already stored on the Mailroom server is kept
as long as the sandbox still accepts it for that permission, and re-issued (replacing the old demo
key of the same name) only when it no longer works.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from accounts import services
from accounts.models import Server
from sandbox.models import (
    Permission,
    SandboxAccount,
    SandboxApiKey,
    SandboxContactList,
    SandboxCustomField,
    SandboxServer,
    key_hash,
)

DEMO_ACCOUNT_ID = 10100
DEMO_ACCOUNT_NAME = "Acme"


@dataclass(frozen=True)
class DemoServer:
    server_id: int
    name: str
    legacy_injection: bool = False  # store a short legacy key (sent in the body) as the injection key


DEMO_SERVERS = (
    DemoServer(10101, "Acme Transactional"),
    DemoServer(10102, "Acme Marketing"),
    DemoServer(10103, "Acme EU", legacy_injection=True),
)

# Mailroom field → (sandbox permission, demo key name).
KEY_FIELDS = {
    "api_key": (Permission.API, "Mailroom demo: API v2"),
    "injection_key": (Permission.INJECTION, "Mailroom demo: injection"),
    "marketing_key": (Permission.MARKETING, "Mailroom demo: marketing"),
}


def sandbox_urls() -> dict[str, str]:
    base = settings.SANDBOX_BASE_URL.rstrip("/")
    return {
        "api_url": f"{base}/api/v2",
        "inject_url": f"{base}/inject/api/v1/email",
        "marketing_url": f"{base}/marketing/v1",
    }


def key_works(server: SandboxServer, raw: str, permission: str) -> bool:
    key = SandboxApiKey.objects.filter(server=server, key_hash=key_hash(raw)).first()
    return key is not None and permission in key.permissions


def _issue(server: SandboxServer, permission: str, name: str, *, legacy: bool) -> str:
    SandboxApiKey.objects.filter(server=server, name=name).delete()
    _, raw = SandboxApiKey.issue(server=server, name=name, permissions=[permission], legacy=legacy)
    return raw


def _demo_content(server: SandboxServer) -> None:
    """A list and a custom field, so the Marketing pages have something to show."""
    if not SandboxContactList.objects.filter(server=server, name="Newsletter").exists():
        SandboxContactList.objects.create(server=server, name="Newsletter")
    SandboxCustomField.objects.get_or_create(server=server, name="City")


def seed_demo_servers(owner: Any) -> list[str]:
    """Create (or keep) the demo sandbox account, servers and keys, and Mailroom servers using them."""
    lines: list[str] = []
    urls = sandbox_urls()
    with transaction.atomic():
        account, created = SandboxAccount.objects.get_or_create(
            account_id=DEMO_ACCOUNT_ID, defaults={"name": DEMO_ACCOUNT_NAME}
        )
        lines.append(f"Sandbox account {account}: {'created' if created else 'kept'}.")
        for spec in DEMO_SERVERS:
            sandbox_server, created = SandboxServer.objects.get_or_create(
                server_id=spec.server_id, defaults={"account": account, "name": spec.name}
            )
            if spec.name == "Acme Marketing":
                _demo_content(sandbox_server)
            mailroom = Server.objects.filter(socketlabs_id=spec.server_id, api_url=urls["api_url"]).first()
            fresh: dict[str, str] = {}
            for field, (permission, key_name) in KEY_FIELDS.items():
                current = getattr(mailroom, field, "") if mailroom else ""
                if current and key_works(sandbox_server, current, permission):
                    continue
                legacy = spec.legacy_injection and permission == Permission.INJECTION
                fresh[field] = _issue(sandbox_server, permission, key_name, legacy=legacy)
            issued = ", ".join(KEY_FIELDS[f][0] for f in fresh) or "none (existing keys still work)"
            lines.append(f"Sandbox server {sandbox_server}: {'created' if created else 'kept'}; keys issued: {issued}.")
            if mailroom is None:
                mailroom = services.create_server(
                    request=None,
                    actor=owner,
                    data={
                        "name": spec.name,
                        "socketlabs_id": spec.server_id,
                        "account_id": account.account_id,
                        **urls,
                        **fresh,
                    },
                )
                lines.append(f"Mailroom server {mailroom} → {urls['api_url']}: created.")
            elif fresh:
                services.update_server(request=None, actor=owner, server=mailroom, data=fresh)
                lines.append(f"Mailroom server {mailroom}: kept; stored new keys for {', '.join(fresh)}.")
            else:
                lines.append(f"Mailroom server {mailroom}: kept.")
    return lines


DEMO_HISTORY_DAYS = 14
DEMO_MESSAGES_PER_DAY = 300


def seed_demo_history(*, owner: Any, days: int = DEMO_HISTORY_DAYS, per_day: int = DEMO_MESSAGES_PER_DAY) -> list[str]:
    """Two weeks of simulated traffic on demo servers that have none, and a back-fill pull of it.

    The pulls are queued, not run: the worker fetches the reports from the sandbox once `make run`
    has started the web process, so the Reports → Jobs page shows them progressing. Servers that
    already have traffic or pulls are left alone, so a second seed changes nothing.
    """
    from reporting import pulls
    from reporting.models import PullTrigger, ReportPull
    from sandbox import simulation
    from sandbox.models import SandboxEvent

    lines: list[str] = []
    api_url = sandbox_urls()["api_url"]
    for spec in DEMO_SERVERS:
        sandbox_server = SandboxServer.objects.filter(server_id=spec.server_id).first()
        mailroom = Server.objects.filter(socketlabs_id=spec.server_id, api_url=api_url).first()
        if sandbox_server is None or mailroom is None:
            continue
        if not SandboxEvent.objects.filter(server=sandbox_server).exists():
            stats = simulation.generate_history(servers=[sandbox_server], days=days, per_day=per_day, seed=7)
            lines.append(f"Sandbox server {sandbox_server}: simulated {stats.messages:,} messages over {days} days.")
        if not ReportPull.objects.filter(server=mailroom).exists():
            yesterday = pulls.utc_today() - timedelta(days=1)
            pulls.create_pull(mailroom, yesterday - timedelta(days=days - 1), yesterday, PullTrigger.BACKFILL, owner)
            lines.append(f"Mailroom server {mailroom}: queued a report back-fill of the last {days} days.")
    return lines
