"""R10/R11: every route in the URLconf is classified, and every class behaves as promised.

The sweep walks `django.urls.get_resolver()` (included URLconfs too), fills each route's
arguments with dummy values (a real server id for `server_id`) and requests it.

How routes are classified (by prefix and by the view's `login_required` flag, never by a list
of today's views, so routes added later are covered automatically):

* **page**: any view that needs login (the default under LoginRequiredMiddleware). Anonymous
  GET and POST → 302 to the sign-in page.
* **api**: a `login_not_required` view under `/api/` (DRF authenticates itself). Anonymous → 401.
  The only login-required pages under `/api/` are listed in API_PAGES.
* **hook**: anything under `/hooks/` (SocketLabs pushes, secret in the body). Never a redirect
  to the sign-in page, never a 5xx.
* **sandbox**: a `login_not_required` view under `/sandbox/` (the fake SocketLabs, its own API
  keys). Anonymous → a JSON 401/404 (or 405), never a redirect. Sandbox *pages* need login
  and are "page" routes.
* **public**: a `login_not_required` view anywhere else. It must be named in PUBLIC_ROUTES
  with the reason it is public.

Server-scoped routes (a `server_id` argument outside the sandbox, or `/api/…/servers/<pk>/`)
are also requested as `outsider` (admin of another server: 404/403, never the data) and as
`viewer` with every unsafe method (403/404/405).

Adding a route:
* A page, an API endpoint, a hook or a sandbox endpoint: nothing to do here.
* A new public page (no login): add its URL name to PUBLIC_ROUTES with a one-line reason.
  Until you do, `test_every_public_route_is_on_the_allowlist` fails and names it.
* A server-scoped POST that only reads (a check with a large body) and that viewers may use:
  add its URL name to VIEWER_MAY_POST with the reason.
* Give every route a name: unnamed routes cannot be swept and fail the test.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, resolve, reverse

from accounts.models import ApiToken, Server, User

pytestmark = pytest.mark.django_db

# URL name → why it may be used without signing in.
PUBLIC_ROUTES: dict[str, str] = {
    "account_login": "the sign-in form",
    "account_logout": "signing out must work from any state (allauth; POST only changes state)",
    "account_signup": "shows 'invitation only': sign-up is closed (AccountAdapter.is_open_for_signup)",
    "account_inactive": "tells a deactivated user why sign-in failed",
    "account_reset_password": "asking for a password-reset link",
    "account_reset_password_done": "'check your e-mail' after asking for a link",
    "account_reset_password_from_key": "the one-time link (password reset and invitations)",
    "account_reset_password_from_key_done": "'password saved' after using the link",
    "account_confirm_login_code": "allauth's login-by-code stage (disabled; redirects to sign-in)",
    "account_email_verification_sent": "allauth's e-mail verification stage (verification is off)",
    "account_confirm_email": "allauth's e-mail confirmation link (verification is off)",
    "mfa_authenticate": "the second sign-in step (TOTP code) before the session is signed in",
    "health": "for load balancers and monitoring: no data, only ok/not ok",
}

# Server-scoped routes where a viewer may POST because the POST only reads: a check whose
# input is too big for a query string, or a refresh of Mailroom's local copy of SocketLabs data.
# URL name → why. Everything else a viewer POSTs, PUTs, PATCHes or DELETEs must be refused.
VIEWER_MAY_POST: dict[str, str] = {
    "suppression:verify": "asks SocketLabs about one address and refreshes the local mirror; changes nothing there",
    "api-suppressions-check": "checks a list of addresses against the suppression list (the list is the body)",
    "sending:send_template_preview": "renders a template for a pasted row; stores nothing",
    "reports:subscriptions": "a user's own report e-mail subscription; every role with access subscribes itself",
    "reports:subscription_preview": "mails the signed-in user a preview of the digest; changes nothing on the server",
}

# HTML pages under /api/ (login required, 302 when anonymous). Anything else under /api/ must be
# a DRF view, which authenticates itself and answers 401: a plain Django view there would send
# API clients to the sign-in page.
API_PAGES: dict[str, str] = {"api_docs": "the readable list of API operations, for signed-in people"}

LOGIN_PATH = reverse("account_login")
UNSAFE = ("post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    name: str | None
    pattern: str
    callback: Callable[..., Any]
    kwargs: tuple[str, ...]


def _pattern_kwargs(pattern: URLPattern | URLResolver) -> tuple[str, ...]:
    inner = pattern.pattern
    converters = getattr(inner, "converters", None)
    if converters:
        return tuple(converters)
    regex = getattr(inner, "regex", None)
    return tuple(regex.groupindex) if regex is not None else ()


def _walk(patterns: list[Any], prefix: str, namespace: str, kwargs: tuple[str, ...]) -> Iterator[Route]:
    for pattern in patterns:
        names = kwargs + _pattern_kwargs(pattern)
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns, names)
        else:
            name = f"{namespace}{pattern.name}" if pattern.name else None
            yield Route(name, prefix + str(pattern.pattern), pattern.callback, names)


def all_routes() -> list[Route]:
    return list(_walk(get_resolver().url_patterns, "/", "", ()))


@dataclass
class Ids:
    server: Server
    user: User
    token: ApiToken

    def candidates(self, kwarg: str) -> list[str]:
        known = {
            "server_id": [str(self.server.pk)],
            "pk": [str(self.server.pk)],
            "user_id": [str(self.user.pk)],
            "token_id": [str(self.token.pk)],
            "kind": ["failed"],  # report pages: /servers/<id>/reports/failed/
        }.get(kwarg, [])
        generic = ["1", "x", "example.com", "00000000-0000-4000-8000-000000000000"]
        return known + [g for g in generic if g not in known]


def build_url(route: Route, ids: Ids) -> str:
    """Reverse the route by name with the first combination of dummy values its patterns accept."""
    assert route.name, f"Route {route.pattern} has no name: name it so the sweep can build its URL."
    choices = [ids.candidates(k) for k in route.kwargs]
    for combo in itertools.product(*choices):
        try:
            url = reverse(route.name, kwargs=dict(zip(route.kwargs, combo, strict=True)))
        except NoReverseMatch:
            continue
        if resolve(url).func is route.callback:
            return url
    raise AssertionError(f"Cannot build a URL for {route.name} ({route.pattern}); add a dummy value in Ids.candidates")


def classify(route: Route, url: str) -> str:
    public = not getattr(route.callback, "login_required", True)
    if url.startswith("/hooks/"):
        return "hook"
    if url.startswith("/sandbox/"):
        return "sandbox" if public else "page"
    if url.startswith("/api/"):
        return "api" if public else "page"
    if public:
        return "public"
    return "page"


def is_server_scoped(route: Route, url: str) -> bool:
    if url.startswith("/sandbox/"):
        return False  # sandbox server ids are the fake SocketLabs' own, not Mailroom servers
    if "server_id" in route.kwargs:
        return True
    return url.startswith("/api/") and "servers/" in route.pattern and "pk" in route.kwargs


@pytest.fixture
def ids(server: Server, viewer: User) -> Ids:
    token, _ = ApiToken.issue(user=viewer, name="sweep")
    return Ids(server=server, user=viewer, token=token)


@pytest.fixture
def sweep(ids: Ids, settings: Any) -> list[tuple[Route, str, str]]:
    settings.SANDBOX_ENABLED = True
    rows = []
    for route in all_routes():
        url = build_url(route, ids)
        rows.append((route, url, classify(route, url)))
    return rows


def describe(route: Route, url: str, method: str, status: int) -> str:
    return f"{method.upper()} {url} ({route.name}) answered {status}"


def test_the_sweep_sees_routes_from_every_part_of_the_site(sweep):
    kinds = {kind for _, _, kind in sweep}
    assert {"page", "api", "public", "sandbox"} <= kinds
    urls = [url for _, url, _ in sweep]
    # Included URLconfs are walked, not just the top level.
    assert any(url.startswith("/accounts/2fa/") for url in urls)
    assert any(url.startswith("/api/v1/servers/") for url in urls)
    assert any(url.startswith("/servers/") for url in urls)
    assert len(sweep) > 40


def test_every_public_route_is_on_the_allowlist(sweep):
    public = {route.name for route, _, kind in sweep if kind == "public"}
    unclassified = public - PUBLIC_ROUTES.keys()
    assert not unclassified, (
        f"New public routes {sorted(unclassified)}: add them to PUBLIC_ROUTES with a reason, "
        "or remove login_not_required from the view."
    )
    stale = PUBLIC_ROUTES.keys() - public
    assert not stale, f"PUBLIC_ROUTES names {sorted(stale)}, which are no longer public routes: remove them."


def test_everything_under_api_is_a_drf_endpoint_or_a_listed_page(sweep):
    pages = {route.name for route, url, kind in sweep if url.startswith("/api/") and kind == "page"}
    assert pages == set(API_PAGES), (
        f"Under /api/, {sorted(pages - set(API_PAGES))} need login like pages: make them DRF views "
        "(they answer 401 to API clients) or list them in API_PAGES."
    )


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_visitors_are_sent_to_sign_in_from_every_page(client, sweep, method):
    failures = []
    for route, url, kind in sweep:
        if kind != "page":
            continue
        response = getattr(client, method)(url)
        location = response.get("Location", "")
        if response.status_code != 302 or not location.startswith(f"{LOGIN_PATH}?next="):
            failures.append(describe(route, url, method, response.status_code) + f" → {location!r}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_api_calls_get_401(client, sweep, method):
    failures = []
    for route, url, kind in sweep:
        if kind != "api":
            continue
        response = getattr(client, method)(url)
        if response.status_code != 401 or "WWW-Authenticate" not in response:
            failures.append(describe(route, url, method, response.status_code))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("method", ["get", "post"])
def test_sandbox_endpoints_answer_json_errors_not_the_sign_in_page(client, sweep, method):
    failures = []
    for route, url, kind in sweep:
        if kind != "sandbox":
            continue
        response = getattr(client, method)(url)
        status = response.status_code
        if not response.get("Content-Type", "").startswith("application/json"):
            failures.append(describe(route, url, method, status) + f" as {response.get('Content-Type')}")
        elif status == 200:
            # The Injection API reports business errors with 200 and an ErrorCode (contract §2.6):
            # an empty anonymous POST is "InvalidData", which reveals nothing.
            if response.json().get("ErrorCode") in (None, "Success"):
                failures.append(describe(route, url, method, status) + " with data")
        elif status not in (401, 404, 405):
            failures.append(describe(route, url, method, status))
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("method", ["get", "post"])
def test_hooks_and_public_pages_never_redirect_to_sign_in_or_fail(client, sweep, method):
    failures = []
    for route, url, kind in sweep:
        if kind not in ("hook", "public"):
            continue
        response = getattr(client, method)(url)
        status = response.status_code
        login_redirect = status == 302 and response["Location"].startswith(f"{LOGIN_PATH}?next=")
        if status >= 500 or (kind == "hook" and login_redirect):
            failures.append(describe(route, url, method, status))
    assert not failures, "\n".join(failures)


def test_static_files_need_no_login(settings):
    # Tests run without collectstatic: let WhiteNoise find files in the app directories.
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    response = Client().get(f"{settings.STATIC_URL}css/mailroom.css")
    assert response.status_code == 200
    assert b"".join(response.streaming_content if response.streaming else [response.content])


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_outsider_gets_404_on_every_server_scoped_route(as_user, outsider, sweep, method):
    client = as_user(outsider)
    scoped = [(route, url) for route, url, _ in sweep if is_server_scoped(route, url)]
    assert scoped
    failures = []
    for route, url in scoped:
        response = getattr(client, method)(url)
        if response.status_code not in (403, 404, 405):
            failures.append(describe(route, url, method, response.status_code))
    assert not failures, "\n".join(failures)


def test_an_outsider_gets_404_on_the_api_with_a_token(outsider, sweep):
    _, raw = ApiToken.issue(user=outsider, name="outsider")
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    api = [url for route, url, kind in sweep if kind == "api" and is_server_scoped(route, url)]
    assert api
    for url in api:
        assert client.get(url).status_code in (404, 405), url
        assert client.post(url).status_code in (404, 405), url


def viewer_may(route: Route, method: str) -> bool:
    return method == "post" and route.name in VIEWER_MAY_POST


@pytest.mark.parametrize("method", UNSAFE)
def test_a_viewer_cannot_change_anything_on_a_server(as_user, viewer, sweep, method):
    client = as_user(viewer)
    failures = []
    for route, url, _ in sweep:
        if not is_server_scoped(route, url):
            continue
        response = getattr(client, method)(url)
        allowed = (403, 404, 405) if not viewer_may(route, method) else range(200, 500)
        if response.status_code not in allowed:
            failures.append(describe(route, url, method, response.status_code))
    assert not failures, "\n".join(failures) + "\n(a POST that only reads belongs in VIEWER_MAY_POST)"


def test_a_viewer_cannot_change_anything_through_the_api_either(viewer, sweep):
    _, raw = ApiToken.issue(user=viewer, name="viewer")
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    failures = []
    for route, url, kind in sweep:
        if kind == "api" and is_server_scoped(route, url):
            for method in UNSAFE:
                status = getattr(client, method)(url).status_code
                allowed = (403, 404, 405) if not viewer_may(route, method) else range(200, 500)
                if status not in allowed:
                    failures.append(describe(route, url, method, status))
    assert not failures, "\n".join(failures)


def test_the_read_only_posts_are_real_server_scoped_routes(sweep):
    scoped = {route.name for route, url, _ in sweep if is_server_scoped(route, url)}
    stale = VIEWER_MAY_POST.keys() - scoped
    assert not stale, f"VIEWER_MAY_POST names {sorted(stale)}, which are not server-scoped routes: remove them."


def test_the_classification_catches_a_new_public_route(ids):
    """The sweep's own guard: an unlisted login_not_required view is reported, not passed."""
    from django.contrib.auth.decorators import login_not_required

    route = Route("brand_new_page", "/brand-new/", login_not_required(lambda request: None), ())
    assert classify(route, "/brand-new/") == "public"
    assert route.name not in PUBLIC_ROUTES
