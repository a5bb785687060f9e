"""Sending setup: every change goes through the SocketLabs client, is audited, and fails in plain words.

Views, the REST API and Celery tasks call these functions; they contain no logic of their own.
SocketLabs is the source of truth for keys and domains, so lists are read from it each time;
Mailroom stores only DNS check results, DNS-check jobs and DKIM keys on their way in
(`sending.models`).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

import socketlabs
from accounts import audit
from accounts import services as account_services
from accounts.models import Server
from sending import dkim, dns
from sending.errors import SendingError, api_status, explain
from sending.models import (
    DkimSetup,
    DnsCheckJob,
    DnsCheckResult,
    DnsState,
    JobStatus,
    RecordKind,
    SetupStep,
)
from sending.validators import normalize_domain

# A person is waiting on the page: one retry at most, with the client's short backoff.
INTERACTIVE_ATTEMPTS = 2
VERIFIED = "verified"


def client(server: Server, *, interactive: bool = True) -> socketlabs.SocketLabsClient:
    """The SocketLabs client for this server (tests may patch this to inject a fake clock)."""
    if interactive:
        return account_services.client_for(server, max_attempts=INTERACTIVE_ATTEMPTS)
    return account_services.client_for(server)


@contextmanager
def socketlabs_call(server: Server, doing: str) -> Iterator[None]:
    """Turn any client error into a SendingError whose message says what happened and what to do."""
    try:
        yield
    except socketlabs.SocketLabsError as exc:
        raise SendingError(explain(exc, server=server, doing=doing), status=api_status(exc)) from exc


def _call[T](server: Server, doing: str, fn: Callable[[socketlabs.SocketLabsClient], T]) -> T:
    with socketlabs_call(server, doing):
        return fn(client(server))


def _domain(text: str, field: str = "domain") -> str:
    try:
        return normalize_domain(text)
    except ValueError as exc:
        raise SendingError(str(exc), field=field) from exc


def _selector(text: str, field: str = "selector") -> str:
    try:
        return dkim.normalize_selector(text)
    except ValueError as exc:
        raise SendingError(str(exc), field=field) from exc


def is_verified(status: str | None) -> bool:
    return (status or "").strip().lower() == VERIFIED


def status_badge(status: str | None) -> str:
    value = (status or "").strip().lower()
    if value == VERIFIED:
        return "status-ok"
    if value in ("failed", "invalid", "error"):
        return "status-error"
    return "status-unknown"


# --- API keys --------------------------------------------------------------------------------------
PERMISSIONS = (socketlabs.KeyPermission.INJECTION.value, socketlabs.KeyPermission.API.value)


def list_api_keys(*, server: Server) -> list[socketlabs.ApiKey]:
    return _call(server, "list the API keys", lambda c: c.api_keys.list())


def key_in_use(server: Server, key: socketlabs.ApiKey) -> list[str]:
    """Which of Mailroom's stored credentials for this server are this key (matched by its public part)."""
    if not key.public_part:
        return []
    uses = []
    for field, label in (("api_key", "API"), ("injection_key", "Injection")):
        secret = getattr(server, field) or ""
        if secret and secret.startswith(key.public_part):
            uses.append(label)
    return uses


def create_api_key(
    *,
    request: HttpRequest | None,
    actor: Any,
    server: Server,
    name: str,
    permissions: Sequence[str],
    use_for_mailroom: bool = False,
) -> socketlabs.ApiKey:
    """Create a key at SocketLabs; its `secret` is in the answer this once. Optionally store it as Mailroom's key.

    The caller checks that `actor` may manage the server before passing `use_for_mailroom`.
    """
    name = (name or "").strip()
    if not name:
        raise SendingError("Give the key a name, so you know later what uses it.", field="name")
    if len(name) > 100:
        raise SendingError("The name may have at most 100 characters.", field="name")
    chosen = [p for p in PERMISSIONS if p in set(permissions)]
    unknown = set(permissions) - set(PERMISSIONS)
    if unknown or not chosen:
        raise SendingError(
            "Choose at least one permission: Injection (send mail) or API (manage).", field="permissions"
        )
    key = _call(server, f"create the API key “{name}”", lambda c: c.api_keys.create(name=name, permissions=chosen))
    audit.record(
        action="sending.api_key.create",
        request=request,
        actor=actor,
        server=server,
        target=f"{key.name} ({key.public_part})",
        after={"id": key.id, "name": key.name, "public_part": key.public_part, "permissions": list(key.permissions)},
    )
    if use_for_mailroom and key.secret:
        data = {}
        if "api" in chosen:
            data["api_key"] = key.secret
        if "injection" in chosen:
            data["injection_key"] = key.secret
        account_services.update_server(request=request, actor=actor, server=server, data=data)
    return key


