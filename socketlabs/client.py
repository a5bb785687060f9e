"""`SocketLabsClient`: the Injection API, API v2 and the Marketing API behind one object.

    client = SocketLabsClient(server_id=12345, api_key="…", injection_key="…")
    client.get_server()
    client.inject(BasicMessage(from_address="shop@example.com", to=["a@example.net"], subject="Hi", text_body="…"))
    client.suppressions.check("a@example.net")
    for row in client.suppressions.iter_search(domain="example.net"): ...

Base URLs are configurable per client (scheme, host, port and path prefix), so the same client
talks to SocketLabs or to the sandbox (`http://127.0.0.1:PORT/sandbox/api/v2`).
Credentials are given when the client is built and never read from the environment.
"""

from __future__ import annotations

import builtins
import csv
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

import requests

from socketlabs import errors
from socketlabs.injection import InjectionResult, Message, build_request, parse_result
from socketlabs.models import (
    AggregateRow,
    ApiKey,
    BounceDomain,
    Contact,
    ContactList,
    CustomField,
    DkimRecord,
    EventWebhook,
    GroupBy,
    InboundParseEndpoint,
    InjectionCredentials,
    MessageDetail,
    Page,
    RecipientSearchRow,
    ReportEvent,
    ReportKind,
    ReportOverview,
    SendingDomain,
    ServerInfo,
    StreamScore,
    Suppression,
    TrackingDomain,
)
from socketlabs.parsing import as_int, build, ci_get
from socketlabs.paths import PATHS, Api
from socketlabs.transport import BreakerRegistry, Timeout, Transport, iter_text_lines

DEFAULT_INJECT_URL = "https://inject.socketlabs.com/api/v1/email"
DEFAULT_API_URL = "https://api.socketlabs.com/v2"
DEFAULT_MARKETING_URL = "https://api.socketlabs.com/marketing/v1"
DEFAULT_PAGE_SIZE = 100
MARKETING_PAGE_SIZE = 500  # the legacy API's maximum `count`

T = TypeVar("T")
DateLike = date | datetime | str


