"""Sending-setup services against the sandbox over real HTTP, with DNS from the loopback DNS server."""

from __future__ import annotations

import pytest
from django.db import connection

from accounts.models import AuditLog, Server, User
from sandbox.models import (
    SandboxApiKey,
    SandboxBounceDomain,
    SandboxDkim,
    SandboxSendingDomain,
    SandboxTrackingDomain,
)
from sending import dkim, services
from sending.errors import SendingError
from sending.models import DkimSetup, DnsCheckJob, DnsCheckResult, DnsState, JobStatus, RecordKind, SetupStep
from tests.dnsfixture import Zone
from tests.sandbox.conftest import SandboxKeys, make_sandbox_server

pytestmark = pytest.mark.django_db(transaction=True)


def actions(server: Server) -> list[str]:
    return list(AuditLog.objects.filter(server=server).order_by("id").values_list("action", flat=True))


# --- API keys -------------------------------------------------------------------------------------------
def test_it_creates_a_key_and_hands_over_the_secret_only_in_the_answer(
    sl_server: Server, sandbox: SandboxKeys, ops: User
) -> None:
    key = services.create_api_key(
        request=None, actor=ops, server=sl_server, name="Shop checkout", permissions=["injection"]
    )
    assert key.secret and len(key.secret) == 61
    assert key.secret.startswith(key.public_part)
    assert key.permissions == ("injection",)
    stored = SandboxApiKey.objects.get(server=sandbox.server, name="Shop checkout")
    assert stored.permissions == ["injection"]
    listed = {k.name: k for k in services.list_api_keys(server=sl_server)}
    assert listed["Shop checkout"].secret is None
    entry = AuditLog.objects.get(server=sl_server, action="sending.api_key.create")
    assert entry.actor == ops
    assert key.secret not in str(entry.after)


def test_it_stores_the_new_key_as_mailroom_credential_encrypted_and_audited(sl_server: Server, admin: User) -> None:
    key = services.create_api_key(
        request=None, actor=admin, server=sl_server, name="Mailroom", permissions=["api"], use_for_mailroom=True
    )
    sl_server.refresh_from_db()
    assert sl_server.api_key == key.secret
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM accounts_server WHERE id = %s", [sl_server.pk])
        raw = cursor.fetchone()[0]
    assert key.secret not in raw
    assert actions(sl_server) == ["sending.api_key.create", "server.update"]
    update = AuditLog.objects.get(server=sl_server, action="server.update")
    assert update.after["api_key_changed"] is True
    assert key.secret not in str(update.after)
    # Mailroom keeps working with the key it just stored.
    assert "API" in services.key_in_use(sl_server, key)
    assert any(k.name == "Mailroom" for k in services.list_api_keys(server=sl_server))


def test_it_refuses_a_key_without_a_permission_or_a_name(sl_server: Server, ops: User, sandbox: SandboxKeys) -> None:
    before = SandboxApiKey.objects.count()
    with pytest.raises(SendingError, match="at least one permission") as no_permission:
        services.create_api_key(request=None, actor=ops, server=sl_server, name="x", permissions=[])
    assert no_permission.value.field == "permissions"
    with pytest.raises(SendingError, match="Give the key a name"):
        services.create_api_key(request=None, actor=ops, server=sl_server, name="  ", permissions=["api"])
    assert SandboxApiKey.objects.count() == before
    assert actions(sl_server) == []


def test_it_revokes_a_key_and_names_it_in_the_audit_log(sl_server: Server, ops: User, sandbox: SandboxKeys) -> None:
    key = services.create_api_key(request=None, actor=ops, server=sl_server, name="Old shop", permissions=["injection"])
    services.revoke_api_key(request=None, actor=ops, server=sl_server, key_id=key.id)
    assert not SandboxApiKey.objects.filter(pk=key.id).exists()
    entry = AuditLog.objects.get(server=sl_server, action="sending.api_key.revoke")
    assert entry.target == f"Old shop ({key.public_part})"