def revoke_api_key(*, request: HttpRequest | None, actor: Any, server: Server, key_id: str) -> None:
    key_id = str(key_id).strip()
    known = {k.id: k for k in list_api_keys(server=server)}
    key = known.get(key_id)
    label = f"{key.name} ({key.public_part})" if key else key_id
    _call(server, f"revoke the API key {label}", lambda c: c.api_keys.delete(key_id))
    audit.record(
        action="sending.api_key.revoke",
        request=request,
        actor=actor,
        server=server,
        target=label,
        before={"id": key_id, "name": key.name if key else "", "public_part": key.public_part if key else ""},
    )


# --- sending domains --------------------------------------------------------------------------------
def list_sending_domains(*, server: Server) -> list[socketlabs.SendingDomain]:
    return _call(server, "list the sending domains", lambda c: c.sending_domains.list())


def add_sending_domain(
    *, request: HttpRequest | None, actor: Any, server: Server, domain: str
) -> socketlabs.SendingDomain:
    name = _domain(domain)
    added = _call(server, f"add the sending domain {name}", lambda c: c.sending_domains.add(name))
    audit.record(
        action="sending.domain.add",
        request=request,
        actor=actor,
        server=server,
        target=name,
        after={"status": added.status},
    )
    return added


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    message: str
    outcome: dns.Outcome | None = None
    status: str = ""


def verify_sending_domain(*, request: HttpRequest | None, actor: Any, server: Server, domain: str) -> VerifyResult:
    """Check the verification TXT record ourselves, then ask SocketLabs to verify (only if ours matched)."""
    name = _domain(domain)
    current = _call(server, f"read the sending domain {name}", lambda c: c.sending_domains.get(name))
    outcome = None
    if current.verification_record:
        target = dns.Target(RecordKind.SENDING_DOMAIN, name, name, "TXT", current.verification_record)
        outcome = dns.check(target)
        store_result(server=server, target=target, outcome=outcome)
        if not outcome.ok:
            return VerifyResult(False, f"Not asking SocketLabs yet: {outcome.detail}", outcome, current.status)
    verified = _call(server, f"verify the sending domain {name}", lambda c: c.sending_domains.verify(name))
    audit.record(
        action="sending.domain.verify",
        request=request,
        actor=actor,
        server=server,
        target=name,
        before={"status": current.status},
        after={"status": verified.status, "dns": outcome.state if outcome else None},
    )
    if is_verified(verified.status):
        return VerifyResult(True, f"SocketLabs verified {name}.", outcome, verified.status)
    return VerifyResult(
        False, f"SocketLabs checked {name} and reports “{verified.status or 'unknown'}”.", outcome, verified.status
    )


def remove_sending_domain(*, request: HttpRequest | None, actor: Any, server: Server, domain: str) -> None:
    name = _domain(domain)
    _call(server, f"remove the sending domain {name}", lambda c: c.sending_domains.delete(name))
    DnsCheckResult.objects.filter(server=server, kind=RecordKind.SENDING_DOMAIN, domain=name).delete()
    audit.record(action="sending.domain.remove", request=request, actor=actor, server=server, target=name)


# --- DKIM -------------------------------------------------------------------------------------------
def list_dkim(*, server: Server) -> list[socketlabs.DkimRecord]:
    return _call(server, "list the DKIM keys", lambda c: c.dkim.list())


def dkim_public_key(record: socketlabs.DkimRecord) -> str:
    return "".join((record.public_key or dkim.public_key_of(record.dns_record)).split())


def dkim_host(record: socketlabs.DkimRecord) -> str:
    return (record.dns_host_name or dkim.host_name(record.domain, record.selector)).rstrip(".").lower()