def _day(value: DateLike | None) -> str | None:
    """Query dates are `YYYY-MM-DD` (§8.4)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _items(data: Any, *names: str) -> list[Any]:
    """The list in an envelope (`data`, `collection`), or the answer itself when it is a bare list."""
    if isinstance(data, list):
        return data
    for name in names:
        value = ci_get(data, name)
        if isinstance(value, list):
            return value
        if isinstance(value, Mapping):
            return [value]
    return []


def _total(data: Any, name: str) -> int | None:
    try:
        return as_int(ci_get(data, name))
    except (TypeError, ValueError):
        return None


def _one(data: Any) -> Any:
    """The object in `{data: {...}}`, or a bare object."""
    if isinstance(data, Mapping):
        inner = ci_get(data, "data")
        if isinstance(inner, Mapping):
            return inner
        if inner is None and any(isinstance(k, str) and k.casefold() == "data" for k in data):
            return {}
        return data
    return {}


class SocketLabsClient:
    """One SocketLabs server, as seen through its API keys. See `socketlabs` for the retry rules."""

    def __init__(
        self,
        *,
        server_id: int,
        api_url: str | None = None,
        api_key: str = "",
        inject_url: str | None = None,
        injection_key: str = "",
        marketing_url: str | None = None,
        marketing_key: str = "",
        timeout: Timeout = (3.05, 30.0),
        session: requests.Session | None = None,
        max_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        breakers: BreakerRegistry | None = None,
    ) -> None:
        self.server_id = int(server_id)
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.inject_url = (inject_url or DEFAULT_INJECT_URL).rstrip("/")
        self.marketing_url = (marketing_url or DEFAULT_MARKETING_URL).rstrip("/")
        self._api_key = api_key or ""
        self._injection_key = injection_key or ""
        self._marketing_key = marketing_key or ""
        self.transport = Transport(
            timeout=timeout,
            session=session,
            max_attempts=max_attempts,
            sleep=sleep,
            clock=clock,
            rng=rng,
            breakers=breakers,
        )
        self.servers = ServersApi(self)
        self.api_keys = ApiKeysApi(self)
        self.sending_domains = SendingDomainsApi(self)
        self.dkim = DkimApi(self)
        self.bounce_domains = BounceDomainsApi(self)
        self.tracking_domains = TrackingDomainsApi(self)
        self.suppressions = SuppressionsApi(self)
        self.reports = ReportsApi(self)
        self.event_webhooks = EventWebhooksApi(self)
        self.inbound_parse = InboundParseApi(self)
        self.marketing = MarketingApi(self)

    def __repr__(self) -> str:  # no keys in logs
        return f"SocketLabsClient(server_id={self.server_id}, api_url={self.api_url!r})"

    @property
    def timeout(self) -> Timeout:
        return self.transport.timeout

    @property
    def session(self) -> requests.Session:
        return self.transport.session

    # --- plumbing -----------------------------------------------------------------------------
    def _call(
        self,
        name: str,
        *,
        path: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        stream: bool = False,
    ) -> Any:
        endpoint = PATHS[name]
        headers: dict[str, str] = {}
        auth: tuple[str, str] | None = None
        path_params = {"serverId": self.server_id, **(path or {})}
        if endpoint.api is Api.V2:
            if not self._api_key:
                raise errors.ConfigurationError(f"No API v2 key is configured for server {self.server_id}.")
            headers["Authorization"] = f"Bearer {self._api_key}"
            base, api_name = self.api_url, "the SocketLabs API"
        elif endpoint.api is Api.MARKETING:
            if not self._marketing_key:
                raise errors.ConfigurationError(f"No Marketing API key is configured for server {self.server_id}.")
            auth = (str(self.server_id), self._marketing_key)
            base, api_name = self.marketing_url, "the SocketLabs Marketing API"
        else:  # pragma: no cover - injection goes through inject()
            raise ValueError(f"{name} is not a v2 or marketing endpoint")
        return self.transport.call(
            endpoint,
            base_url=base,
            server_id=self.server_id,
            path_params=path_params,
            params=params,
            body=body,
            headers=headers,
            auth=auth,
            api_name=api_name,
            stream=stream,
        )

    def _data(self, name: str, **kwargs: Any) -> Any:
        return self._call(name, **kwargs).data

    def _page(
        self, name: str, cls: type[T], *, params: Mapping[str, Any], path: Mapping[str, Any] | None = None
    ) -> Page[T]:
        data = self._data(name, params=params, path=path)
        return Page(
            items=tuple(build(cls, item) for item in _items(data, "data")),
            total=_total(data, "total"),
            page_number=params.get("pageNumber"),
            page_size=params.get("pageSize"),
        )

    def _iter_pages(
        self,
        name: str,
        cls: type[T],
        *,
        params: Mapping[str, Any],
        path: Mapping[str, Any] | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[T]:
        """v2 paging: `pageNumber` from 0 with `pageSize`, until `total` items came (or a page is short)."""
        page_number = 0
        seen = 0
        while True:
            page = self._page(name, cls, params={**params, "pageNumber": page_number, "pageSize": page_size}, path=path)
            yield from page.items
            seen += len(page.items)
            if not page.items:
                return
            if page.total is not None:
                if seen >= page.total:
                    return
            elif len(page.items) < page_size:
                return
            page_number += 1

    def _list(self, name: str, cls: type[T], *, params: Mapping[str, Any] | None = None) -> list[T]:
        return [build(cls, item) for item in _items(self._data(name, params=params), "data")]

    def _object(self, name: str, cls: type[T], **kwargs: Any) -> T:
        return build(cls, _one(self._data(name, **kwargs)))

    # --- Injection API ------------------------------------------------------------------------
    def inject(self, messages: Message | Sequence[Message], *, inject_url: str | None = None) -> InjectionResult:
        """Send one or several messages in one request.

        Returns the parsed result (business codes such as `OverQuota` or `InvalidAddress` are
        results, not exceptions). Raises `OutcomeUnknownError` — after exactly one call — when
        the request may have reached SocketLabs but no usable answer came back. `inject_url`
        overrides the endpoint for this call (a Complex Sender `gateway`).
        """
        if not self._injection_key:
            raise errors.ConfigurationError(f"No Injection API key is configured for server {self.server_id}.")
        batch = [messages] if not isinstance(messages, Sequence) else list(messages)
        body, headers = build_request(server_id=self.server_id, api_key=self._injection_key, messages=batch)
        response = self.transport.call(
            PATHS["inject"],
            base_url=(inject_url or self.inject_url).rstrip("/"),
            server_id=self.server_id,
            body=body,
            headers=headers,
            api_name="the SocketLabs Injection API",
        )
        return parse_result(response.data)

    # --- API v2: the server itself --------------------------------------------------------------
    def get_server(self) -> ServerInfo:
        """This server's id, name, account and status (GET /servers/{id})."""
        info = self.servers.get(self.server_id)
        if not info.server_id:
            return ServerInfo(
                server_id=self.server_id,
                name=info.name,
                account_id=info.account_id,
                status=info.status,
                extra=info.extra,
            )
        return info

    def injection_credentials(self) -> InjectionCredentials:
        """The server's Injection API key and gateway URL (GET …/credentials/injection-api)."""
        return self._object("credentials.injection", InjectionCredentials)

    def streamscore(self, *, start_date: DateLike | None = None, end_date: DateLike | None = None) -> StreamScore:
        return self._object(
            "streamscore.get", StreamScore, params={"startDate": _day(start_date), "endDate": _day(end_date)}
        )


