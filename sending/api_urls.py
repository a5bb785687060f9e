"""REST routes for sending setup; included under /api/v1/ by config/api_urls.py."""

from __future__ import annotations

from django.urls import URLPattern, path

from accounts.api import login_not_required_view
from sending import api, send_api

_S = "servers/<int:server_id>/sending/"

urlpatterns: list[URLPattern] = [
    path(_S + "api-keys/", api.api_keys, name="api-sending-api-keys"),
    path(_S + "api-keys/<str:key_id>/", api.api_key_detail, name="api-sending-api-key"),
    path(_S + "domains/", api.domains, name="api-sending-domains"),
    path(_S + "domains/<str:domain>/", api.domain_detail, name="api-sending-domain"),
    path(_S + "domains/<str:domain>/verify/", api.domain_verify, name="api-sending-domain-verify"),
    path(_S + "dkim/", api.dkim_keys, name="api-sending-dkim"),
    path(_S + "dkim/setups/", api.dkim_setups, name="api-sending-dkim-setups"),
    path(_S + "dkim/setups/<int:setup_id>/", api.dkim_setup_detail, name="api-sending-dkim-setup"),
    path(_S + "dkim/setups/<int:setup_id>/verify/", api.dkim_verify, name="api-sending-dkim-verify"),
    path(_S + "dkim/setups/<int:setup_id>/switch/", api.dkim_switch, name="api-sending-dkim-switch"),
    path(_S + "dkim/setups/<int:setup_id>/finish/", api.dkim_finish, name="api-sending-dkim-finish"),
    path(_S + "dkim/rotations/", api.dkim_rotations, name="api-sending-dkim-rotations"),
    path(_S + "dkim/<str:domain>/<str:selector>/", api.dkim_key_detail, name="api-sending-dkim-key"),
    path(_S + "bounce-domains/", api.bounce_domains, name="api-sending-bounce-domains"),
    path(_S + "bounce-domains/<str:domain>/", api.bounce_domain_detail, name="api-sending-bounce-domain"),
    path(_S + "tracking-domains/", api.tracking_domains, name="api-sending-tracking-domains"),
    path(_S + "tracking-domains/<str:domain>/", api.tracking_domain_detail, name="api-sending-tracking-domain"),
    path(_S + "dns/", api.dns_results, name="api-sending-dns"),
    path(_S + "dns/check/", api.dns_check, name="api-sending-dns-check"),
    path(_S + "dns/jobs/", api.dns_jobs, name="api-sending-dns-jobs"),
    path(_S + "dns/jobs/<uuid:job_id>/", api.dns_job_detail, name="api-sending-dns-job"),
    path("sending/dns/", api.dns_health_all, name="api-sending-dns-all"),
]
for _pattern in urlpatterns:
    _pattern.callback = login_not_required_view(_pattern.callback)  # type: ignore[arg-type]

# Bulk sends (sending/send_api.py).
_SENDS = "servers/<int:server_id>/sends/"
_send_patterns: list[URLPattern] = [
    path(_SENDS, send_api.sends, name="api-sends"),
    path(_SENDS + "<int:send_id>/", send_api.send_detail, name="api-send"),
    path(_SENDS + "<int:send_id>/recipients/", send_api.send_recipients, name="api-send-recipients"),
    path(_SENDS + "<int:send_id>/results/", send_api.send_results, name="api-send-results"),
    path(_SENDS + "<int:send_id>/<str:action>/", send_api.send_action, name="api-send-action"),
]
for _pattern in _send_patterns:
    _pattern.callback = login_not_required_view(_pattern.callback)  # type: ignore[arg-type]
urlpatterns += _send_patterns