def test_revoking_an_unknown_key_says_socketlabs_refused(sl_server: Server, ops: User) -> None:
    with pytest.raises(SendingError, match=r"SocketLabs refused to revoke the API key 999999: .*\(404\)") as error:
        services.revoke_api_key(request=None, actor=ops, server=sl_server, key_id="999999")
    assert error.value.status == 404
    assert actions(sl_server) == []


# --- sending domains ------------------------------------------------------------------------------------
def test_it_adds_a_sending_domain_pending_verification(sl_server: Server, sandbox: SandboxKeys, ops: User) -> None:
    added = services.add_sending_domain(request=None, actor=ops, server=sl_server, domain="Mail.Example.COM.")
    assert added.domain == "mail.example.com"
    assert added.status == "Pending"
    assert added.verification_record
    assert SandboxSendingDomain.objects.filter(server=sandbox.server, domain="mail.example.com").exists()
    assert actions(sl_server) == ["sending.domain.add"]


def test_an_invalid_domain_never_reaches_socketlabs(sl_server: Server, sandbox: SandboxKeys, ops: User) -> None:
    with pytest.raises(SendingError, match="no spaces") as error:
        services.add_sending_domain(request=None, actor=ops, server=sl_server, domain="bad domain.com")
    assert error.value.field == "domain"
    assert not SandboxSendingDomain.objects.exists()


def test_adding_a_domain_twice_shows_socketlabs_words(sl_server: Server, sandbox: SandboxKeys, ops: User) -> None:
    services.add_sending_domain(request=None, actor=ops, server=sl_server, domain="example.com")
    with pytest.raises(SendingError) as error:
        services.add_sending_domain(request=None, actor=ops, server=sl_server, domain="example.com")
    assert error.value.message == (
        "SocketLabs refused to add the sending domain example.com: "
        f"example.com is already a sending domain of server {sandbox.server_id} (409)."
    )


def test_verify_checks_dns_first_and_does_not_ask_socketlabs_when_unpublished(
    sl_server: Server, sandbox: SandboxKeys, ops: User, dns_zone: Zone
) -> None:
    services.add_sending_domain(request=None, actor=ops, server=sl_server, domain="example.com")
    result = services.verify_sending_domain(request=None, actor=ops, server=sl_server, domain="example.com")
    assert not result.ok
    assert result.message.startswith("Not asking SocketLabs yet: example.com does not exist (NXDOMAIN).")
    assert SandboxSendingDomain.objects.get(domain="example.com").status == "Pending"
    assert DnsCheckResult.objects.get(server=sl_server, kind=RecordKind.SENDING_DOMAIN).state == DnsState.NXDOMAIN
    assert "sending.domain.verify" not in actions(sl_server)


def test_verify_asks_socketlabs_once_the_record_is_published(
    sl_server: Server, sandbox: SandboxKeys, ops: User, dns_zone: Zone
) -> None:
    added = services.add_sending_domain(request=None, actor=ops, server=sl_server, domain="example.com")
    dns_zone.txt("example.com", "v=spf1 -all", added.verification_record)
    result = services.verify_sending_domain(request=None, actor=ops, server=sl_server, domain="example.com")
    assert result.ok, result.message
    assert result.message == "SocketLabs verified example.com."
    assert SandboxSendingDomain.objects.get(domain="example.com").status == "Verified"
    assert actions(sl_server) == ["sending.domain.add", "sending.domain.verify"]


def test_a_dns_timeout_during_verify_is_unknown_and_socketlabs_is_not_asked(
    sl_server: Server, ops: User, dns_zone: Zone
) -> None:
    services.add_sending_domain(request=None, actor=ops, server=sl_server, domain="example.com")
    dns_zone.silent("example.com")
    result = services.verify_sending_domain(request=None, actor=ops, server=sl_server, domain="example.com")
    assert not result.ok
    assert result.outcome is not None and result.outcome.state == DnsState.TIMEOUT
    assert SandboxSendingDomain.objects.get(domain="example.com").status == "Pending"