class _Group:
    def __init__(self, client: SocketLabsClient) -> None:
        self._client = client


class ServersApi(_Group):
    def list(self) -> builtins.list[ServerInfo]:
        return self._client._list("servers.list", ServerInfo)

    def get(self, server_id: int | None = None) -> ServerInfo:
        sid = self._client.server_id if server_id is None else server_id
        return self._client._object("servers.get", ServerInfo, path={"serverId": sid})


class ApiKeysApi(_Group):
    def list(self) -> builtins.list[ApiKey]:
        return self._client._list("api_keys.list", ApiKey)

    def create(self, *, name: str, permissions: Sequence[str]) -> ApiKey:
        """Create a key; the answer's `secret` is the whole key, shown this once only."""
        body = {"name": name, "permissions": [str(p) for p in permissions]}
        return self._client._object("api_keys.create", ApiKey, body=body)

    def delete(self, key_id: str | int) -> None:
        self._client._call("api_keys.delete", path={"keyId": key_id})


class SendingDomainsApi(_Group):
    def list(self) -> builtins.list[SendingDomain]:
        return self._client._list("sending_domains.list", SendingDomain)

    def add(self, domain: str) -> SendingDomain:
        return self._client._object("sending_domains.add", SendingDomain, body={"domain": domain})

    def get(self, domain: str) -> SendingDomain:
        return self._client._object("sending_domains.get", SendingDomain, path={"domain": domain})

    def delete(self, domain: str) -> None:
        self._client._call("sending_domains.delete", path={"domain": domain})

    def verify(self, domain: str) -> SendingDomain:
        return self._client._object("sending_domains.verify", SendingDomain, path={"domain": domain})


class DkimApi(_Group):
    def generate(self, *, domain: str, selector: str) -> DkimRecord:
        """A new key pair and its DNS record; `private_key` is only ever returned here."""
        return self._client._object("dkim.generate", DkimRecord, params={"domain": domain, "selector": selector})

    def list(self, *, domain: str | None = None, selector: str | None = None) -> builtins.list[DkimRecord]:
        return self._client._list("dkim.list", DkimRecord, params={"domain": domain, "selector": selector})

    def add(self, *, domain: str, selector: str, private_key: str) -> DkimRecord:
        body = {"domain": domain, "selector": selector, "privateKey": private_key}
        return self._client._object("dkim.add", DkimRecord, body=body)

    def update(self, *, domain: str, selector: str, private_key: str) -> DkimRecord:
        body = {"domain": domain, "selector": selector, "privateKey": private_key}
        return self._client._object("dkim.update", DkimRecord, path={"domain": domain}, body=body)

    def delete(self, *, domain: str, selector: str) -> None:
        self._client._call("dkim.delete", path={"domain": domain}, params={"selector": selector})