def _new_key(server: Server, domain: str, selector: str, private_key: str) -> tuple[str, str, str]:
    """(private PEM, public p=, source): the pasted key when given, else a pair generated by SocketLabs."""
    if private_key and private_key.strip():
        try:
            pair = dkim.parse_private_key(private_key)
        except dkim.InvalidPrivateKey as exc:
            raise SendingError(str(exc), field="private_key") from exc
        return pair.private_pem, pair.public_b64, "pasted"
    generated = _call(
        server,
        f"generate a DKIM key for {dkim.host_name(domain, selector)}",
        lambda c: c.dkim.generate(domain=domain, selector=selector),
    )
    public = "".join((generated.public_key or dkim.public_key_of(generated.dns_record)).split())
    if not generated.private_key or not public:
        raise SendingError("SocketLabs generated a key but did not return it whole. Try again.", status=502)
    return generated.private_key, public, "generated"


def _create_setup(**fields: Any) -> DkimSetup:
    try:
        with transaction.atomic():
            return DkimSetup.objects.create(**fields)
    except IntegrityError as exc:
        host = dkim.host_name(fields["domain"], fields["selector"])
        raise SendingError(
            f"A DKIM key for {host} is already waiting to be published. Finish or cancel it first.", status=409
        ) from exc


def start_dkim(
    *, request: HttpRequest | None, actor: Any, server: Server, domain: str, selector: str, private_key: str = ""
) -> DkimSetup:
    """A new DKIM key waiting for its DNS record: generated by SocketLabs, or the pasted one."""
    name = _domain(domain)
    sel = _selector(selector)
    existing = [r for r in list_dkim(server=server) if r.domain.lower() == name and r.selector.lower() == sel]
    if existing:
        raise SendingError(
            f"SocketLabs already has a DKIM key for {dkim.host_name(name, sel)}. "
            "Choose another selector, or rotate the existing key.",
            status=409,
            field="selector",
        )
    private, public, source = _new_key(server, name, sel, private_key)
    setup = _create_setup(
        server=server,
        domain=name,
        selector=sel,
        private_key=private,
        public_key=public,
        source=source,
        created_by=actor,
    )
    audit.record(
        action="sending.dkim.start",
        request=request,
        actor=actor,
        server=server,
        target=setup.host,
        after={"source": source, "public_key_tail": public[-12:]},
    )
    return setup


def start_rotation(
    *,
    request: HttpRequest | None,
    actor: Any,
    server: Server,
    domain: str,
    old_selector: str,
    new_selector: str,
    private_key: str = "",
) -> DkimSetup:
    name = _domain(domain)
    old = _selector(old_selector, "old_selector")
    new = _selector(new_selector, "selector")
    if old == new:
        raise SendingError(
            "The new selector must differ from the one in use, so both keys can be published at once.", field="selector"
        )
    records = list_dkim(server=server)
    current = next((r for r in records if r.domain.lower() == name and r.selector.lower() == old), None)
    if current is None:
        raise SendingError(f"SocketLabs has no DKIM key for {dkim.host_name(name, old)} to rotate.", status=404)
    if any(r.domain.lower() == name and r.selector.lower() == new for r in records):
        raise SendingError(
            f"SocketLabs already has a key for {dkim.host_name(name, new)}. Choose another selector.",
            status=409,
            field="selector",
        )
    if DkimSetup.objects.open().filter(server=server, domain=name, old_selector=old).exists():
        raise SendingError(f"A rotation of {dkim.host_name(name, old)} is already under way.", status=409)
    private, public, source = _new_key(server, name, new, private_key)
    setup = _create_setup(
        server=server,
        domain=name,
        selector=new,
        old_selector=old,
        old_public_key=dkim_public_key(current),
        private_key=private,
        public_key=public,
        source=source,
        created_by=actor,
    )
    audit.record(
        action="sending.dkim.rotate_start",
        request=request,
        actor=actor,
        server=server,
        target=f"{setup.old_host} → {setup.host}",
        after={"source": source},
    )
    return setup


def dkim_target(setup: DkimSetup) -> dns.Target:
    return dns.Target(RecordKind.DKIM, setup.domain, setup.host, "TXT", setup.public_key, selector=setup.selector)


@dataclass(frozen=True)
class StepResult:
    ok: bool
    message: str
    outcome: dns.Outcome | None = None


def _require_step(setup: DkimSetup, *steps: str) -> None:
    if setup.step not in steps:
        raise SendingError(
            f"{setup.host} is at the step “{setup.get_step_display()}”; that action does not apply now.", status=409
        )