def test_it_removes_a_sending_domain_and_its_check_results(sl_server: Server, ops: User, dns_zone: Zone) -> None:
    services.add_sending_domain(request=None, actor=ops, server=sl_server, domain="example.com")
    services.verify_sending_domain(request=None, actor=ops, server=sl_server, domain="example.com")
    services.remove_sending_domain(request=None, actor=ops, server=sl_server, domain="example.com")
    assert not SandboxSendingDomain.objects.exists()
    assert not DnsCheckResult.objects.filter(server=sl_server).exists()
    assert actions(sl_server)[-1] == "sending.domain.remove"


# --- DKIM -----------------------------------------------------------------------------------------------
def publish(zone: Zone, setup: DkimSetup) -> None:
    zone.txt(setup.host, setup.txt_value)


def test_it_asks_socketlabs_for_a_key_pair_and_keeps_the_private_key_encrypted_until_handover(
    sl_server: Server, ops: User, sandbox: SandboxKeys
) -> None:
    setup = services.start_dkim(request=None, actor=ops, server=sl_server, domain="example.com", selector="mr1")
    assert setup.step == SetupStep.PUBLISH
    assert setup.source == "generated"
    assert setup.host == "mr1._domainkey.example.com"
    assert dkim.parse_private_key(setup.private_key).public_b64 == setup.public_key
    with connection.cursor() as cursor:
        cursor.execute("SELECT private_key FROM sending_dkimsetup WHERE id = %s", [setup.pk])
        assert "PRIVATE KEY" not in cursor.fetchone()[0]
    assert not SandboxDkim.objects.exists(), "SocketLabs gets the key only once DNS matches"
    assert actions(sl_server) == ["sending.dkim.start"]


def test_it_takes_a_pasted_private_key_and_derives_the_record(sl_server: Server, ops: User) -> None:
    pair = dkim.generate_key()
    setup = services.start_dkim(
        request=None, actor=ops, server=sl_server, domain="example.com", selector="own", private_key=pair.private_pem
    )
    assert setup.source == "pasted"
    assert setup.public_key == pair.public_b64
    assert setup.txt_value == f"v=DKIM1; k=rsa; p={pair.public_b64}"


def test_a_bad_pasted_key_is_refused_before_anything_is_stored(sl_server: Server, ops: User) -> None:
    with pytest.raises(SendingError, match="not a readable private key") as error:
        services.start_dkim(
            request=None, actor=ops, server=sl_server, domain="example.com", selector="own", private_key="nonsense"
        )
    assert error.value.field == "private_key"
    assert not DkimSetup.objects.exists()


def test_verify_hands_the_key_to_socketlabs_only_after_our_dns_check_matches(
    sl_server: Server, ops: User, sandbox: SandboxKeys, dns_zone: Zone
) -> None:
    setup = services.start_dkim(request=None, actor=ops, server=sl_server, domain="example.com", selector="mr1")
    early = services.verify_dkim(request=None, actor=ops, setup=setup)
    assert not early.ok
    assert "NXDOMAIN" in early.message
    assert not SandboxDkim.objects.exists()

    publish(dns_zone, setup)
    done = services.verify_dkim(request=None, actor=ops, setup=setup)
    assert done.ok, done.message
    setup.refresh_from_db()
    assert setup.step == SetupStep.DONE
    assert setup.private_key == "", "SocketLabs holds the key now; Mailroom forgets it"
    entry = SandboxDkim.objects.get(server=sandbox.server, domain="example.com", selector="mr1")
    assert entry.public_key == setup.public_key
    assert entry.validation_status == "Verified"
    assert DnsCheckResult.objects.get(server=sl_server, host=setup.host).state == DnsState.OK
    assert actions(sl_server) == ["sending.dkim.start", "sending.dkim.verify"]


