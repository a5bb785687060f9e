"""Every path the client calls, in one table (contract: shared/socketlabs-api.md §0a, §2, §3, §7).

A correction to a path is a one-line change here. Templates use `{name}` placeholders; the
values are URL-quoted when filled in. Each path is relative to one API base URL:

* `INJECT`    — the Injection API endpoint itself (`…/api/v1/email`, or a `gateway` URL),
* `V2`        — the SocketLabs API v2 (`…/v2`),
* `MARKETING` — the Marketing API (`…/marketing/v1`).

`idempotent` says whether the call may be re-sent after it may have reached the server
(a read timeout, a dropped connection, a 5xx). GET, PUT and DELETE are; most POSTs are not.
`outcome_unknown` marks the injection POST: when it may have reached the server and no
usable answer came back, the client raises `OutcomeUnknownError` instead of retrying.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import quote


class Api(enum.StrEnum):
    INJECT = "inject"
    V2 = "v2"
    MARKETING = "marketing"


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    template: str
    api: Api
    idempotent: bool
    outcome_unknown: bool = False

    def path(self, **params: object) -> str:
        """The template with its placeholders filled in (each value quoted as one path segment)."""
        try:
            return self.template.format(**{k: quote(str(v), safe="") for k, v in params.items()})
        except KeyError as exc:
            raise ValueError(f"{self.name}: missing path parameter {exc.args[0]!r}") from None


def _e(name: str, method: str, template: str, api: Api, *, idempotent: bool | None = None, **kw: bool) -> Endpoint:
    if idempotent is None:
        idempotent = method in {"GET", "PUT", "DELETE", "HEAD"}
    return Endpoint(name, method, template, api, idempotent, **kw)


_S = "/servers/{serverId}"
_ENDPOINTS = [
    # --- Injection API (§2) ---------------------------------------------------------------
    _e("inject", "POST", "", Api.INJECT, outcome_unknown=True),
    # --- API v2 (§0a table, §3.2) -----------------------------------------------------------
    _e("servers.list", "GET", "/servers", Api.V2),
    _e("servers.get", "GET", _S, Api.V2),
    _e("api_keys.list", "GET", _S + "/api-keys", Api.V2),
    _e("api_keys.create", "POST", _S + "/api-keys", Api.V2),
    _e("api_keys.delete", "DELETE", _S + "/api-keys/{keyId}", Api.V2),
    _e("credentials.injection", "GET", _S + "/credentials/injection-api", Api.V2),
    _e("sending_domains.list", "GET", _S + "/sending-domains", Api.V2),
    _e("sending_domains.add", "POST", _S + "/sending-domains", Api.V2),
    _e("sending_domains.get", "GET", _S + "/sending-domains/{domain}", Api.V2),
    _e("sending_domains.delete", "DELETE", _S + "/sending-domains/{domain}", Api.V2),
    # Verifying twice is harmless: it only re-reads DNS.
    _e("sending_domains.verify", "POST", _S + "/sending-domains/{domain}/verify", Api.V2, idempotent=True),
    _e("dkim.generate", "GET", _S + "/dkim/generate", Api.V2),
    _e("dkim.list", "GET", _S + "/dkim", Api.V2),
    _e("dkim.add", "POST", _S + "/dkim", Api.V2),
    _e("dkim.update", "PUT", _S + "/dkim/{domain}", Api.V2),
    _e("dkim.delete", "DELETE", _S + "/dkim/{domain}", Api.V2),
    _e("bounce_domains.list", "GET", _S + "/bounce", Api.V2),
    _e("bounce_domains.add", "POST", _S + "/bounce", Api.V2),
    _e("bounce_domains.update", "PUT", _S + "/bounce/{domain}", Api.V2),
    _e("bounce_domains.delete", "DELETE", _S + "/bounce/{domain}", Api.V2),
    _e("tracking_domains.list", "GET", _S + "/tracking", Api.V2),
    _e("tracking_domains.add", "POST", _S + "/tracking", Api.V2),
    _e("tracking_domains.update", "PUT", _S + "/tracking/{domain}", Api.V2),
    _e("tracking_domains.delete", "DELETE", _S + "/tracking/{domain}", Api.V2),
    _e("suppressions.check", "GET", _S + "/suppressions", Api.V2),  # S1
    _e("suppressions.add", "POST", _S + "/suppressions", Api.V2),  # S2
    _e("suppressions.remove", "DELETE", _S + "/suppressions/remove", Api.V2),  # S3
    _e("suppressions.search", "GET", _S + "/suppressions/search", Api.V2),  # S4
    _e("suppressions.download", "GET", _S + "/suppressions/download", Api.V2),  # S5
    # {kind}: delivered | failed | complaints | tracking; {view}: overview | aggregate | list
    _e("reports.events", "GET", _S + "/reports/{kind}/{view}", Api.V2),
    _e("reports.message_detail", "GET", _S + "/reports/messages/detail", Api.V2),  # R1
    _e("reports.recipient_search", "GET", _S + "/reports/recipient-search/", Api.V2),  # R2
    _e("streamscore.get", "GET", _S + "/streamscore", Api.V2),
    _e("event_webhooks.list", "GET", _S + "/event-webhooks", Api.V2),
    _e("event_webhooks.create", "POST", _S + "/event-webhooks", Api.V2),
    _e("event_webhooks.delete", "DELETE", _S + "/event-webhooks/{id}", Api.V2),
    _e("inbound_parse.list", "GET", _S + "/inbound-parse", Api.V2),
    _e("inbound_parse.create", "POST", _S + "/inbound-parse", Api.V2),
    _e("inbound_parse.delete", "DELETE", _S + "/inbound-parse/{id}", Api.V2),
    # --- Marketing API (§7, §0a) -------------------------------------------------------------
    _e("marketing.lists.list", "GET", "/lists", Api.MARKETING),
    _e("marketing.lists.add_contact", "PUT", "/lists/{listId}/contacts", Api.MARKETING),
    _e("marketing.lists.add_existing_contact", "PUT", "/lists/{listId}/contacts/{contactId}", Api.MARKETING),
    _e("marketing.lists.remove_contact", "DELETE", "/lists/{listId}/contacts/", Api.MARKETING),
    # Unsubscribing twice leaves the same state, so a re-send is harmless.
    _e("marketing.contacts.unsubscribe", "POST", "/contacts/unsubscribe/", Api.MARKETING, idempotent=True),
    _e("marketing.contacts.list", "GET", "/contacts", Api.MARKETING),
    _e("marketing.contacts.get", "GET", "/contacts/{contactId}", Api.MARKETING),
    _e("marketing.contacts.update", "PUT", "/contacts/{contactId}", Api.MARKETING),
    _e("marketing.contacts.delete", "DELETE", "/contacts/{contactId}", Api.MARKETING),
    _e("marketing.custom_fields.list", "GET", "/customfields", Api.MARKETING),
    _e("marketing.contacts.set_custom_fields", "PUT", "/contacts/{contactId}/customfields", Api.MARKETING),
]

PATHS: dict[str, Endpoint] = {endpoint.name: endpoint for endpoint in _ENDPOINTS}
assert len(PATHS) == len(_ENDPOINTS), "duplicate endpoint name in socketlabs/paths.py"