def verify_dkim(*, request: HttpRequest | None, actor: Any, setup: DkimSetup) -> StepResult:
    """Check the published TXT ourselves; when it matches, hand the key to SocketLabs, which validates it too."""
    _require_step(setup, SetupStep.PUBLISH)
    server = setup.server
    outcome = dns.check(dkim_target(setup))
    store_result(server=server, target=dkim_target(setup), outcome=outcome)
    if not outcome.ok:
        setup.move_to(SetupStep.PUBLISH, last_message=outcome.detail[:500])
        return StepResult(False, f"Not asking SocketLabs yet: {outcome.detail}", outcome)
    doing = f"add the DKIM key for {setup.host}"

    def hand_over(c: socketlabs.SocketLabsClient) -> socketlabs.DkimRecord:
        kwargs = {"domain": setup.domain, "selector": setup.selector, "private_key": setup.private_key}
        if setup.added_at_socketlabs:
            return c.dkim.update(**kwargs)
        try:
            return c.dkim.add(**kwargs)
        except socketlabs.ConflictError:
            # Added by an earlier attempt whose answer was lost: update the same entry instead.
            return c.dkim.update(**kwargs)

    try:
        record = _call(server, doing, hand_over)
    except SendingError as exc:
        setup.move_to(SetupStep.PUBLISH, last_message=exc.message[:500])
        raise
    status = record.validation_status or ""
    audit.record(
        action="sending.dkim.verify",
        request=request,
        actor=actor,
        server=server,
        target=setup.host,
        after={"dns": outcome.state, "socketlabs_status": status},
    )
    if not is_verified(status):
        setup.move_to(
            SetupStep.PUBLISH,
            added_at_socketlabs=True,
            socketlabs_status=status,
            last_message=f"Our DNS check matched, but SocketLabs reports “{status or 'unknown'}”. Try again shortly.",
        )
        return StepResult(False, setup.last_message, outcome)
    # SocketLabs holds the key now: Mailroom forgets its copy.
    next_step = SetupStep.VERIFIED if setup.is_rotation else SetupStep.DONE
    message = (
        f"SocketLabs verified the new key at {setup.host}. Next: switch signing to it."
        if setup.is_rotation
        else f"SocketLabs verified the DKIM key at {setup.host}."
    )
    setup.move_to(next_step, added_at_socketlabs=True, socketlabs_status=status, private_key="", last_message=message)
    return StepResult(True, message, outcome)


def switch_dkim(*, request: HttpRequest | None, actor: Any, setup: DkimSetup) -> StepResult:
    """Rotation step 3: remove the old key at SocketLabs, so only the new (verified) one signs."""
    _require_step(setup, SetupStep.VERIFIED)
    server = setup.server

    def remove_old(c: socketlabs.SocketLabsClient) -> None:
        try:
            c.dkim.delete(domain=setup.domain, selector=setup.old_selector)
        except socketlabs.NotFoundError:
            pass  # already gone (an earlier attempt whose answer was lost)

    _call(server, f"remove the old DKIM key {setup.old_host}", remove_old)
    message = (
        f"SocketLabs now signs with {setup.selector}. Keep the old record at {setup.old_host} for a few days, "
        "so mail already signed with it still verifies, then delete it from your DNS."
    )
    setup.move_to(SetupStep.SWITCHED, last_message=message)
    audit.record(
        action="sending.dkim.switch",
        request=request,
        actor=actor,
        server=server,
        target=f"{setup.old_host} → {setup.host}",
    )
    return StepResult(True, message)


def finish_rotation(*, request: HttpRequest | None, actor: Any, setup: DkimSetup) -> StepResult:
    """Rotation step 4: done once the old key's TXT record is no longer published."""
    _require_step(setup, SetupStep.SWITCHED)
    target = dns.Target(
        RecordKind.DKIM, setup.domain, setup.old_host, "TXT", setup.old_public_key, selector=setup.old_selector
    )
    outcome = dns.check(target)
    if outcome.ok:
        setup.move_to(SetupStep.SWITCHED, last_message=f"The old record is still published at {setup.old_host}.")
        return StepResult(
            False,
            f"The old key is still published at {setup.old_host}. Delete that TXT record, then check again.",
            outcome,
        )
    if outcome.state in (DnsState.TIMEOUT, DnsState.ERROR):
        return StepResult(False, f"Could not tell whether the old record is gone: {outcome.detail}", outcome)
    DnsCheckResult.objects.filter(server=setup.server, kind=RecordKind.DKIM, host=setup.old_host).delete()
    message = f"Rotation finished: {setup.host} is the only DKIM key for {setup.domain}."
    setup.move_to(SetupStep.DONE, last_message=message)
    audit.record(
        action="sending.dkim.rotate_finish",
        request=request,
        actor=actor,
        server=setup.server,
        target=f"{setup.old_host} → {setup.host}",
    )
    return StepResult(True, message, outcome)


