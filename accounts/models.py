from __future__ import annotations

import hashlib
import secrets
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, available_timezones

from django.conf import settings
from django.contrib.auth.base_user import BaseUserManager
from django.contrib.auth.models import AbstractUser
from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from accounts.fields import EncryptedTextField, mask
from accounts.roles import Role, role_allows

TIME_ZONE_CHOICES = sorted((tz, tz) for tz in available_timezones() if "/" in tz or tz == "UTC")


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person who signs in with an e-mail address.

    `is_superuser` marks a site administrator: Admin on every server, may add
    servers and invite users. Everyone else sees only servers they hold a
    membership on.
    """

    username = None  # type: ignore[assignment]
    email = models.EmailField("e-mail address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    objects = UserManager()  # type: ignore[misc,assignment]

    class Meta:
        ordering = ("email",)

    def __str__(self) -> str:
        return self.email

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.email


class ServerStatus(models.TextChoices):
    UNKNOWN = "unknown", "Not checked"
    OK = "ok", "Connected"
    AUTH_FAILED = "auth_failed", "Key refused"
    UNREACHABLE = "unreachable", "Unreachable"
    TIMEOUT = "timeout", "Timed out"
    ERROR = "error", "Error"


class ServerQuerySet(models.QuerySet["Server"]):
    def for_user(self, user: Any) -> ServerQuerySet:
        """The servers this user may see: all for site admins, else their memberships."""
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self.all()
        return self.filter(memberships__user=user)


class Server(models.Model):
    """One SocketLabs server managed by Mailroom, with its encrypted credentials."""

    name = models.CharField("display name", max_length=100)
    socketlabs_id = models.PositiveIntegerField("SocketLabs server id", validators=[MinValueValidator(1)])
    account_id = models.PositiveIntegerField("account id", null=True, blank=True)
    subaccount_id = models.PositiveIntegerField("subaccount id", null=True, blank=True)
    inject_url = models.URLField(
        "Injection API URL", blank=True, help_text="Leave empty for the default SocketLabs endpoint."
    )
    api_url = models.URLField("API v2 URL", blank=True, help_text="Leave empty for the default SocketLabs endpoint.")
    marketing_url = models.URLField(
        "Marketing API URL", blank=True, help_text="Leave empty for the default SocketLabs endpoint."
    )
    time_zone = models.CharField(max_length=64, choices=TIME_ZONE_CHOICES, default="UTC")
    api_key = EncryptedTextField("API key (v2)", blank=True)
    injection_key = EncryptedTextField("Injection API key", blank=True)
    marketing_key = EncryptedTextField("Marketing API key", blank=True)
    status = models.CharField(max_length=20, choices=ServerStatus.choices, default=ServerStatus.UNKNOWN)
    status_message = models.CharField(max_length=500, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = ServerQuerySet.as_manager()

    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("api_key", "injection_key", "marketing_key")

    class Meta:
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["socketlabs_id", "api_url"], name="server_unique_socketlabs_id_per_endpoint"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.socketlabs_id})"

    def masked(self, field: str) -> str:
        return mask(getattr(self, field))

    @property
    def masked_api_key(self) -> str:
        return self.masked("api_key")

    @property
    def masked_injection_key(self) -> str:
        return self.masked("injection_key")

    @property
    def masked_marketing_key(self) -> str:
        return self.masked("marketing_key")

    @property
    def effective_inject_url(self) -> str:
        return self.inject_url or settings.SOCKETLABS_INJECT_URL

    @property
    def effective_api_url(self) -> str:
        return self.api_url or settings.SOCKETLABS_API_URL

    @property
    def effective_marketing_url(self) -> str:
        return self.marketing_url or settings.SOCKETLABS_MARKETING_URL

    @property
    def zone(self) -> ZoneInfo:
        """The server's time zone; UTC when the stored name is unknown to this machine."""
        try:
            return ZoneInfo(self.time_zone or "UTC")
        except (KeyError, ValueError):
            return ZoneInfo("UTC")

    def role_for(self, user: Any) -> str | None:
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return None
        if user.is_superuser:
            return Role.ADMIN
        membership = self.memberships.filter(user=user).only("role").first()
        return membership.role if membership else None


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    server = models.ForeignKey(Server, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "server"], name="membership_unique_user_server")]
        ordering = ("server", "user__email")

    def __str__(self) -> str:
        return f"{self.user} is {self.get_role_display()} on {self.server}"

    def allows(self, capability: str) -> bool:
        return role_allows(self.role, capability)


class AuditLog(models.Model):
    """Append-only record of every write and every security event.

    Rows are written only through `accounts.audit.record()`, which masks secrets.
    There is no update or delete path.
    """

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=254, blank=True, help_text="Who acted, kept if the user is deleted.")
    server = models.ForeignKey(Server, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    server_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=["server", "-created_at"], name="audit_server_time")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target}"


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A per-user REST API token. Only its SHA-256 is stored; the token is shown once."""

    PREFIX = "mr_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    last_four = models.CharField(max_length=4)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.name} (••••{self.last_four})"

    @staticmethod
    def hash(raw: str) -> str:
        return hashlib.sha256(raw.encode()).hexdigest()

    @classmethod
    def issue(cls, *, user: Any, name: str) -> tuple[ApiToken, str]:
        raw = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, token_hash=cls.hash(raw), last_four=raw[-4:])
        return token, raw


class SiteSettings(models.Model):
    """Site-wide switches an administrator can change at run time (one row)."""

    require_mfa = models.BooleanField(
        "require two-factor authentication for everyone",
        default=False,
    )

    class Meta:
        verbose_name_plural = "site settings"

    def __str__(self) -> str:
        return "Site settings"

    @classmethod
    def load(cls) -> SiteSettings:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class Heartbeat(models.Model):
    """Last time a periodic process proved it is alive (beat, worker)."""

    name = models.CharField(max_length=40, primary_key=True)
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"
