from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts import access, audit, services
from accounts.forms import ApiTokenForm, AuditFilterForm, InviteForm, MembershipForm, ServerForm
from accounts.http import AuthedRequest
from accounts.models import ApiToken, AuditLog, Heartbeat, Membership, Server, SiteSettings, User
from accounts.roles import Capability, Role


@require_GET
def dashboard(request: AuthedRequest) -> HttpResponse:
    from reporting import glance

    servers = list(glance.with_latest_streamscore(Server.objects.for_user(request.user)))
    roles = {m.server_id: m.get_role_display() for m in Membership.objects.filter(user=request.user)}
    for server in servers:
        server.role_label = "Admin" if request.user.is_superuser else roles.get(server.pk, "")  # type: ignore[attr-defined]
    at_a_glance = glance.annotate(servers)
    return render(
        request,
        "accounts/dashboard.html",
        {
            "servers": servers,
            "can_add": access.is_site_admin(request.user),
            "alerts": at_a_glance.alerts,
            "more_alerts": at_a_glance.more_alerts,
        },
    )


@require_http_methods(["GET", "POST"])
def server_add(request: AuthedRequest) -> HttpResponse:
    access.require_site_admin(request.user)
    form = ServerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        server = services.create_server(request=request, actor=request.user, data=form.service_data())
        messages.success(request, f"Added {server.name}. Test the connection to check its key.")
        return redirect("server_detail", server_id=server.pk)
    return render(request, "accounts/server_form.html", {"form": form, "server": None})


@require_GET
def server_detail(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id)
    can_manage = access.user_can(request.user, server, Capability.MANAGE_SERVER)
    members = server.memberships.select_related("user") if can_manage else None
    return render(
        request,
        "accounts/server_detail.html",
        {"server": server, "can_manage": can_manage, "members": members, "member_form": MembershipForm()},
    )


@require_http_methods(["GET", "POST"])
def server_edit(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id, Capability.MANAGE_SERVER)
    form = ServerForm(request.POST or None, instance=server)
    if request.method == "POST" and form.is_valid():
        services.update_server(request=request, actor=request.user, server=server, data=form.service_data())
        messages.success(request, f"Saved {server.name}.")
        return redirect("server_detail", server_id=server.pk)
    return render(request, "accounts/server_form.html", {"form": form, "server": server})


@require_POST
def server_test(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id, Capability.MANAGE_SERVER)
    result = services.test_connection(request=request, actor=request.user, server=server)
    if request.htmx:
        return render(
            request,
            "accounts/server_detail.html#connection-status",
            {"server": server, "result": result, "can_manage": True},
        )
    (messages.success if result.ok else messages.error)(request, result.message)
    return redirect("server_detail", server_id=server.pk)


@require_http_methods(["GET", "POST"])
def server_delete(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id, Capability.MANAGE_SERVER)
    access.require_site_admin(request.user)
    if request.method == "POST":
        if request.POST.get("confirm_name", "").strip() != server.name:
            messages.error(request, "Type the server's name exactly to confirm.")
            return render(request, "accounts/server_confirm_delete.html", {"server": server}, status=400)
        name = server.name
        services.delete_server(request=request, actor=request.user, server=server)
        messages.success(request, f"Removed {name} from Mailroom. Nothing was changed at SocketLabs.")
        if request.htmx:
            return HttpResponseClientRedirect("/")
        return redirect("dashboard")
    return render(request, "accounts/server_confirm_delete.html", {"server": server})


@require_POST
def server_member_set(request: AuthedRequest, server_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id, Capability.MANAGE_SERVER)
    form = MembershipForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Enter an e-mail address and choose a role.")
        return redirect("server_detail", server_id=server.pk)
    email = form.cleaned_data["email"].strip().lower()
    role = form.cleaned_data["role"]
    user = User.objects.filter(email=email).first()
    if user is not None and user == request.user and not request.user.is_superuser:
        messages.error(request, "You cannot change your own access. Ask another Admin of this server.")
        return redirect("server_detail", server_id=server.pk)
    if user is not None and not user.is_active:
        messages.error(request, f"{email} is deactivated. A site administrator can reactivate them first.")
        return redirect("server_detail", server_id=server.pk)
    if user is None:
        invited, link = services.invite_user(request=request, actor=request.user, email=email, server=server, role=role)
        return render(request, "accounts/user_invited.html", {"invited": invited, "link": link, "server": server})
    services.set_membership(request=request, actor=request.user, server=server, user=user, role=role)
    messages.success(request, f"{user.email} is now {Role(role).label} on {server.name}.")
    return redirect("server_detail", server_id=server.pk)


@require_POST
def server_member_remove(request: AuthedRequest, server_id: int, user_id: int) -> HttpResponse:
    server = access.get_server_for_user(request.user, server_id, Capability.MANAGE_SERVER)
    user = get_object_or_404(User, pk=user_id, memberships__server=server)
    if user == request.user and not request.user.is_superuser:
        messages.error(request, "You cannot remove your own access. Ask another Admin of this server.")
        return redirect("server_detail", server_id=server.pk)
    services.set_membership(request=request, actor=request.user, server=server, user=user, role=None)
    messages.success(request, f"{user.email} no longer has access to {server.name}.")
    return redirect("server_detail", server_id=server.pk)


# --- Users (site administrators) -------------------------------------------------


@require_GET
def user_list(request: AuthedRequest) -> HttpResponse:
    access.require_site_admin(request.user)
    query = request.GET.get("q", "").strip()
    users = User.objects.prefetch_related("memberships__server")
    if query:
        users = users.filter(Q(email__icontains=query) | Q(first_name__icontains=query))
    page = Paginator(users, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "accounts/user_list.html",
        {"page": page, "q": query, "invite_form": InviteForm(servers=Server.objects.all())},
    )