class BounceDomainsApi(_Group):
    def list(self) -> builtins.list[BounceDomain]:
        return self._client._list("bounce_domains.list", BounceDomain)

    def add(self, domain: str, *, is_default: bool = False) -> BounceDomain:
        return self._client._object(
            "bounce_domains.add", BounceDomain, body={"domain": domain, "isDefault": is_default}
        )

    def update(self, domain: str, *, is_default: bool) -> BounceDomain:
        body = {"domain": domain, "isDefault": is_default}
        return self._client._object("bounce_domains.update", BounceDomain, path={"domain": domain}, body=body)

    def delete(self, domain: str) -> None:
        self._client._call("bounce_domains.delete", path={"domain": domain})


_TRACKING_FIELDS = {
    "opens_enabled": "opensEnabled",
    "clicks_enabled": "clicksEnabled",
    "unsubscribes_enabled": "unsubscribesEnabled",
    "automatic_tracking_enabled": "automaticTrackingEnabled",
    "google_analytics_enabled": "googleAnalyticsEnabled",
    "https_enabled": "httpsEnabled",
    "is_default": "isDefault",
}


def _tracking_body(domain: str, settings: Mapping[str, bool | None]) -> dict[str, Any]:
    unknown = set(settings) - set(_TRACKING_FIELDS)
    if unknown:
        raise TypeError(f"unknown tracking setting(s): {', '.join(sorted(unknown))}")
    body: dict[str, Any] = {"domain": domain}
    body.update({_TRACKING_FIELDS[k]: v for k, v in settings.items() if v is not None})
    return body


class TrackingDomainsApi(_Group):
    """Engagement-tracking domains; settings are the T1 fields as keyword arguments (opens_enabled=…)."""

    def list(self) -> builtins.list[TrackingDomain]:
        return self._client._list("tracking_domains.list", TrackingDomain)

    def add(self, domain: str, **settings: bool | None) -> TrackingDomain:
        return self._client._object("tracking_domains.add", TrackingDomain, body=_tracking_body(domain, settings))

    def update(self, domain: str, **settings: bool | None) -> TrackingDomain:
        return self._client._object(
            "tracking_domains.update", TrackingDomain, path={"domain": domain}, body=_tracking_body(domain, settings)
        )

    def delete(self, domain: str) -> None:
        self._client._call("tracking_domains.delete", path={"domain": domain})


