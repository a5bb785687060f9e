"""Who may give and take access to a server: its Admins and site administrators only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditLog, Membership, User
from accounts.roles import Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def newcomer(db: None) -> User:
    return User.objects.create_user("newcomer@example.com", "a long enough password 1")


@pytest.mark.parametrize("persona", ["site_admin", "admin"])
def test_a_server_admin_or_site_admin_gives_access(request, as_user, server, newcomer, persona):
    actor = request.getfixturevalue(persona)
    response = as_user(actor).post(
        reverse("server_member_set", args=[server.pk]), {"email": newcomer.email, "role": Role.MARKETING}
    )
    assert response.status_code == 302
    assert Membership.objects.get(server=server, user=newcomer).role == Role.MARKETING
    entry = AuditLog.objects.get(action="membership.set", target=newcomer.email)
    assert entry.server == server
    assert entry.actor == actor
    assert entry.after == {"role": Role.MARKETING}


def test_it_changes_an_existing_role_and_audits_before_and_after(as_user, admin, viewer, server):
    as_user(admin).post(reverse("server_member_set", args=[server.pk]), {"email": viewer.email, "role": Role.OPS})
    assert Membership.objects.get(server=server, user=viewer).role == Role.OPS
    entry = AuditLog.objects.get(action="membership.set", target=viewer.email)
    assert entry.before == {"role": Role.VIEWER}
    assert entry.after == {"role": Role.OPS}


@pytest.mark.parametrize("persona", ["ops", "marketing", "viewer"])
def test_other_roles_may_not_give_access(request, as_user, server, newcomer, persona):
    actor = request.getfixturevalue(persona)
    response = as_user(actor).post(
        reverse("server_member_set", args=[server.pk]), {"email": newcomer.email, "role": Role.ADMIN}
    )
    assert response.status_code == 403
    assert not Membership.objects.filter(user=newcomer).exists()
    assert not AuditLog.objects.filter(action="membership.set").exists()


def test_a_viewer_cannot_promote_themselves(as_user, viewer, server):
    response = as_user(viewer).post(
        reverse("server_member_set", args=[server.pk]), {"email": viewer.email, "role": Role.ADMIN}
    )
    assert response.status_code == 403
    assert Membership.objects.get(user=viewer, server=server).role == Role.VIEWER


def test_an_admin_of_another_server_gets_404(as_user, outsider, server, newcomer):
    response = as_user(outsider).post(
        reverse("server_member_set", args=[server.pk]), {"email": newcomer.email, "role": Role.ADMIN}
    )
    assert response.status_code == 404
    assert not Membership.objects.filter(user=newcomer).exists()


def test_a_bad_choice_changes_nothing_and_says_so(as_user, admin, server):
    client = as_user(admin)
    response = client.post(reverse("server_member_set", args=[server.pk]), {"email": "", "role": "owner"}, follow=True)
    assert "Enter an e-mail address and choose a role." in response.content.decode()
    assert Membership.objects.filter(server=server).count() == 1  # the admin's own
    assert not AuditLog.objects.filter(action="membership.set").exists()


def test_an_inactive_user_cannot_be_given_access(as_user, admin, server, newcomer):
    newcomer.is_active = False
    newcomer.save()
    as_user(admin).post(reverse("server_member_set", args=[server.pk]), {"email": newcomer.email, "role": Role.VIEWER})
    assert not Membership.objects.filter(user=newcomer).exists()


@pytest.mark.parametrize("persona", ["site_admin", "admin"])
def test_a_server_admin_or_site_admin_removes_access(request, as_user, server, viewer, persona):
    actor = request.getfixturevalue(persona)
    response = as_user(actor).post(reverse("server_member_remove", args=[server.pk, viewer.pk]), follow=True)
    assert "viewer@example.com no longer has access to Acme-1." in response.content.decode()
    assert not Membership.objects.filter(user=viewer, server=server).exists()
    entry = AuditLog.objects.get(action="membership.remove", target=viewer.email)
    assert entry.before == {"role": Role.VIEWER}
    assert entry.server == server


@pytest.mark.parametrize("persona", ["ops", "marketing"])
def test_other_roles_may_not_remove_access(request, as_user, server, viewer, persona):
    actor = request.getfixturevalue(persona)
    assert as_user(actor).post(reverse("server_member_remove", args=[server.pk, viewer.pk])).status_code == 403
    assert Membership.objects.filter(user=viewer, server=server).exists()


def test_removing_someone_without_access_is_404(as_user, admin, server, newcomer):
    response = as_user(admin).post(reverse("server_member_remove", args=[server.pk, newcomer.pk]))
    assert response.status_code == 404


def test_removal_is_post_only(as_user, admin, server, viewer):
    assert as_user(admin).get(reverse("server_member_remove", args=[server.pk, viewer.pk])).status_code == 405
    assert Membership.objects.filter(user=viewer, server=server).exists()


def test_the_members_table_asks_before_removing_and_only_admins_see_it(as_user, admin, viewer, server):
    body = as_user(admin).get(reverse("server_detail", args=[server.pk])).content.decode()
    assert 'data-confirm="Remove viewer@example.com\'s access to Acme-1?"' in body
    assert 'id="members-h"' not in as_user(viewer).get(reverse("server_detail", args=[server.pk])).content.decode()


def test_the_give_access_form_starts_at_the_least_access(as_user, admin, server):
    body = as_user(admin).get(reverse("server_detail", args=[server.pk])).content.decode()
    form = body[body.index('action="' + reverse("server_member_set", args=[server.pk])) :]
    assert '<option value="viewer" selected>Viewer</option>' in form
    assert '<option value="admin" selected>' not in form


def test_an_unknown_address_is_invited_with_a_one_time_link(as_user, admin, server):
    response = as_user(admin).post(
        reverse("server_member_set", args=[server.pk]), {"email": "New.Person@Example.com", "role": Role.OPS}
    )
    assert response.status_code == 200
    assert "/accounts/password/reset/key/" in response.content.decode()
    invited = User.objects.get(email="new.person@example.com")
    assert not invited.has_usable_password()
    assert Membership.objects.get(server=server, user=invited).role == Role.OPS
    assert AuditLog.objects.filter(action="user.invite", target=invited.email).exists()


def test_an_admin_cannot_change_or_remove_their_own_access(as_user, admin, server):
    client = as_user(admin)
    client.post(reverse("server_member_set", args=[server.pk]), {"email": admin.email, "role": Role.VIEWER})
    client.post(reverse("server_member_remove", args=[server.pk, admin.pk]))
    assert Membership.objects.get(server=server, user=admin).role == Role.ADMIN


def test_the_give_access_form_lists_no_other_users(as_user, admin, server, outsider):
    body = as_user(admin).get(reverse("server_detail", args=[server.pk])).content.decode()
    assert outsider.email not in body