@require_POST
def user_invite(request: AuthedRequest) -> HttpResponse:
    access.require_site_admin(request.user)
    form = InviteForm(request.POST, servers=Server.objects.all())
    if not form.is_valid():
        page = Paginator(User.objects.all(), 50).get_page(1)
        return render(request, "accounts/user_list.html", {"page": page, "invite_form": form}, status=400)
    user, link = services.invite_user(
        request=request,
        actor=request.user,
        email=form.cleaned_data["email"],
        server=form.cleaned_data["server"],
        role=form.cleaned_data["role"],
    )
    return render(request, "accounts/user_invited.html", {"invited": user, "link": link})


@require_POST
def user_set_active(request: AuthedRequest, user_id: int) -> HttpResponse:
    access.require_site_admin(request.user)
    user = get_object_or_404(User, pk=user_id)
    if user == request.user:
        messages.error(request, "You cannot deactivate yourself.")
        return redirect("user_list")
    active = request.POST.get("active") == "1"
    services.set_user_active(request=request, actor=request.user, user=user, active=active)
    messages.success(request, f"{user.email} is {'active' if active else 'deactivated, and signed out everywhere'}.")
    return redirect("user_list")


@require_http_methods(["GET", "POST"])
def site_security(request: AuthedRequest) -> HttpResponse:
    access.require_site_admin(request.user)
    site = SiteSettings.load()
    if request.method == "POST":
        required = request.POST.get("require_mfa") == "on"
        services.set_require_mfa(request=request, actor=request.user, required=required)
        messages.success(request, "Two-factor is now required for everyone." if required else "Two-factor is optional.")
        return redirect("site_security")
    return render(request, "accounts/site_security.html", {"site": site})


# --- Audit log -------------------------------------------------------------------


@require_GET
def audit_log(request: AuthedRequest) -> HttpResponse:
    visible = Server.objects.for_user(request.user)
    admin_server_ids = [s.pk for s in visible if access.user_can(request.user, s, Capability.MANAGE_SERVER)]
    if not admin_server_ids and not access.is_site_admin(request.user):
        raise PermissionDenied("The audit log is for administrators.")
    form = AuditFilterForm(request.GET or None, servers=Server.objects.filter(pk__in=admin_server_ids))
    entries = AuditLog.objects.all()
    if not access.is_site_admin(request.user):
        entries = entries.filter(server_id__in=admin_server_ids)
    if form.is_valid():
        data = form.cleaned_data
        if data["server"]:
            entries = entries.filter(server=data["server"])
        if data["action"]:
            entries = entries.filter(action__startswith=data["action"])
        if data["actor"]:
            entries = entries.filter(actor_label__icontains=data["actor"])
        if data["since"]:
            entries = entries.filter(created_at__date__gte=data["since"])
        if data["until"]:
            entries = entries.filter(created_at__date__lte=data["until"])
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    template = "accounts/audit_log.html#audit-table" if request.htmx else "accounts/audit_log.html"
    return render(request, template, {"page": page, "form": form})


# --- API tokens ------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def api_tokens(request: AuthedRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        token, new_token = ApiToken.issue(user=request.user, name=form.cleaned_data["name"])
        audit.record(action="api_token.create", request=request, target=token.name)
        form = ApiTokenForm()
    tokens = ApiToken.objects.filter(user=request.user)
    return render(request, "accounts/api_tokens.html", {"form": form, "tokens": tokens, "new_token": new_token})


@require_POST
def api_token_revoke(request: AuthedRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user, revoked_at__isnull=True)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit.record(action="api_token.revoke", request=request, target=token.name)
    messages.success(request, f"Revoked “{token.name}”.")
    return redirect("api_tokens")


# --- Health ----------------------------------------------------------------------

BEAT_STALE_AFTER = timedelta(minutes=3)


@login_not_required
@never_cache
@require_GET
def health(request: AuthedRequest) -> JsonResponse:
    """For load balancers and monitoring: database, broker, and how fresh beat is."""
    checks: dict[str, dict[str, object]] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        from config.celery import app

        # The URL is read per request (not from the app's cached config) so the check follows
        # settings; one quick retry keeps a dead broker from stalling the load balancer.
        with app.connection_for_write(url=settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=1, timeout=2)
        checks["broker"] = {"ok": True}
    except Exception as exc:
        checks["broker"] = {"ok": False, "error": type(exc).__name__}
    beat = Heartbeat.objects.filter(name="beat").first() if checks["database"]["ok"] else None
    if beat is None:
        checks["beat"] = {"ok": False, "last_tick": None}
    else:
        age = timezone.now() - beat.at
        checks["beat"] = {
            "ok": age < BEAT_STALE_AFTER,
            "last_tick": beat.at.isoformat(),
            "age_seconds": int(age.total_seconds()),
        }
    # Beat being late degrades background work but the site still serves: 200 with ok=false there.
    healthy = bool(checks["database"]["ok"] and checks["broker"]["ok"])
    return JsonResponse({"ok": healthy, "checks": checks}, status=200 if healthy else 503)


@require_GET
def api_docs(request: AuthedRequest) -> HttpResponse:
    """The OpenAPI schema as a readable page, rendered here (no third-party viewer, no CDN)."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for route, methods in sorted(schema.get("paths", {}).items()):
        for method, op in methods.items():
            operations.append(
                {
                    "method": method.upper(),
                    "path": route,
                    "summary": op.get("summary") or op.get("description", "").split("\n")[0],
                    "id": op.get("operationId", ""),
                    "params": [p.get("name") for p in op.get("parameters", [])],
                }
            )
    return render(request, "accounts/api_docs.html", {"operations": operations, "info": schema.get("info", {})})
