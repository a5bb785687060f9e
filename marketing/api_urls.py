"""Mounted at /api/v1/servers/<server_id>/contacts/ (config/api_urls.py)."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from accounts.api import login_not_required_view
from marketing import api

router = SimpleRouter()
# Named prefixes first: the contacts themselves sit at the root of this mount, with numeric ids.
router.register("lists", api.ContactListViewSet, basename="api-contact-list")
router.register("segments", api.SegmentViewSet, basename="api-segment")
router.register("fields", api.CustomFieldViewSet, basename="api-custom-field")
router.register("", api.ContactViewSet, basename="api-contact")

urlpatterns = router.urls
# DRF authenticates inside the view (token or session), so the login middleware steps aside.
for _pattern in urlpatterns:
    _pattern.callback = login_not_required_view(_pattern.callback)  # type: ignore[union-attr,arg-type]
