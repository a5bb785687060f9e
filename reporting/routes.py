"""Inbound routes: which domains or addresses SocketLabs parses to an inbound endpoint, and their MX check.

A route is registered at SocketLabs through API v2 (`inbound-parse`, with the endpoint's URL,
secret and validation key) and kept here with the result of a DNS check that the domain's MX
points at mx.socketlabs.com. A check that did not complete is "retry later", never "OK".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

import socketlabs
from accounts import audit
from accounts.services import client_for
from reporting.models import InboundEndpoint, InboundRoute, MxStatus, new_secret
from sending.dns import lookup

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})+$")
LOCAL_PART = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")


class RouteError(ValueError):
    """The route cannot be added; the message says why."""


def normalise(value: str) -> str:
    """A domain (`parse.example.com`) or one address (`support@parse.example.com`), lower-cased."""
    text = value.strip().lower().rstrip(".")
    local, at, domain = text.rpartition("@")
    if at and not LOCAL_PART.match(local):
        raise RouteError(f"“{value}” is not an e-mail address: the part before @ is not valid.")
    if not DOMAIN.match(domain or text):
        raise RouteError(f"“{value}” is not a domain such as parse.example.com or an address on one.")
    return text


def check_mx(route: InboundRoute) -> InboundRoute:
    """Look up the route's domain MX and record whether it points at SocketLabs."""
    found = lookup(route.domain, "MX")
    if found.outcome == "answer":
        exchanges = sorted({value.split()[-1].rstrip(".").lower() for value in found.values if value.split()})
        if InboundRoute.MX_TARGET in exchanges:
            status, detail = MxStatus.OK, f"MX: {', '.join(exchanges)}"
        else:
            status = MxStatus.WRONG
            detail = f"MX points at {', '.join(exchanges)}, not {InboundRoute.MX_TARGET}."
    elif found.outcome in ("nxdomain", "nodata"):
        status, detail = MxStatus.MISSING, f"{found.detail} Add an MX record pointing at {InboundRoute.MX_TARGET}."
    else:
        status, detail = MxStatus.ERROR, found.detail
    route.mx_status, route.mx_detail, route.mx_checked_at = status, detail[:500], timezone.now()
    if route.pk:
        route.save(update_fields=["mx_status", "mx_detail", "mx_checked_at"])
    return route


def add_route(
    *,
    endpoint: InboundEndpoint,
    domain_or_address: str,
    url: str,
    request: HttpRequest | None = None,
    actor: Any = None,
) -> InboundRoute:
    """Register the route at SocketLabs, store it, check its MX. RouteError or SocketLabsError if refused."""
    value = normalise(domain_or_address)
    if InboundRoute.objects.filter(server_id=endpoint.server_id, domain_or_address=value).exists():
        raise RouteError(f"{value} already has a route on this server.")
    registered = client_for(endpoint.server).inbound_parse.create(
        domain_or_address=value, url=url, secret_key=endpoint.secret_key, validation_key=endpoint.validation_key
    )
    try:
        with transaction.atomic():
            route = InboundRoute.objects.create(
                endpoint=endpoint, server_id=endpoint.server_id, domain_or_address=value, socketlabs_id=registered.id
            )
    except IntegrityError as exc:
        raise RouteError(f"{value} already has a route on this server.") from exc
    audit.record(
        action="reporting.inbound_route.add",
        request=request,
        actor=actor,
        server=endpoint.server,
        target=value,
        after={"endpoint": str(endpoint.uuid), "socketlabs_id": registered.id},
    )
    return check_mx(route)


def remove_route(*, route: InboundRoute, request: HttpRequest | None = None, actor: Any = None) -> bool:
    """Remove the route here and at SocketLabs; False when SocketLabs could not be told."""
    told = _unregister(route)
    value, server = route.domain_or_address, route.server
    route.delete()
    audit.record(action="reporting.inbound_route.remove", request=request, actor=actor, server=server, target=value)
    return told


