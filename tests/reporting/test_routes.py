"""Inbound routes: registered at the sandbox over HTTP, MX checked against a real DNS server on loopback."""

from __future__ import annotations

import re
from collections.abc import Callable, Generator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from dnslib import MX, QTYPE, RR, DNSRecord

from accounts.models import AuditLog, Server, User
from reporting import routes
from reporting.models import InboundEndpoint, InboundRoute, MxStatus
from sandbox.models import SandboxInboundEndpoint
from tests.dnsfixture import DnsServer, Zone
from tests.sandbox.conftest import make_sandbox_server

AsUser = Callable[[User], Client]


class MxZone(Zone):
    """The shared test zone plus MX records."""

    def mx(self, name: str, exchange: str, preference: int = 10) -> None:
        with self.lock:
            self.records.setdefault(name.lower(), []).append(("MX", (preference, exchange.lower())))

    def answer(self, data: bytes) -> bytes | None:
        request = DNSRecord.parse(data)
        name = str(request.q.qname).rstrip(".").lower()
        if QTYPE[request.q.qtype] == "MX" and name not in self.silent_names:
            entries = [value for kind, value in self.records.get(name, []) if kind == "MX"]
            if entries:
                reply = request.reply()
                for preference, exchange in entries:
                    reply.add_answer(RR(name + ".", QTYPE.MX, rdata=MX(exchange + ".", preference), ttl=60))
                with self.lock:
                    self.queries.append((name, "MX"))
                return reply.pack()
        return super().answer(data)


@pytest.fixture
def mx_zone(settings: Any) -> Generator[MxZone]:
    server = DnsServer()
    server.zone = MxZone()
    server.start()
    settings.MAILROOM_DNS_NAMESERVERS = [server.address]
    settings.MAILROOM_DNS_TIMEOUT = 0.4
    yield server.zone  # type: ignore[misc]
    server.stop()


@pytest.fixture
def wired(
    live_server: Any, settings: Any, server: Server, inbound_endpoint: InboundEndpoint, short_db_sessions: None
) -> InboundEndpoint:
    settings.SANDBOX_ENABLED = True
    settings.REPORTING_PUBLIC_BASE_URL = live_server.url
    keys = make_sandbox_server()
    server.socketlabs_id = keys.server_id
    server.api_url = f"{live_server.url}/sandbox/api/v2"
    server.api_key = keys.api_key
    server.save()
    inbound_endpoint.refresh_from_db()
    return inbound_endpoint


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Parse.Example.COM.", "parse.example.com"), (" Support@Parse.example.com ", "support@parse.example.com")],
)
def test_it_normalises_domains_and_addresses(value: str, expected: str) -> None:
    assert routes.normalise(value) == expected


@pytest.mark.parametrize(
    "value", ["", "localhost", "a b.example.com", "@example.com", "x@-bad-.example.com", "ex..ample.com"]
)
def test_it_refuses_what_is_not_a_domain_or_address(value: str) -> None:
    with pytest.raises(routes.RouteError):
        routes.normalise(value)


@pytest.mark.django_db(transaction=True)
def test_adding_a_route_registers_it_and_checks_mx(
    as_user: AsUser, ops: User, server: Server, wired: InboundEndpoint, mx_zone: MxZone
) -> None:
    mx_zone.mx("parse.example.com", "mx.socketlabs.com")

    response = as_user(ops).post(
        reverse("reporting:route_add", args=[server.pk, wired.pk]), {"domain_or_address": "Parse.Example.com"}
    )

    assert response.status_code == 302
    route = InboundRoute.objects.get()
    assert (route.domain_or_address, route.mx_status) == ("parse.example.com", MxStatus.OK)
    registered = SandboxInboundEndpoint.objects.get()
    assert registered.domain_or_address == "parse.example.com"
    assert registered.url.endswith(wired.path)
    assert (registered.secret_key, registered.validation_key) == (wired.secret_key, wired.validation_key)
    assert route.socketlabs_id == str(registered.pk)
    assert AuditLog.objects.filter(action="reporting.inbound_route.add", target="parse.example.com").exists()


@pytest.mark.parametrize(
    ("setup", "status", "words"),
    [
        (lambda z: z.mx("parse.example.com", "mx.elsewhere.net"), MxStatus.WRONG, "mx.elsewhere.net"),
        (lambda z: None, MxStatus.MISSING, "does not exist"),
        (lambda z: z.exists("parse.example.com"), MxStatus.MISSING, "no MX record"),
        (lambda z: z.silent("parse.example.com"), MxStatus.ERROR, "retry later"),
    ],
)
def test_the_mx_check_tells_each_problem_apart(
    server: Server, inbound_endpoint: InboundEndpoint, mx_zone: MxZone, setup: Any, status: str, words: str
) -> None:
    setup(mx_zone)
    route = InboundRoute.objects.create(
        endpoint=inbound_endpoint, server=server, domain_or_address="support@parse.example.com"
    )

    routes.check_mx(route)

    route.refresh_from_db()
    assert route.mx_status == status
    assert words.lower() in route.mx_detail.lower()
    assert ("parse.example.com", "MX") in mx_zone.queries


