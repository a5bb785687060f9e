"""API v2 (/sandbox/api/v2/…) and the Marketing API (/sandbox/marketing/v1/…), contract §0a.

Paths accept an optional trailing slash: SocketLabs clients in the wild use both
(`recipient-search/`, `contacts/unsubscribe/`), and a redirect would lose a POST body.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, re_path

from sandbox import api_common
from sandbox import marketing_views as m
from sandbox import v2_views as v

V2 = r"^api/v2/"
S = V2 + r"servers/(?P<server_id>[0-9]+)/"
END = r"/?$"
DOMAIN = r"(?P<domain>[^/]+)"
MK = r"^marketing/v1/"

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(V2 + r"servers" + END, v.servers, name="v2-servers"),
    re_path(S[:-1] + END, v.server_detail, name="v2-server"),
    re_path(S + r"api-keys" + END, v.api_keys, name="v2-api-keys"),
    re_path(S + r"api-keys/(?P<key_id>[0-9]+)" + END, v.api_key_detail, name="v2-api-key"),
    re_path(S + r"credentials/injection-api" + END, v.credentials, name="v2-credentials"),
    re_path(S + r"sending-domains" + END, v.sending_domains, name="v2-sending-domains"),
    re_path(S + r"sending-domains/" + DOMAIN + r"/verify" + END, v.sending_domain_verify, name="v2-sending-verify"),
    re_path(S + r"sending-domains/" + DOMAIN + END, v.sending_domain_detail, name="v2-sending-domain"),
    re_path(S + r"dkim/generate" + END, v.dkim_generate, name="v2-dkim-generate"),
    re_path(S + r"dkim" + END, v.dkim_keys, name="v2-dkim"),
    re_path(S + r"dkim/" + DOMAIN + END, v.dkim_detail, name="v2-dkim-domain"),
    re_path(S + r"bounce" + END, v.bounce_domains, name="v2-bounce"),
    re_path(S + r"bounce/" + DOMAIN + END, v.bounce_detail, name="v2-bounce-domain"),
    re_path(S + r"tracking" + END, v.tracking_domains, name="v2-tracking"),
    re_path(S + r"tracking/" + DOMAIN + END, v.tracking_detail, name="v2-tracking-domain"),
    re_path(S + r"suppressions" + END, v.suppressions, name="v2-suppressions"),
    re_path(S + r"suppressions/remove" + END, v.suppressions_remove, name="v2-suppressions-remove"),
    re_path(S + r"suppressions/search" + END, v.suppressions_search, name="v2-suppressions-search"),
    re_path(S + r"suppressions/download" + END, v.suppressions_download, name="v2-suppressions-download"),
    re_path(S + r"reports/messages/detail" + END, v.messages_detail, name="v2-messages-detail"),
    re_path(S + r"reports/recipient-search" + END, v.recipients, name="v2-recipient-search"),
    re_path(S + r"reports/(?P<kind>[a-z]+)/(?P<view>[a-z]+)" + END, v.reports_view, name="v2-report"),
    re_path(S + r"streamscore" + END, v.stream_score, name="v2-streamscore"),
    re_path(S + r"event-webhooks" + END, v.event_webhooks, name="v2-event-webhooks"),
    re_path(S + r"event-webhooks/(?P<item_id>[0-9]+)" + END, v.event_webhook_detail, name="v2-event-webhook"),
    re_path(S + r"inbound-parse" + END, v.inbound_parse, name="v2-inbound-parse"),
    re_path(S + r"inbound-parse/(?P<item_id>[0-9]+)" + END, v.inbound_parse_detail, name="v2-inbound-parse-item"),
    re_path(V2 + r"(?P<rest>.*)$", api_common.v2_not_found, name="v2-not-found"),
    # Marketing API
    re_path(MK + r"lists" + END, m.lists, name="mkt-lists"),
    re_path(
        MK + r"lists/(?P<list_id>[0-9]+)/contacts/(?P<contact_id>[0-9]+)" + END, m.list_contact, name="mkt-list-contact"
    ),
    re_path(MK + r"lists/(?P<list_id>[0-9]+)/contacts" + END, m.list_contacts, name="mkt-list-contacts"),
    re_path(MK + r"contacts/unsubscribe" + END, m.unsubscribe, name="mkt-unsubscribe"),
    re_path(MK + r"contacts/(?P<contact_id>[0-9]+)/customfields" + END, m.contact_fields, name="mkt-contact-fields"),
    re_path(MK + r"contacts/(?P<contact_id>[0-9]+)" + END, m.contact, name="mkt-contact"),
    re_path(MK + r"contacts" + END, m.contacts, name="mkt-contacts"),
    re_path(MK + r"customfields" + END, m.custom_fields, name="mkt-customfields"),
    re_path(MK + r"(?P<rest>.*)$", m.not_found_view, name="mkt-not-found"),
]