def test_verify_refuses_a_published_record_with_another_key(sl_server: Server, ops: User, dns_zone: Zone) -> None:
    setup = services.start_dkim(request=None, actor=ops, server=sl_server, domain="example.com", selector="mr1")
    dns_zone.txt(setup.host, dkim.txt_value(dkim.generate_key().public_b64))
    result = services.verify_dkim(request=None, actor=ops, setup=setup)
    assert not result.ok
    assert result.outcome is not None and result.outcome.state == DnsState.WRONG
    assert not SandboxDkim.objects.exists()


def test_a_key_socketlabs_does_not_verify_stays_waiting_and_is_retried_as_an_update(
    sl_server: Server, ops: User, dns_zone: Zone, settings
) -> None:
    setup = services.start_dkim(
        request=None, actor=ops, server=sl_server, domain="unverified.example.com", selector="mr1"
    )
    publish(dns_zone, setup)
    first = services.verify_dkim(request=None, actor=ops, setup=setup)
    assert not first.ok
    assert "SocketLabs reports “Failed”" in first.message
    setup.refresh_from_db()
    assert setup.step == SetupStep.PUBLISH and setup.added_at_socketlabs and setup.private_key
    # SocketLabs fixed on its side: the retry updates the entry it already has instead of adding a second.
    settings.SANDBOX_UNVERIFIED_MARKER = "no-such-marker"
    assert services.verify_dkim(request=None, actor=ops, setup=setup).ok
    assert SandboxDkim.objects.filter(domain="unverified.example.com").count() == 1


def test_it_refuses_a_selector_socketlabs_already_has(sl_server: Server, ops: User, dns_zone: Zone) -> None:
    setup = services.start_dkim(request=None, actor=ops, server=sl_server, domain="example.com", selector="mr1")
    publish(dns_zone, setup)
    services.verify_dkim(request=None, actor=ops, setup=setup)
    with pytest.raises(SendingError, match="already has a DKIM key for mr1._domainkey.example.com") as error:
        services.start_dkim(request=None, actor=ops, server=sl_server, domain="example.com", selector="mr1")
    assert error.value.status == 409


def test_it_refuses_a_second_open_key_for_the_same_selector(sl_server: Server, ops: User) -> None:
    services.start_dkim(request=None, actor=ops, server=sl_server, domain="example.com", selector="mr1")
    with pytest.raises(SendingError, match="already waiting to be published"):
        services.start_dkim(request=None, actor=ops, server=sl_server, domain="example.com", selector="mr1")


def _active_key(server: Server, actor: User, zone: Zone, selector: str = "mr1") -> DkimSetup:
    setup = services.start_dkim(request=None, actor=actor, server=server, domain="example.com", selector=selector)
    publish(zone, setup)
    assert services.verify_dkim(request=None, actor=actor, setup=setup).ok
    return setup


def test_a_rotation_publishes_verifies_switches_and_removes_the_old_key_without_a_gap(
    sl_server: Server, ops: User, sandbox: SandboxKeys, dns_zone: Zone
) -> None:
    old = _active_key(sl_server, ops, dns_zone)

    rotation = services.start_rotation(
        request=None, actor=ops, server=sl_server, domain="example.com", old_selector="mr1", new_selector="mr2"
    )
    assert rotation.is_rotation and rotation.old_host == old.host
    assert rotation.old_public_key == old.public_key
    signing = SandboxDkim.objects.filter(server=sandbox.server, domain="example.com")
    assert list(signing.values_list("selector", flat=True)) == ["mr1"], "the old key signs until the switch"

    with pytest.raises(SendingError, match="does not apply now"):
        services.switch_dkim(request=None, actor=ops, setup=rotation)

    publish(dns_zone, rotation)
    assert services.verify_dkim(request=None, actor=ops, setup=rotation).ok
    rotation.refresh_from_db()
    assert rotation.step == SetupStep.VERIFIED
    assert sorted(signing.values_list("selector", flat=True)) == ["mr1", "mr2"]

    switched = services.switch_dkim(request=None, actor=ops, setup=rotation)
    assert switched.ok
    rotation.refresh_from_db()
    assert rotation.step == SetupStep.SWITCHED
    assert list(signing.values_list("selector", flat=True)) == ["mr2"]

    still_there = services.finish_rotation(request=None, actor=ops, setup=rotation)
    assert not still_there.ok
    assert "still published at mr1._domainkey.example.com" in still_there.message

    dns_zone.remove(old.host)
    finished = services.finish_rotation(request=None, actor=ops, setup=rotation)
    assert finished.ok
    rotation.refresh_from_db()
    assert rotation.step == SetupStep.DONE
    assert actions(sl_server)[-4:] == [
        "sending.dkim.rotate_start",
        "sending.dkim.verify",
        "sending.dkim.switch",
        "sending.dkim.rotate_finish",
    ]