class SuppressionsApi(_Group):
    def check(self, email_address: str) -> Suppression | None:
        """S1: the entry for this address, or None when it is not suppressed (404)."""
        try:
            return self._client._object("suppressions.check", Suppression, params={"emailAddress": email_address})
        except errors.NotFoundError:
            return None

    def add(self, email_address: str, *, reason: str | None = None) -> Suppression:
        """S2: the address goes in the query (as documented) and in the JSON body (with the reason)."""
        body: dict[str, Any] = {"emailAddress": email_address}
        if reason:
            body["reason"] = str(reason)
        return self._client._object("suppressions.add", Suppression, params={"emailAddress": email_address}, body=body)

    def remove(self, email_address: str) -> None:
        """S3: raises NotFoundError when the address is not on the list."""
        self._client._call("suppressions.remove", params={"emailAddress": email_address})

    @staticmethod
    def _filters(
        email_address: str | None,
        domain: str | None,
        reason: str | None,
        start_date: DateLike | None,
        end_date: DateLike | None,
        sort_field: str | None,
        sort_direction: str | None,
    ) -> dict[str, Any]:
        return {
            "emailAddress": email_address,
            "domain": domain,
            "reason": str(reason) if reason else None,
            "startDate": _day(start_date),
            "endDate": _day(end_date),
            "sortField": sort_field,
            "sortDirection": sort_direction,
        }

    def search(
        self,
        *,
        email_address: str | None = None,
        domain: str | None = None,
        reason: str | None = None,
        start_date: DateLike | None = None,
        end_date: DateLike | None = None,
        sort_field: str | None = None,
        sort_direction: str | None = None,
        page_number: int = 0,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Page[Suppression]:
        """S4, one page. `email_address` matches as a prefix."""
        params = self._filters(email_address, domain, reason, start_date, end_date, sort_field, sort_direction)
        params.update(pageNumber=page_number, pageSize=page_size)
        return self._client._page("suppressions.search", Suppression, params=params)

    def iter_search(
        self,
        *,
        email_address: str | None = None,
        domain: str | None = None,
        reason: str | None = None,
        start_date: DateLike | None = None,
        end_date: DateLike | None = None,
        sort_field: str | None = None,
        sort_direction: str | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[Suppression]:
        """S4, every page in turn."""
        params = self._filters(email_address, domain, reason, start_date, end_date, sort_field, sort_direction)
        return self._client._iter_pages("suppressions.search", Suppression, params=params, page_size=page_size)

    def download(
        self, *, sort_field: str | None = "suppressionLastUpdate", sort_direction: str | None = "dsc"
    ) -> Iterator[list[str]]:
        """S5: the CSV export, row by row (header row first), read from the network as it is consumed.

        The request is made now, so a 401/404 raises here; the rows are only read from the
        connection as the iterator is consumed. Exhaust or `close()` the iterator to free it.
        """
        response = self._client._call(
            "suppressions.download", params={"sortField": sort_field, "sortDirection": sort_direction}, stream=True
        )
        return _csv_rows(response)


def _csv_rows(response: requests.Response) -> Iterator[list[str]]:
    for row in csv.reader(iter_text_lines(response)):
        if row:  # a blank line is not a record
            yield row


class ReportsApi(_Group):
    """Delivered / failed / complaints / tracking reports as overview, aggregate or list; R1; R2; StreamScore."""

    @staticmethod
    def _range(
        start_date: DateLike | None, end_date: DateLike | None, tracking_type: str | None = None
    ) -> dict[str, Any]:
        """Dates as YYYY-MM-DD; `trackingType` (Open | Click | Unsubscribe) narrows tracking reports."""
        return {"startDate": _day(start_date), "endDate": _day(end_date), "trackingType": tracking_type}

    def overview(
        self,
        kind: ReportKind | str,
        *,
        start_date: DateLike | None = None,
        end_date: DateLike | None = None,
        tracking_type: str | None = None,
    ) -> ReportOverview:
        return self._client._object(
            "reports.events",
            ReportOverview,
            path={"kind": ReportKind(kind), "view": "overview"},
            params=self._range(start_date, end_date, tracking_type),
        )

    def aggregate(
        self,
        kind: ReportKind | str,
        *,
        group_by: GroupBy | str = GroupBy.DAY,
        start_date: DateLike | None = None,
        end_date: DateLike | None = None,
        tracking_type: str | None = None,
    ) -> builtins.list[AggregateRow]:
        params = {**self._range(start_date, end_date, tracking_type), "groupBy": str(GroupBy(group_by))}
        data = self._client._data("reports.events", path={"kind": ReportKind(kind), "view": "aggregate"}, params=params)
        return [build(AggregateRow, item) for item in _items(data, "data")]

    def list(
        self,
        kind: ReportKind | str,
        *,
        start_date: DateLike | None = None,
        end_date: DateLike | None = None,
        page_number: int = 0,
        page_size: int = DEFAULT_PAGE_SIZE,
        sort_field: str | None = None,
        sort_direction: str | None = None,
        tracking_type: str | None = None,
    ) -> Page[ReportEvent]:
        params = {
            **self._range(start_date, end_date, tracking_type),
            "sortField": sort_field,
            "sortDirection": sort_direction,
            "pageNumber": page_number,
            "pageSize": page_size,
        }
        path = {"kind": ReportKind(kind), "view": "list"}
        return self._client._page("reports.events", ReportEvent, params=params, path=path)

    def iter_list(
        self,
        kind: ReportKind | str,
        *,
        start_date: DateLike | None = None,
        end_date: DateLike | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
        sort_field: str | None = None,
        sort_direction: str | None = None,
        tracking_type: str | None = None,
    ) -> Iterator[ReportEvent]:
        params = {
            **self._range(start_date, end_date, tracking_type),
            "sortField": sort_field,
            "sortDirection": sort_direction,
        }
        path = {"kind": ReportKind(kind), "view": "list"}
        return self._client._iter_pages("reports.events", ReportEvent, params=params, path=path, page_size=page_size)

    def message_detail(
        self,
        *,
        start_date: DateLike | None = None,
        end_date: DateLike | None = None,
        filters: str | Mapping[str, str] | None = None,
        sort_field: str | None = None,
        sort_direction: str | None = None,
        page_number: int = 0,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Page[MessageDetail]:
        """R1. `filters` goes as given, or a mapping becomes `field:value,field:value`.

        The real syntax is unpublished; the sandbox reads `mailingId:spring,to:ann@example.net`.
        """
        if isinstance(filters, Mapping):
            filters = ",".join(f"{k}:{v}" for k, v in filters.items())
        params = {
            **self._range(start_date, end_date),
            "filters": filters or None,
            "sortField": sort_field,
            "sortDirection": sort_direction,
            "pageNumber": page_number,
            "pageSize": page_size,
        }
        return self._client._page("reports.message_detail", MessageDetail, params=params)

    def recipient_search(
        self,
        to_email_address: str,
        *,
        start_date: DateLike | None = None,
        end_date: DateLike | None = None,
        sort_field: str | None = "queuedTime",
        sort_direction: str | None = "dsc",
        page_number: int = 0,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Page[RecipientSearchRow]:
        """R2: the messages sent to one address."""
        params = {
            "toEmailAddress": to_email_address,
            **self._range(start_date, end_date),
            "sortField": sort_field,
            "sortDirection": sort_direction,
            "pageNumber": page_number,
            "pageSize": page_size,
        }
        return self._client._page("reports.recipient_search", RecipientSearchRow, params=params)

    def iter_recipient_search(
        self,
        to_email_address: str,
        *,
        start_date: DateLike | None = None,
        end_date: DateLike | None = None,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> Iterator[RecipientSearchRow]:
        params = {
            "toEmailAddress": to_email_address,
            **self._range(start_date, end_date),
            "sortField": "queuedTime",
            "sortDirection": "dsc",
        }
        return self._client._iter_pages(
            "reports.recipient_search", RecipientSearchRow, params=params, page_size=page_size
        )

    def streamscore(self, *, start_date: DateLike | None = None, end_date: DateLike | None = None) -> StreamScore:
        return self._client.streamscore(start_date=start_date, end_date=end_date)


class EventWebhooksApi(_Group):
    def list(self) -> builtins.list[EventWebhook]:
        return self._client._list("event_webhooks.list", EventWebhook)

    def create(self, *, url: str, secret_key: str, events: Sequence[str], format: str = "json") -> EventWebhook:  # noqa: A002
        body = {"url": url, "secretKey": secret_key, "events": [str(e) for e in events], "format": format}
        return self._client._object("event_webhooks.create", EventWebhook, body=body)

    def delete(self, webhook_id: str | int) -> None:
        self._client._call("event_webhooks.delete", path={"id": webhook_id})


class InboundParseApi(_Group):
    def list(self) -> builtins.list[InboundParseEndpoint]:
        return self._client._list("inbound_parse.list", InboundParseEndpoint)

    def create(self, *, domain_or_address: str, url: str, secret_key: str, validation_key: str) -> InboundParseEndpoint:
        body = {
            "domainOrAddress": domain_or_address,
            "url": url,
            "secretKey": secret_key,
            "validationKey": validation_key,
        }
        return self._client._object("inbound_parse.create", InboundParseEndpoint, body=body)

    def delete(self, endpoint_id: str | int) -> None:
        self._client._call("inbound_parse.delete", path={"id": endpoint_id})


# --- Marketing API ---------------------------------------------------------------------------------
class MarketingApi(_Group):
    """Basic auth (ServerId : marketing key).

    List answers come in `{timestamp, totalCount, totalPages, count, collection}`.
    """

    def __init__(self, client: SocketLabsClient) -> None:
        super().__init__(client)
        self.lists = MarketingListsApi(client)
        self.contacts = MarketingContactsApi(client)
        self.custom_fields = MarketingCustomFieldsApi(client)

    def _page(self, name: str, cls: type[T], *, index: int, count: int) -> Page[T]:
        data = self._client._data(name, params={"index": index, "count": count})
        return Page(
            items=tuple(build(cls, item) for item in _items(data, "collection", "data")),
            total=_total(data, "totalCount"),
            index=index,
            page_size=count,
        )

    def _iter(self, name: str, cls: type[T], *, count: int) -> Iterator[T]:
        """Legacy paging: `index` is a record offset; advance by what came until `totalCount`."""
        index = 0
        while True:
            page = self._page(name, cls, index=index, count=count)
            yield from page.items
            index += len(page.items)
            if not page.items:
                return
            if page.total is not None:
                if index >= page.total:
                    return
            elif len(page.items) < count:
                return


class MarketingListsApi(_Group):
    def list(self, *, index: int = 0, count: int = MARKETING_PAGE_SIZE) -> Page[ContactList]:
        return self._client.marketing._page("marketing.lists.list", ContactList, index=index, count=count)

    def iter_all(self, *, count: int = MARKETING_PAGE_SIZE) -> Iterator[ContactList]:
        return self._client.marketing._iter("marketing.lists.list", ContactList, count=count)

    def add_contact(
        self, list_id: int, *, email_address: str, first_name: str | None = None, last_name: str | None = None
    ) -> Contact | None:
        """Add by address, creating the contact when new (names are ignored for an existing one)."""
        body = {"emailAddress": email_address, "firstName": first_name, "lastName": last_name}
        data = self._client._data(
            "marketing.lists.add_contact",
            path={"listId": list_id},
            body={k: v for k, v in body.items() if v is not None},
        )
        return build(Contact, _one(data)) if isinstance(data, Mapping) and data else None

    def add_existing_contact(self, list_id: int, contact_id: int) -> None:
        self._client._call("marketing.lists.add_existing_contact", path={"listId": list_id, "contactId": contact_id})

    def remove_contact(self, list_id: int, *, email_address: str) -> None:
        self._client._call(
            "marketing.lists.remove_contact", path={"listId": list_id}, params={"emailAddress": email_address}
        )


class MarketingContactsApi(_Group):
    def list(self, *, index: int = 0, count: int = MARKETING_PAGE_SIZE) -> Page[Contact]:
        return self._client.marketing._page("marketing.contacts.list", Contact, index=index, count=count)

    def iter_all(self, *, count: int = MARKETING_PAGE_SIZE) -> Iterator[Contact]:
        return self._client.marketing._iter("marketing.contacts.list", Contact, count=count)

    def get(self, contact_id: int) -> Contact:
        return self._client._object("marketing.contacts.get", Contact, path={"contactId": contact_id})

    def update(
        self,
        contact_id: int,
        *,
        email_address: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> Contact | None:
        body = {"emailAddress": email_address, "firstName": first_name, "lastName": last_name}
        data = self._client._data(
            "marketing.contacts.update",
            path={"contactId": contact_id},
            body={k: v for k, v in body.items() if v is not None},
        )
        return build(Contact, _one(data)) if isinstance(data, Mapping) and data else None

    def delete(self, contact_id: int) -> None:
        self._client._call("marketing.contacts.delete", path={"contactId": contact_id})

    def unsubscribe(self, email_address: str) -> None:
        self._client._call("marketing.contacts.unsubscribe", body={"emailAddress": email_address})

    def set_custom_fields(self, contact_id: int, values: Mapping[str, str | None]) -> None:
        body = [{"name": name, "value": value} for name, value in values.items()]
        self._client._call("marketing.contacts.set_custom_fields", path={"contactId": contact_id}, body=body)


class MarketingCustomFieldsApi(_Group):
    def list(self) -> builtins.list[CustomField]:
        data = self._client._data("marketing.custom_fields.list")
        return [build(CustomField, item) for item in _items(data, "collection", "data")]