def _unregister(route: InboundRoute) -> bool:
    if not route.socketlabs_id:
        return True
    try:
        client_for(route.server).inbound_parse.delete(route.socketlabs_id)
    except socketlabs.NotFoundError:
        return True
    except socketlabs.SocketLabsError:
        return False
    return True


def reregister_routes(*, endpoint: InboundEndpoint, url: str) -> list[str]:
    """After a secret rotation: register every route again with the new secret. Returns routes that failed."""
    client = client_for(endpoint.server)
    failed: list[str] = []
    for route in endpoint.routes.all():

        def register(route: InboundRoute = route) -> Any:
            return client.inbound_parse.create(
                domain_or_address=route.domain_or_address,
                url=url,
                secret_key=endpoint.secret_key,
                validation_key=endpoint.validation_key,
            )

        try:
            try:
                registered = register()
            except socketlabs.ConflictError:
                # One entry per domain at SocketLabs: replace the old one (a brief gap, not a bounce storm).
                _unregister(route)
                registered = register()
        except socketlabs.SocketLabsError:
            failed.append(route.domain_or_address)
            continue
        old = route.socketlabs_id
        route.socketlabs_id = registered.id
        route.save(update_fields=["socketlabs_id"])
        if old and old != registered.id:
            route.socketlabs_id = old
            _unregister(route)
            route.socketlabs_id = registered.id
    return failed


# --- Nightly MX re-check -----------------------------------------------------------------------

MX_BATCH = 50


def check_routes(route_ids: Sequence[int]) -> int:
    """Check the MX of these routes (the ones that still exist); returns how many were checked."""
    checked = 0
    for route in InboundRoute.objects.filter(pk__in=list(route_ids)).order_by("pk"):
        check_mx(route)
        checked += 1
    return checked


def queue_nightly_checks() -> int:
    """Enqueue MX checks of every route in batches of ids; returns how many routes were queued."""
    from reporting.tasks import check_inbound_routes_mx

    ids = list(InboundRoute.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), MX_BATCH):
        check_inbound_routes_mx.delay(ids[start : start + MX_BATCH])
    return len(ids)


# --- Forwarding settings -----------------------------------------------------------------------


def set_forwarding(
    *, route: InboundRoute, url: str, request: HttpRequest | None = None, actor: Any = None
) -> str | None:
    """Forward the route's messages to `url` (empty: stop). Returns a newly made secret, shown once.

    The secret is made the first time a URL is set and kept when only the URL changes, so the
    receiving side need not be reconfigured; `rotate_forward_secret` replaces it.
    """
    before = {"forward_url": route.forward_url}
    url = url.strip()
    secret: str | None = None
    route.forward_url = url
    fields = ["forward_url"]
    if url and not route.forward_secret:
        secret = new_secret()
        route.forward_secret, route.forward_secret_created_at = secret, timezone.now()
        fields += ["forward_secret", "forward_secret_created_at"]
    elif not url and route.forward_secret:
        route.forward_secret, route.forward_secret_created_at = "", None
        fields += ["forward_secret", "forward_secret_created_at"]
    route.save(update_fields=fields)
    audit.record(
        action="reporting.inbound_route.forwarding",
        request=request,
        actor=actor,
        server=route.server,
        target=route.domain_or_address,
        before=before,
        after={"forward_url": url, "new_secret": secret is not None},
    )
    return secret


def rotate_forward_secret(*, route: InboundRoute, request: HttpRequest | None = None, actor: Any = None) -> str:
    """A new forwarding secret, used from the next attempt on; shown once."""
    if not route.forward_url:
        raise RouteError(f"{route} does not forward its messages: set a forwarding URL first.")
    secret = new_secret()
    route.forward_secret, route.forward_secret_created_at = secret, timezone.now()
    route.save(update_fields=["forward_secret", "forward_secret_created_at"])
    audit.record(
        action="reporting.inbound_route.rotate_forward_secret",
        request=request,
        actor=actor,
        server=route.server,
        target=route.domain_or_address,
    )
    return secret