def test_finishing_a_rotation_waits_when_dns_does_not_answer(sl_server: Server, ops: User, dns_zone: Zone) -> None:
    old = _active_key(sl_server, ops, dns_zone)
    rotation = services.start_rotation(
        request=None, actor=ops, server=sl_server, domain="example.com", old_selector="mr1", new_selector="mr2"
    )
    publish(dns_zone, rotation)
    services.verify_dkim(request=None, actor=ops, setup=rotation)
    rotation.refresh_from_db()
    services.switch_dkim(request=None, actor=ops, setup=rotation)
    rotation.refresh_from_db()
    dns_zone.remove(old.host)
    dns_zone.silent(old.host)
    result = services.finish_rotation(request=None, actor=ops, setup=rotation)
    assert not result.ok
    assert "Could not tell" in result.message
    rotation.refresh_from_db()
    assert rotation.step == SetupStep.SWITCHED


def test_cancelling_a_verified_rotation_removes_the_new_key_and_keeps_the_old(
    sl_server: Server, ops: User, sandbox: SandboxKeys, dns_zone: Zone
) -> None:
    _active_key(sl_server, ops, dns_zone)
    rotation = services.start_rotation(
        request=None, actor=ops, server=sl_server, domain="example.com", old_selector="mr1", new_selector="mr2"
    )
    publish(dns_zone, rotation)
    services.verify_dkim(request=None, actor=ops, setup=rotation)
    rotation.refresh_from_db()
    services.cancel_dkim(request=None, actor=ops, setup=rotation)
    rotation.refresh_from_db()
    assert rotation.step == SetupStep.CANCELLED
    assert list(SandboxDkim.objects.filter(server=sandbox.server).values_list("selector", flat=True)) == ["mr1"]


def test_a_key_being_rotated_cannot_be_removed_or_rotated_twice(sl_server: Server, ops: User, dns_zone: Zone) -> None:
    _active_key(sl_server, ops, dns_zone)
    services.start_rotation(
        request=None, actor=ops, server=sl_server, domain="example.com", old_selector="mr1", new_selector="mr2"
    )
    with pytest.raises(SendingError, match="being rotated"):
        services.remove_dkim(request=None, actor=ops, server=sl_server, domain="example.com", selector="mr1")
    with pytest.raises(SendingError, match="already under way"):
        services.start_rotation(
            request=None, actor=ops, server=sl_server, domain="example.com", old_selector="mr1", new_selector="mr3"
        )
    with pytest.raises(SendingError, match="must differ"):
        services.start_rotation(
            request=None, actor=ops, server=sl_server, domain="example.com", old_selector="mr1", new_selector="mr1"
        )


def test_it_removes_a_dkim_key(sl_server: Server, ops: User, dns_zone: Zone, sandbox: SandboxKeys) -> None:
    _active_key(sl_server, ops, dns_zone)
    services.remove_dkim(request=None, actor=ops, server=sl_server, domain="example.com", selector="mr1")
    assert not SandboxDkim.objects.exists()
    assert not DnsCheckResult.objects.filter(server=sl_server, kind=RecordKind.DKIM).exists()
    assert actions(sl_server)[-1] == "sending.dkim.remove"