def cancel_dkim(*, request: HttpRequest | None, actor: Any, setup: DkimSetup) -> None:
    """Abandon a key before it signs: remove it at SocketLabs if it got there, forget the private key."""
    _require_step(setup, SetupStep.PUBLISH, SetupStep.VERIFIED)
    if setup.added_at_socketlabs:

        def remove_new(c: socketlabs.SocketLabsClient) -> None:
            try:
                c.dkim.delete(domain=setup.domain, selector=setup.selector)
            except socketlabs.NotFoundError:
                pass

        _call(setup.server, f"remove the new DKIM key {setup.host}", remove_new)
    setup.move_to(SetupStep.CANCELLED, private_key="", last_message="Cancelled.")
    DnsCheckResult.objects.filter(server=setup.server, kind=RecordKind.DKIM, host=setup.host).delete()
    audit.record(action="sending.dkim.cancel", request=request, actor=actor, server=setup.server, target=setup.host)


def remove_dkim(*, request: HttpRequest | None, actor: Any, server: Server, domain: str, selector: str) -> None:
    name = _domain(domain)
    sel = _selector(selector)
    host = dkim.host_name(name, sel)
    if DkimSetup.objects.open().filter(server=server, domain=name, old_selector=sel).exists():
        raise SendingError(f"{host} is being rotated. Finish or cancel the rotation first.", status=409)
    _call(server, f"remove the DKIM key {host}", lambda c: c.dkim.delete(domain=name, selector=sel))
    DnsCheckResult.objects.filter(server=server, kind=RecordKind.DKIM, host=host).delete()
    audit.record(action="sending.dkim.remove", request=request, actor=actor, server=server, target=host)


# --- custom bounce domains ---------------------------------------------------------------------------
def list_bounce_domains(*, server: Server) -> list[socketlabs.BounceDomain]:
    return _call(server, "list the bounce domains", lambda c: c.bounce_domains.list())


def add_bounce_domain(
    *, request: HttpRequest | None, actor: Any, server: Server, domain: str, is_default: bool = False
) -> socketlabs.BounceDomain:
    name = _domain(domain)
    added = _call(server, f"add the bounce domain {name}", lambda c: c.bounce_domains.add(name, is_default=is_default))
    audit.record(
        action="sending.bounce.add",
        request=request,
        actor=actor,
        server=server,
        target=name,
        after={"is_default": added.is_default, "status": added.validation_status},
    )
    return added


def set_default_bounce_domain(
    *, request: HttpRequest | None, actor: Any, server: Server, domain: str, is_default: bool
) -> socketlabs.BounceDomain:
    name = _domain(domain)
    verb = "make" if is_default else "stop making"
    updated = _call(
        server,
        f"{verb} {name} the default bounce domain",
        lambda c: c.bounce_domains.update(name, is_default=is_default),
    )
    audit.record(
        action="sending.bounce.update",
        request=request,
        actor=actor,
        server=server,
        target=name,
        before={"is_default": not is_default},
        after={"is_default": updated.is_default},
    )
    return updated


def remove_bounce_domain(*, request: HttpRequest | None, actor: Any, server: Server, domain: str) -> None:
    name = _domain(domain)
    _call(server, f"remove the bounce domain {name}", lambda c: c.bounce_domains.delete(name))
    DnsCheckResult.objects.filter(server=server, kind=RecordKind.BOUNCE, host=name).delete()
    audit.record(action="sending.bounce.remove", request=request, actor=actor, server=server, target=name)


# --- engagement tracking domains ---------------------------------------------------------------------
TRACKING_FLAGS = ("opens_enabled", "clicks_enabled", "unsubscribes_enabled", "https_enabled", "is_default")


def list_tracking_domains(*, server: Server) -> list[socketlabs.TrackingDomain]:
    return _call(server, "list the tracking domains", lambda c: c.tracking_domains.list())


