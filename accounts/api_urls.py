from __future__ import annotations

from rest_framework.routers import SimpleRouter

from accounts.api import ServerViewSet, login_not_required_view

router = SimpleRouter()
router.register("servers", ServerViewSet, basename="api-server")

urlpatterns = router.urls
for _pattern in urlpatterns:
    _pattern.callback = login_not_required_view(_pattern.callback)  # type: ignore[union-attr,arg-type]