# --- bounce and tracking domains --------------------------------------------------------------------------
def test_it_adds_a_bounce_domain_toggles_the_default_and_removes_it(
    sl_server: Server, ops: User, sandbox: SandboxKeys
) -> None:
    services.add_bounce_domain(request=None, actor=ops, server=sl_server, domain="bounce.example.com")
    services.add_bounce_domain(request=None, actor=ops, server=sl_server, domain="b2.example.com", is_default=True)
    services.set_default_bounce_domain(
        request=None, actor=ops, server=sl_server, domain="bounce.example.com", is_default=True
    )
    defaults = dict(SandboxBounceDomain.objects.values_list("domain", "is_default"))
    assert defaults == {"bounce.example.com": True, "b2.example.com": False}
    services.remove_bounce_domain(request=None, actor=ops, server=sl_server, domain="b2.example.com")
    assert list(SandboxBounceDomain.objects.values_list("domain", flat=True)) == ["bounce.example.com"]
    assert actions(sl_server) == [
        "sending.bounce.add",
        "sending.bounce.add",
        "sending.bounce.update",
        "sending.bounce.remove",
    ]


def test_it_checks_a_bounce_domains_cname(sl_server: Server, ops: User, dns_zone: Zone) -> None:
    services.add_bounce_domain(request=None, actor=ops, server=sl_server, domain="bounce.example.com")
    dns_zone.cname("bounce.example.com", "bounces.example.net")
    dns_zone.a("bounces.example.net")
    wrong = services.check_record(server=sl_server, kind=RecordKind.BOUNCE, domain="bounce.example.com")
    assert wrong.state == DnsState.WRONG
    assert wrong.published == ["bounces.example.net"]
    dns_zone.cname("bounce.example.com", "tracking.socketlabs.com")
    right = services.check_record(server=sl_server, kind=RecordKind.BOUNCE, domain="bounce.example.com")
    assert right.pk == wrong.pk
    assert right.state == DnsState.OK


def test_it_adds_a_tracking_domain_with_its_toggles_and_changes_them(
    sl_server: Server, ops: User, sandbox: SandboxKeys
) -> None:
    flags = {"opens_enabled": True, "clicks_enabled": False, "unsubscribes_enabled": True, "https_enabled": True}
    added = services.add_tracking_domain(
        request=None, actor=ops, server=sl_server, domain="t.example.com", flags={**flags, "is_default": True}
    )
    assert (added.opens_enabled, added.clicks_enabled, added.https_enabled, added.is_default) == (
        True,
        False,
        True,
        True,
    )
    services.update_tracking_domain(
        request=None,
        actor=ops,
        server=sl_server,
        domain="t.example.com",
        flags={"clicks_enabled": True, "https_enabled": False},
    )
    stored = SandboxTrackingDomain.objects.get(domain="t.example.com")
    assert (stored.clicks_enabled, stored.https_enabled, stored.opens_enabled) == (True, False, True)
    update = AuditLog.objects.get(server=sl_server, action="sending.tracking.update")
    assert update.before == {"clicks_enabled": False, "https_enabled": True}
    assert update.after == {"clicks_enabled": True, "https_enabled": False}
    services.remove_tracking_domain(request=None, actor=ops, server=sl_server, domain="t.example.com")
    assert not SandboxTrackingDomain.objects.exists()