def _flags(flags: Mapping[str, bool | None]) -> dict[str, bool]:
    unknown = set(flags) - set(TRACKING_FLAGS)
    if unknown:
        raise SendingError(f"Unknown tracking setting(s): {', '.join(sorted(unknown))}.")
    return {k: bool(v) for k, v in flags.items() if v is not None}


def add_tracking_domain(
    *, request: HttpRequest | None, actor: Any, server: Server, domain: str, flags: Mapping[str, bool | None]
) -> socketlabs.TrackingDomain:
    name = _domain(domain)
    settings = _flags(flags)
    added = _call(server, f"add the tracking domain {name}", lambda c: c.tracking_domains.add(name, **settings))
    audit.record(
        action="sending.tracking.add", request=request, actor=actor, server=server, target=name, after=settings
    )
    return added


def update_tracking_domain(
    *, request: HttpRequest | None, actor: Any, server: Server, domain: str, flags: Mapping[str, bool | None]
) -> socketlabs.TrackingDomain:
    name = _domain(domain)
    settings = _flags(flags)
    if not settings:
        raise SendingError("Nothing to change.")
    current = next((t for t in list_tracking_domains(server=server) if t.domain.lower() == name), None)
    updated = _call(server, f"change the tracking domain {name}", lambda c: c.tracking_domains.update(name, **settings))
    audit.record(
        action="sending.tracking.update",
        request=request,
        actor=actor,
        server=server,
        target=name,
        before={k: getattr(current, k) for k in settings} if current else None,
        after={k: getattr(updated, k) for k in settings},
    )
    return updated


def remove_tracking_domain(*, request: HttpRequest | None, actor: Any, server: Server, domain: str) -> None:
    name = _domain(domain)
    _call(server, f"remove the tracking domain {name}", lambda c: c.tracking_domains.delete(name))
    DnsCheckResult.objects.filter(server=server, kind=RecordKind.TRACKING, host=name).delete()
    audit.record(action="sending.tracking.remove", request=request, actor=actor, server=server, target=name)


# --- DNS checks ------------------------------------------------------------------------------------
def cname_target(kind: str, domain: str) -> dns.Target:
    return dns.Target(kind, domain, domain, "CNAME", dns.CNAME_TARGET)


def store_result(*, server: Server, target: dns.Target, outcome: dns.Outcome) -> DnsCheckResult:
    result, _ = DnsCheckResult.objects.update_or_create(
        server=server,
        kind=target.kind,
        host=target.host,
        defaults={
            "domain": target.domain,
            "selector": target.selector,
            "rtype": target.rtype,
            "expected": target.expected_display,
            "published": list(outcome.published),
            "state": outcome.state,
            "detail": outcome.detail[:500],
            "checked_at": timezone.now(),
        },
    )
    return result


def check_record(*, server: Server, kind: str, domain: str, selector: str = "") -> DnsCheckResult:
    """One record, checked now (the row's "Check DNS" button): the expectation is read from SocketLabs."""
    name = _domain(domain)
    if kind in (RecordKind.BOUNCE, RecordKind.TRACKING):
        target = cname_target(kind, name)
    elif kind == RecordKind.DKIM:
        sel = _selector(selector)
        setup = DkimSetup.objects.open().filter(server=server, domain=name, selector=sel).first()
        if setup is not None:
            target = dkim_target(setup)
        else:
            record = next(
                (r for r in list_dkim(server=server) if r.domain.lower() == name and r.selector.lower() == sel), None
            )
            if record is None:
                raise SendingError(f"SocketLabs has no DKIM key for {dkim.host_name(name, sel)}.", status=404)
            target = dns.Target(kind, name, dkim_host(record), "TXT", dkim_public_key(record), selector=sel)
    elif kind == RecordKind.SENDING_DOMAIN:
        current = _call(server, f"read the sending domain {name}", lambda c: c.sending_domains.get(name))
        if not current.verification_record:
            raise SendingError(f"SocketLabs gave no verification record for {name}, so there is nothing to check.")
        target = dns.Target(kind, name, name, "TXT", current.verification_record)
    else:
        raise SendingError(f"Unknown record kind “{kind}”.")
    return store_result(server=server, target=target, outcome=dns.check(target))