@pytest.mark.django_db(transaction=True)
def test_removing_a_route_unregisters_it(
    as_user: AsUser, ops: User, server: Server, wired: InboundEndpoint, mx_zone: MxZone
) -> None:
    client = as_user(ops)
    client.post(reverse("reporting:route_add", args=[server.pk, wired.pk]), {"domain_or_address": "parse.example.com"})
    route = InboundRoute.objects.get()

    client.post(reverse("reporting:route_delete", args=[server.pk, wired.pk, route.pk]))

    assert not InboundRoute.objects.exists()
    assert not SandboxInboundEndpoint.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_rotating_the_secret_re_registers_every_route(
    as_user: AsUser, ops: User, server: Server, wired: InboundEndpoint, mx_zone: MxZone
) -> None:
    client = as_user(ops)
    for value in ("parse.example.com", "help@example.org"):
        client.post(reverse("reporting:route_add", args=[server.pk, wired.pk]), {"domain_or_address": value})

    client.post(reverse("reporting:endpoint_rotate", args=[server.pk, "inbound", wired.pk]))

    wired.refresh_from_db()
    registered = SandboxInboundEndpoint.objects.order_by("domain_or_address")
    assert [r.domain_or_address for r in registered] == ["help@example.org", "parse.example.com"]
    assert {r.secret_key for r in registered} == {wired.secret_key}
    assert sorted(InboundRoute.objects.values_list("socketlabs_id", flat=True)) == sorted(str(r.pk) for r in registered)


def test_a_duplicate_route_is_refused_with_a_reason(
    as_user: AsUser, ops: User, server: Server, inbound_endpoint: InboundEndpoint
) -> None:
    InboundRoute.objects.create(endpoint=inbound_endpoint, server=server, domain_or_address="parse.example.com")

    response = as_user(ops).post(
        reverse("reporting:route_add", args=[server.pk, inbound_endpoint.pk]),
        {"domain_or_address": "PARSE.example.com"},
        follow=True,
    )

    assert "parse.example.com already has a route on this server." in response.content.decode()
    assert InboundRoute.objects.count() == 1


def test_viewers_cannot_touch_routes(
    as_user: AsUser, viewer: User, server: Server, inbound_endpoint: InboundEndpoint
) -> None:
    route = InboundRoute.objects.create(endpoint=inbound_endpoint, server=server, domain_or_address="p.example.com")
    client = as_user(viewer)

    assert client.post(reverse("reporting:route_add", args=[server.pk, inbound_endpoint.pk])).status_code == 403
    assert (
        client.post(reverse("reporting:route_check", args=[server.pk, inbound_endpoint.pk, route.pk])).status_code
        == 403
    )
    assert (
        client.post(reverse("reporting:route_delete", args=[server.pk, inbound_endpoint.pk, route.pk])).status_code
        == 403
    )
    page = client.get(reverse("reporting:endpoint_detail", args=[server.pk, "inbound", inbound_endpoint.pk]))
    assert "p.example.com" in page.content.decode() and "Add route" not in page.content.decode()


# --- Nightly MX re-check ------------------------------------------------------------------------


def test_the_nightly_job_queues_every_route_by_ids_in_batches(
    server: Server, inbound_endpoint: InboundEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reporting.tasks import check_inbound_routes_mx, nightly_inbound_mx_checks

    made = [
        InboundRoute.objects.create(endpoint=inbound_endpoint, server=server, domain_or_address=f"p{n}.example.com")
        for n in range(3)
    ]
    monkeypatch.setattr(routes, "MX_BATCH", 2)
    queued: list[list[int]] = []
    monkeypatch.setattr(check_inbound_routes_mx, "delay", lambda ids: queued.append(ids))

    assert nightly_inbound_mx_checks.apply().get() == 3

    assert queued == [[made[0].pk, made[1].pk], [made[2].pk]]


def test_the_mx_task_stores_each_result_and_the_routes_page_shows_the_last_check(
    as_user: AsUser, viewer: User, server: Server, inbound_endpoint: InboundEndpoint, mx_zone: MxZone
) -> None:
    from reporting.tasks import check_inbound_routes_mx

    mx_zone.mx("good.example.com", "mx.socketlabs.com")
    mx_zone.mx("moved.example.com", "mx.elsewhere.net")
    good, moved, unchecked = (
        InboundRoute.objects.create(endpoint=inbound_endpoint, server=server, domain_or_address=value)
        for value in ("good.example.com", "help@moved.example.com", "later.example.com")
    )

    # A route deleted since the ids were queued is skipped, not an error.
    assert check_inbound_routes_mx.apply(args=[[good.pk, moved.pk, 999_999]]).get() == 2

    good.refresh_from_db()
    moved.refresh_from_db()
    unchecked.refresh_from_db()
    assert (good.mx_status, moved.mx_status, unchecked.mx_status) == (MxStatus.OK, MxStatus.WRONG, MxStatus.UNKNOWN)
    assert good.mx_checked_at is not None and moved.mx_checked_at is not None and unchecked.mx_checked_at is None
    page = as_user(viewer).get(reverse("reporting:endpoint_detail", args=[server.pk, "inbound", inbound_endpoint.pk]))
    cells = re.findall(r'<td data-testid="mx-checked">(.*?)</td>', page.content.decode(), re.S)
    assert len(cells) == 3
    checked = {route.domain_or_address: cell for route, cell in zip(InboundRoute.objects.all(), cells, strict=True)}
    assert checked["later.example.com"] == "never"
    assert good.mx_checked_at.strftime("%Y-%m-%d %H:%M") in checked["good.example.com"]
    assert "mx.elsewhere.net" in page.content.decode()


def test_the_check_inbound_mx_command_checks_every_route(
    server: Server, inbound_endpoint: InboundEndpoint, mx_zone: MxZone
) -> None:
    mx_zone.mx("good.example.com", "mx.socketlabs.com")
    InboundRoute.objects.create(endpoint=inbound_endpoint, server=server, domain_or_address="good.example.com")
    out = StringIO()

    call_command("check_inbound_mx", stdout=out)

    assert "good.example.com: MX points at SocketLabs." in out.getvalue()
    assert InboundRoute.objects.get().mx_status == MxStatus.OK
