"""Writes for reporting: endpoints, secret rotation, replays, pruning. Every write is audited."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts import audit
from accounts.models import Server
from reporting import conf
from reporting.models import (
    DeadLetter,
    EndpointBase,
    EventEndpoint,
    InboundEndpoint,
    RawEvent,
    RequestLog,
    WebhookFormat,
    new_secret,
)
from reporting.receivers import forget_endpoint, wake_processor

EndpointModel = type[EventEndpoint] | type[InboundEndpoint]


def _label(endpoint: EndpointBase) -> str:
    kind = "inbound" if isinstance(endpoint, InboundEndpoint) else "events"
    return f"{kind} endpoint {endpoint.name or endpoint.uuid}"


def create_endpoint(
    *,
    model: EndpointModel,
    server: Server,
    name: str,
    allowed_networks: list[str],
    request: HttpRequest | None = None,
    actor: Any = None,
) -> tuple[EndpointBase, str]:
    """Create an endpoint; returns it with its secret, which is shown once."""
    secret = new_secret()
    endpoint = model.objects.create(server=server, name=name, allowed_networks=allowed_networks, secret_key=secret)
    audit.record(
        action=f"reporting.{'inbound' if model is InboundEndpoint else 'webhook'}_endpoint.create",
        request=request,
        actor=actor,
        server=server,
        target=_label(endpoint),
        after={"name": name, "allowed_networks": allowed_networks, "uuid": str(endpoint.uuid)},
    )
    return endpoint, secret


def update_endpoint(
    *,
    endpoint: EndpointBase,
    name: str,
    allowed_networks: list[str],
    request: HttpRequest | None = None,
    actor: Any = None,
) -> None:
    before = {"name": endpoint.name, "allowed_networks": endpoint.allowed_networks}
    endpoint.name = name
    endpoint.allowed_networks = allowed_networks
    endpoint.save(update_fields=["name", "allowed_networks"])
    forget_endpoint(endpoint.uuid)
    audit.record(
        action="reporting.endpoint.update",
        request=request,
        actor=actor,
        server=endpoint.server,
        target=_label(endpoint),
        before=before,
        after={"name": name, "allowed_networks": allowed_networks},
    )


def rotate_secret(*, endpoint: EndpointBase, request: HttpRequest | None = None, actor: Any = None) -> str:
    """A new secret takes effect at once; SocketLabs must be given it (or the endpoint re-registered)."""
    secret = new_secret()
    endpoint.secret_key = secret
    endpoint.secret_rotated_at = timezone.now()
    endpoint.save(update_fields=["secret_key", "secret_rotated_at"])
    forget_endpoint(endpoint.uuid)
    audit.record(
        action="reporting.endpoint.rotate_secret",
        request=request,
        actor=actor,
        server=endpoint.server,
        target=_label(endpoint),
    )
    return secret


def delete_endpoint(*, endpoint: EndpointBase, request: HttpRequest | None = None, actor: Any = None) -> None:
    """Stored events and messages stay; only the URL stops accepting posts."""
    label = _label(endpoint)
    server = endpoint.server
    endpoint_uuid = endpoint.uuid
    endpoint.delete()
    forget_endpoint(endpoint_uuid)
    audit.record(action="reporting.endpoint.delete", request=request, actor=actor, server=server, target=label)


def register_event_endpoint(
    *,
    endpoint: EventEndpoint,
    url: str,
    format: str | None = None,  # noqa: A002 (the contract's name for it)
    request: HttpRequest | None = None,
    actor: Any = None,
) -> str:
    """Register the endpoint's URL and secret at SocketLabs (API v2 event-webhooks); returns its id there.

    `format` is "json" (the default) or the legacy "form"; None keeps the endpoint's last choice, so a
    re-registration after a secret rotation asks for the same body format.
    SocketLabs posts a Validation event to the URL while registering, which this receiver answers.
    Raises `socketlabs.SocketLabsError` (its message is shown to the user) when SocketLabs refuses.
    """
    from accounts.services import client_for

    chosen = format or endpoint.webhook_format or WebhookFormat.JSON
    if chosen not in WebhookFormat.values:
        raise ValueError(f"Unknown webhook format {chosen!r}: use json or form.")
    client = client_for(endpoint.server)
    webhook = client.event_webhooks.create(url=url, secret_key=endpoint.secret_key, events=[], format=chosen)
    previous = endpoint.socketlabs_webhook_id
    endpoint.socketlabs_webhook_id = webhook.id
    endpoint.webhook_format = chosen
    endpoint.save(update_fields=["socketlabs_webhook_id", "webhook_format"])
    if previous and previous != webhook.id:
        _unregister_quietly(client, previous)
    audit.record(
        action="reporting.webhook_endpoint.register",
        request=request,
        actor=actor,
        server=endpoint.server,
        target=_label(endpoint),
        after={"url": url, "socketlabs_webhook_id": webhook.id, "status": webhook.status, "format": chosen},
    )
    return webhook.id


def _unregister_quietly(client: Any, webhook_id: str) -> bool:
    import socketlabs

    try:
        client.event_webhooks.delete(webhook_id)
    except socketlabs.NotFoundError:
        return True
    except socketlabs.SocketLabsError:
        return False
    return True


def unregister_event_endpoint(*, endpoint: EventEndpoint) -> bool:
    """Remove the registration at SocketLabs, if any; False when SocketLabs could not be told."""
    if not endpoint.socketlabs_webhook_id:
        return True
    from accounts.services import client_for

    done = _unregister_quietly(client_for(endpoint.server), endpoint.socketlabs_webhook_id)
    if done:
        endpoint.socketlabs_webhook_id = ""
        if endpoint.pk:
            EventEndpoint.objects.filter(pk=endpoint.pk).update(socketlabs_webhook_id="")
    return done


def replay_raw_events(
    *, server: Server, raw_ids: Sequence[int], request: HttpRequest | None = None, actor: Any = None
) -> int:
    """Send raw events through processing again. Events already recorded are not added twice."""
    ids = sorted({int(i) for i in raw_ids})
    with transaction.atomic():
        count = RawEvent.objects.filter(server=server, pk__in=ids).update(processed_at=None, error="")
        DeadLetter.objects.filter(server=server, raw_id__in=ids, replayed_at__isnull=True).update(
            replayed_at=timezone.now()
        )
        audit.record(
            action="reporting.replay",
            request=request,
            actor=actor,
            server=server,
            target=f"{count} raw event(s)",
            after={"raw_ids": ids[:200]},
        )
    if count:
        transaction.on_commit(lambda: wake_processor(force=True))
    return count


def replay_dead_letters(
    *, server: Server, dead_letter_ids: Sequence[int], request: HttpRequest | None = None, actor: Any = None
) -> int:
    raw_ids = list(
        DeadLetter.objects.filter(server=server, pk__in=dead_letter_ids, replayed_at__isnull=True).values_list(
            "raw_id", flat=True
        )
    )
    if not raw_ids:
        return 0
    return replay_raw_events(server=server, raw_ids=raw_ids, request=request, actor=actor)


def prune(*, now: datetime | None = None, batch: int = 5000) -> tuple[int, int]:
    """Delete request logs past their retention and processed raw rows past theirs (not open dead letters)."""
    now = now or timezone.now()
    log_cutoff = now - timedelta(days=conf.get("REPORTING_REQUEST_LOG_DAYS"))
    raw_cutoff = now - timedelta(days=conf.get("REPORTING_RAW_RETENTION_DAYS"))
    logs = raws = 0
    while True:
        ids = list(RequestLog.objects.filter(received_at__lt=log_cutoff).values_list("id", flat=True)[:batch])
        if not ids:
            break
        logs += RequestLog.objects.filter(pk__in=ids).delete()[0]
    while True:
        ids = list(
            RawEvent.objects.filter(processed_at__isnull=False, received_at__lt=raw_cutoff)
            .exclude(pk__in=DeadLetter.objects.filter(replayed_at__isnull=True).values("raw_id"))
            .values_list("id", flat=True)[:batch]
        )
        if not ids:
            break
        deleted = RawEvent.objects.filter(pk__in=ids).delete()[1]
        raws += deleted.get("reporting.RawEvent", 0)
    return logs, raws