def targets_for(server: Server, sl: socketlabs.SocketLabsClient) -> list[dns.Target]:
    """Every record Mailroom expects for this server: read from SocketLabs, plus DKIM keys on their way in."""
    targets: list[dns.Target] = []
    for domain in sl.sending_domains.list():
        if domain.verification_record:
            name = domain.domain.lower()
            targets.append(
                dns.Target(
                    RecordKind.SENDING_DOMAIN, name, name, "TXT", domain.verification_record, server_id=server.pk
                )
            )
    for record in sl.dkim.list():
        public = dkim_public_key(record)
        if public:
            targets.append(
                dns.Target(
                    RecordKind.DKIM,
                    record.domain.lower(),
                    dkim_host(record),
                    "TXT",
                    public,
                    record.selector.lower(),
                    server.pk,
                )
            )
    for setup in DkimSetup.objects.open().filter(server=server, step=SetupStep.PUBLISH):
        targets.append(
            dns.Target(RecordKind.DKIM, setup.domain, setup.host, "TXT", setup.public_key, setup.selector, server.pk)
        )
    for bounce in sl.bounce_domains.list():
        targets.append(
            dns.Target(
                RecordKind.BOUNCE,
                bounce.domain.lower(),
                bounce.domain.lower(),
                "CNAME",
                dns.CNAME_TARGET,
                server_id=server.pk,
            )
        )
    for tracking in sl.tracking_domains.list():
        name = tracking.domain.lower()
        targets.append(dns.Target(RecordKind.TRACKING, name, name, "CNAME", dns.CNAME_TARGET, server_id=server.pk))
    unique: dict[tuple[str, str], dns.Target] = {}
    for target in targets:
        unique.setdefault(target.key, target)
    return builtins.list(unique.values())


def start_dns_job(
    *,
    request: HttpRequest | None,
    actor: Any,
    servers: Sequence[Server],
    server: Server | None = None,
    trigger: str = "manual",
) -> DnsCheckJob:
    """A job for the Celery task; enqueued when the transaction commits."""
    from sending.tasks import run_dns_check_job

    job = DnsCheckJob.objects.create(
        server=server, server_ids=[s.pk for s in servers], requested_by=actor, trigger=trigger
    )
    if actor is not None:
        for each in servers:
            audit.record(action="sending.dns.check", request=request, actor=actor, server=each, target=f"job {job.pk}")
    run_dns_check_job.delay_on_commit(str(job.pk))  # type: ignore[attr-defined]
    return job


def run_dns_job(job_id: Any) -> DnsCheckJob | None:
    """Run a queued job: list each server's records at SocketLabs, check them all, store results and progress.

    Claimed with a conditional update, so a duplicate delivery of the task does nothing.
    """
    claimed = DnsCheckJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    job = DnsCheckJob.objects.get(pk=job_id)
    errors: list[str] = []
    plan: list[tuple[Server, list[dns.Target]]] = []
    for server in Server.objects.filter(pk__in=job.server_ids).order_by("name"):
        try:
            plan.append((server, targets_for(server, client(server, interactive=False))))
        except socketlabs.SocketLabsError as exc:
            errors.append(f"{server.name}: {explain(exc, server=server, doing='list its domains')}")
    by_id = {server.pk: server for server, _ in plan}
    DnsCheckJob.objects.filter(pk=job.pk).update(total=sum(len(t) for _, t in plan), errors=errors)

    def save(target: dns.Target, outcome: dns.Outcome) -> None:
        assert target.server_id is not None
        store_result(server=by_id[target.server_id], target=target, outcome=outcome)
        job.advance(problems=0 if outcome.ok else 1)

    dns.Batch([t for _, targets in plan for t in targets]).run(save)
    # Records SocketLabs no longer lists are no longer expected: drop their old results.
    for server, targets in plan:
        keep = {t.key for t in targets}
        for stale in DnsCheckResult.objects.filter(server=server):
            if (stale.kind, stale.host) not in keep:
                stale.delete()
    status = JobStatus.FAILED if errors and not plan else JobStatus.DONE
    DnsCheckJob.objects.filter(pk=job.pk).update(status=status, finished_at=timezone.now())
    job.refresh_from_db()
    return job


def nightly_dns_checks() -> DnsCheckJob | None:
    servers = list(Server.objects.all())
    if not servers:
        return None
    return start_dns_job(request=None, actor=None, servers=servers, trigger="nightly")