# --- DNS jobs -----------------------------------------------------------------------------------------------
def test_a_job_checks_every_record_of_the_server_and_stores_what_it_found(
    sl_server: Server, ops: User, dns_zone: Zone, settings
) -> None:
    settings.MAILROOM_DNS_TIMEOUT = 0.3
    added = services.add_sending_domain(request=None, actor=ops, server=sl_server, domain="example.com")
    dns_zone.txt("example.com", added.verification_record)
    key = _active_key(sl_server, ops, dns_zone)
    pending = services.start_dkim(request=None, actor=ops, server=sl_server, domain="example.com", selector="next")
    services.add_bounce_domain(request=None, actor=ops, server=sl_server, domain="bounce.example.com")
    dns_zone.cname("bounce.example.com", "tracking.socketlabs.com")
    services.add_tracking_domain(request=None, actor=ops, server=sl_server, domain="t.example.com", flags={})
    dns_zone.silent("t.example.com")
    DnsCheckResult.objects.create(
        server=sl_server,
        kind=RecordKind.BOUNCE,
        domain="old.example.com",
        host="old.example.com",
        rtype="CNAME",
        expected="x",
    )

    job = DnsCheckJob.objects.create(server=sl_server, server_ids=[sl_server.pk])
    done = services.run_dns_job(job.pk)
    assert done is not None
    assert (done.status, done.total, done.done, done.problems) == (JobStatus.DONE, 5, 5, 2)
    states = dict(DnsCheckResult.objects.filter(server=sl_server).values_list("host", "state"))
    assert states == {
        "example.com": DnsState.OK,
        key.host: DnsState.OK,
        pending.host: DnsState.NXDOMAIN,
        "bounce.example.com": DnsState.OK,
        "t.example.com": DnsState.TIMEOUT,
    }, "results of records SocketLabs no longer lists are dropped"
    assert services.run_dns_job(job.pk) is None, "a second delivery of the task does nothing"


def test_a_job_reports_a_server_whose_key_is_refused_and_checks_the_others(
    sl_server: Server, other_server: Server, ops: User, dns_zone: Zone
) -> None:
    other_server.api_url = sl_server.api_url
    other_server.socketlabs_id = make_sandbox_server(server_id=17002, name="Two", account_id=9002).server_id
    other_server.api_key = "wrong-key"
    other_server.save()
    services.add_bounce_domain(request=None, actor=ops, server=sl_server, domain="bounce.example.com")
    job = DnsCheckJob.objects.create(server_ids=[sl_server.pk, other_server.pk])
    done = services.run_dns_job(job.pk)
    assert done is not None and done.status == JobStatus.DONE
    assert done.total == 1
    assert done.errors == [
        "Other-2: SocketLabs refused the API key for server 17002 (401). Check the key under Admin → Servers."
    ]


def test_the_nightly_check_queues_one_job_over_every_server(
    server: Server, other_server: Server, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    from sending import tasks

    queued: list[str] = []
    monkeypatch.setattr(tasks.run_dns_check_job, "delay", lambda job_id: queued.append(job_id))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.nightly_dns_checks.apply()
    job = DnsCheckJob.objects.get()
    assert sorted(job.server_ids) == sorted([server.pk, other_server.pk])
    assert job.trigger == "nightly"
    assert queued == [str(job.pk)]


def test_the_task_runs_a_job_by_id(sl_server: Server, ops: User, dns_zone: Zone) -> None:
    from sending.tasks import run_dns_check_job

    services.add_bounce_domain(request=None, actor=ops, server=sl_server, domain="bounce.example.com")
    dns_zone.cname("bounce.example.com", "tracking.socketlabs.com")
    job = DnsCheckJob.objects.create(server=sl_server, server_ids=[sl_server.pk])
    assert run_dns_check_job.apply(args=[str(job.pk)]).get() == "done"
    assert run_dns_check_job.apply(args=[str(job.pk)]).get() is None
    assert DnsCheckResult.objects.get(server=sl_server).state == DnsState.OK


def test_the_command_checks_every_server_now(sl_server: Server, ops: User, dns_zone: Zone, capsys) -> None:
    from django.core.management import call_command

    services.add_bounce_domain(request=None, actor=ops, server=sl_server, domain="bounce.example.com")
    call_command("check_dns")
    assert "Checked 1 record(s) on 1 server(s); 1 need attention." in capsys.readouterr().out
    assert DnsCheckResult.objects.get(server=sl_server).state == DnsState.NXDOMAIN
