"""Shared fixtures: persona users on two servers, logged-in clients."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from django.test import Client

from accounts.models import Membership, Server, User
from accounts.roles import Role

# Playwright's sync API runs an event loop in the test thread; Django's ORM then
# refuses sync calls unless told this is fine (the Playwright maintainers' advice).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

PASSWORD = "correct horse battery staple 42"


@pytest.fixture(autouse=True)
def _fresh_circuit_breakers() -> None:
    """The client's breakers are process-wide: failures in one test must not open them for the next."""
    import socketlabs

    socketlabs.default_breakers.reset()


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """The cache is a real Redis that outlives each test's rolled-back transaction: start empty.

    Otherwise a cached "two-factor required", allauth's per-IP rate limits or a used TOTP
    code from one test would leak into the next.
    """
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def server(db: None) -> Server:
    return Server.objects.create(
        name="Acme-1", socketlabs_id=10001, api_key="A" * 20 + "." + "b" * 40, injection_key="inject-key-1234"
    )


@pytest.fixture
def other_server(db: None) -> Server:
    return Server.objects.create(name="Other-2", socketlabs_id=20002, api_key="other-key-9999")


def _user(email: str, *, superuser: bool = False) -> User:
    if superuser:
        return User.objects.create_superuser(email, PASSWORD)
    return User.objects.create_user(email, PASSWORD)


@pytest.fixture
def make_member(server: Server) -> Callable[[str, str], User]:
    def make(email: str, role: str) -> User:
        user = _user(email)
        Membership.objects.create(user=user, server=server, role=role)
        return user

    return make


@pytest.fixture
def site_admin(db: None) -> User:
    return _user("root@example.com", superuser=True)


@pytest.fixture
def admin(make_member: Callable[[str, str], User]) -> User:
    return make_member("admin@example.com", Role.ADMIN)


@pytest.fixture
def ops(make_member: Callable[[str, str], User]) -> User:
    return make_member("ops@example.com", Role.OPS)


@pytest.fixture
def marketing(make_member: Callable[[str, str], User]) -> User:
    return make_member("marketing@example.com", Role.MARKETING)


@pytest.fixture
def viewer(make_member: Callable[[str, str], User]) -> User:
    return make_member("viewer@example.com", Role.VIEWER)


@pytest.fixture
def outsider(other_server: Server) -> User:
    """Admin of another server, with no access to `server`."""
    user = _user("outsider@example.com")
    Membership.objects.create(user=user, server=other_server, role=Role.ADMIN)
    return user


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def as_user() -> Callable[[User], Client]:
    return logged_in
