"""R21: our DNS checks against a real DNS server on loopback, one failure mode at a time.

Every case tells its state apart from the others, and only a real match is OK: NXDOMAIN, no
record, a wrong value, several records, a timeout and a SERVFAIL never come out as verified.
"""

from __future__ import annotations

import time

import pytest

from sending import dkim, dns
from sending.models import DnsState, RecordKind
from tests.dnsfixture import Zone

HOST = "mr1._domainkey.example.com"


@pytest.fixture(scope="module")
def key() -> dkim.KeyPair:
    return dkim.generate_key()


@pytest.fixture(scope="module")
def other_key() -> dkim.KeyPair:
    return dkim.generate_key()


def test_it_accepts_a_matching_record_split_into_255_byte_strings(dns_zone: Zone, key: dkim.KeyPair) -> None:
    value = dkim.txt_value(key.public_b64)
    assert len(value) > 255  # a 2048-bit key does not fit in one string
    dns_zone.txt(HOST, value)
    outcome = dns.check_dkim(HOST, key.public_b64)
    assert outcome.state == DnsState.OK
    assert outcome.published == (value,)  # the strings were joined back


def test_it_joins_strings_split_anywhere_even_inside_the_key(dns_zone: Zone, key: dkim.KeyPair) -> None:
    value = dkim.txt_value(key.public_b64)
    dns_zone.txt(HOST, [value[:40], value[40:290], value[290:]])
    assert dns.check_dkim(HOST, key.public_b64).state == DnsState.OK


def test_it_ignores_whitespace_that_zone_editors_leave_inside_p(dns_zone: Zone, key: dkim.KeyPair) -> None:
    public = key.public_b64
    dns_zone.txt(HOST, f"v=DKIM1;k=rsa; p={public[:100]} {public[100:]}")
    assert dns.check_dkim(HOST, public).state == DnsState.OK


def test_it_reports_a_name_that_does_not_exist_as_nxdomain(dns_zone: Zone, key: dkim.KeyPair) -> None:
    outcome = dns.check_dkim(HOST, key.public_b64)
    assert outcome.state == DnsState.NXDOMAIN
    assert "does not exist" in outcome.detail
    assert (HOST, "TXT") in dns_zone.queries


def test_it_reports_a_name_without_txt_records_as_missing(dns_zone: Zone, key: dkim.KeyPair) -> None:
    dns_zone.exists(HOST)
    outcome = dns.check_dkim(HOST, key.public_b64)
    assert outcome.state == DnsState.MISSING
    assert f"no TXT record at {HOST}" in outcome.detail


def test_it_reports_a_timeout_as_unknown_and_never_as_verified(dns_zone: Zone, key: dkim.KeyPair, settings) -> None:
    settings.MAILROOM_DNS_TIMEOUT = 0.3
    dns_zone.silent(HOST)
    started = time.monotonic()
    outcome = dns.check_dkim(HOST, key.public_b64)
    elapsed = time.monotonic() - started
    assert outcome.state == DnsState.TIMEOUT
    assert not outcome.ok
    assert DnsState.badge(outcome.state) == "status-unknown"
    assert "retry later" in outcome.detail
    assert 0.25 <= elapsed < 2, "the configured timeout bounds the lookup"


def test_it_reports_a_servfail_as_a_dns_error_not_a_verdict(dns_zone: Zone, key: dkim.KeyPair) -> None:
    dns_zone.servfail(HOST)
    outcome = dns.check_dkim(HOST, key.public_b64)
    assert outcome.state == DnsState.ERROR
    assert DnsState.badge(outcome.state) == "status-unknown"


def test_it_finds_the_dkim_record_among_other_txt_records(dns_zone: Zone, key: dkim.KeyPair) -> None:
    dns_zone.txt(HOST, "v=spf1 include:_spf.example.net -all", dkim.txt_value(key.public_b64), "note=hello")
    outcome = dns.check_dkim(HOST, key.public_b64)
    assert outcome.state == DnsState.OK
    assert len(outcome.published) == 3


def test_it_reports_txt_records_without_any_dkim_record_as_missing(dns_zone: Zone, key: dkim.KeyPair) -> None:
    dns_zone.txt(HOST, "v=spf1 -all")
    outcome = dns.check_dkim(HOST, key.public_b64)
    assert outcome.state == DnsState.MISSING
    assert "none is a DKIM key" in outcome.detail


def test_it_reports_two_dkim_records_at_one_name(dns_zone: Zone, key: dkim.KeyPair, other_key: dkim.KeyPair) -> None:
    dns_zone.txt(HOST, dkim.txt_value(key.public_b64), dkim.txt_value(other_key.public_b64))
    outcome = dns.check_dkim(HOST, key.public_b64)
    assert outcome.state == DnsState.MULTIPLE
    assert "Keep exactly one" in outcome.detail


def test_it_reports_another_keys_p_as_a_wrong_value(dns_zone: Zone, key: dkim.KeyPair, other_key: dkim.KeyPair) -> None:
    dns_zone.txt(HOST, dkim.txt_value(other_key.public_b64))
    outcome = dns.check_dkim(HOST, key.public_b64)
    assert outcome.state == DnsState.WRONG
    assert other_key.public_b64[-12:] in outcome.detail
    assert key.public_b64[-12:] in outcome.detail


def test_it_reports_a_truncated_p_as_a_wrong_value(dns_zone: Zone, key: dkim.KeyPair) -> None:
    # A provider that kept only the first 255 bytes of the record.
    dns_zone.txt(HOST, dkim.txt_value(key.public_b64)[:255])
    outcome = dns.check_dkim(HOST, key.public_b64)
    assert outcome.state == DnsState.WRONG


def test_it_reports_an_empty_p_as_a_revoked_key(dns_zone: Zone, key: dkim.KeyPair) -> None:
    dns_zone.txt(HOST, "v=DKIM1; k=rsa; p=")
    outcome = dns.check_dkim(HOST, key.public_b64)
    assert outcome.state == DnsState.WRONG
    assert "revoked" in outcome.detail


def test_it_reports_a_wrong_key_type(dns_zone: Zone, key: dkim.KeyPair) -> None:
    dns_zone.txt(HOST, f"v=DKIM1; k=ed25519; p={key.public_b64}")
    assert dns.check_dkim(HOST, key.public_b64).state == DnsState.WRONG


def test_it_follows_a_cname_to_a_dkim_record_hosted_elsewhere(dns_zone: Zone, key: dkim.KeyPair) -> None:
    dns_zone.cname(HOST, "mr1.dkim.provider.example.net")
    dns_zone.txt("mr1.dkim.provider.example.net", dkim.txt_value(key.public_b64))
    assert dns.check_dkim(HOST, key.public_b64).state == DnsState.OK


def test_it_reports_a_cname_to_nowhere_as_nxdomain(dns_zone: Zone, key: dkim.KeyPair) -> None:
    dns_zone.cname(HOST, "gone.provider.example.net")
    assert dns.check_dkim(HOST, key.public_b64).state == DnsState.NXDOMAIN


# --- CNAME checks (bounce and tracking domains) -------------------------------------------------------
BOUNCE = "bounce.example.com"


def test_it_accepts_a_cname_pointing_straight_to_socketlabs(dns_zone: Zone) -> None:
    dns_zone.cname(BOUNCE, "tracking.socketlabs.com")
    outcome = dns.check_cname(BOUNCE)
    assert outcome.state == DnsState.OK
    assert outcome.published == ("tracking.socketlabs.com",)


def test_it_follows_a_chain_of_cnames_to_socketlabs(dns_zone: Zone) -> None:
    dns_zone.cname(BOUNCE, "alias.example.net")
    dns_zone.cname("alias.example.net", "Tracking.SocketLabs.com.")
    outcome = dns.check_cname(BOUNCE)
    assert outcome.state == DnsState.OK
    assert "through alias.example.net" in outcome.detail


def test_it_reports_a_chain_that_ends_elsewhere_as_a_wrong_value(dns_zone: Zone) -> None:
    dns_zone.cname(BOUNCE, "alias.example.net")
    dns_zone.cname("alias.example.net", "mail.example.org")
    dns_zone.a("mail.example.org")
    outcome = dns.check_cname(BOUNCE)
    assert outcome.state == DnsState.WRONG
    assert outcome.detail == f"{BOUNCE} points to alias.example.net → mail.example.org, not tracking.socketlabs.com."


def test_it_reports_a_cname_loop(dns_zone: Zone) -> None:
    dns_zone.cname(BOUNCE, "a.example.net")
    dns_zone.cname("a.example.net", "b.example.net")
    dns_zone.cname("b.example.net", "a.example.net")
    outcome = dns.check_cname(BOUNCE)
    assert outcome.state == DnsState.WRONG
    assert "loop" in outcome.detail


def test_it_reports_a_name_without_cname_as_missing(dns_zone: Zone) -> None:
    dns_zone.a(BOUNCE)
    outcome = dns.check_cname(BOUNCE)
    assert outcome.state == DnsState.MISSING
    assert "Point it to tracking.socketlabs.com" in outcome.detail


def test_it_reports_a_missing_bounce_domain_as_nxdomain(dns_zone: Zone) -> None:
    assert dns.check_cname(BOUNCE).state == DnsState.NXDOMAIN


def test_it_reports_a_timeout_halfway_along_a_chain_as_unknown(dns_zone: Zone) -> None:
    dns_zone.cname(BOUNCE, "slow.example.net")
    dns_zone.silent("slow.example.net")
    outcome = dns.check_cname(BOUNCE)
    assert outcome.state == DnsState.TIMEOUT
    assert "slow.example.net" in outcome.detail


# --- verification TXT (sending domains) --------------------------------------------------------------
def test_it_finds_the_verification_record_beside_spf(dns_zone: Zone) -> None:
    dns_zone.txt("example.com", "v=spf1 -all", "socketlabs-verification=abc123")
    assert dns.check_txt_value("example.com", "socketlabs-verification=abc123").state == DnsState.OK


def test_it_reports_an_old_verification_value_as_wrong(dns_zone: Zone) -> None:
    dns_zone.txt("example.com", "socketlabs-verification=old")
    assert dns.check_txt_value("example.com", "socketlabs-verification=abc123").state == DnsState.WRONG


def test_it_reports_an_absent_verification_record_as_missing(dns_zone: Zone) -> None:
    dns_zone.txt("example.com", "v=spf1 -all")
    assert dns.check_txt_value("example.com", "socketlabs-verification=abc123").state == DnsState.MISSING


def test_check_dispatches_on_the_kind(dns_zone: Zone, key: dkim.KeyPair) -> None:
    dns_zone.txt(HOST, dkim.txt_value(key.public_b64))
    dns_zone.cname("t.example.com", "tracking.socketlabs.com")
    dkim_target = dns.Target(RecordKind.DKIM, "example.com", HOST, "TXT", key.public_b64, "mr1")
    cname_target = dns.Target(RecordKind.TRACKING, "t.example.com", "t.example.com", "CNAME", dns.CNAME_TARGET)
    assert dns.check(dkim_target).ok
    assert dns.check(cname_target).ok
    assert dkim_target.expected_display == dkim.txt_value(key.public_b64)


def test_a_batch_checks_every_target_and_survives_slow_ones(dns_zone: Zone, key: dkim.KeyPair, settings) -> None:
    settings.MAILROOM_DNS_TIMEOUT = 0.3
    targets = []
    for i in range(12):
        host = f"d{i}.example.com"
        if i % 3 == 0:
            dns_zone.silent(host)
        else:
            dns_zone.cname(host, "tracking.socketlabs.com")
        targets.append(dns.Target(RecordKind.BOUNCE, host, host, "CNAME", dns.CNAME_TARGET))
    seen: list[tuple[str, str]] = []
    started = time.monotonic()
    dns.Batch(targets).run(lambda target, outcome: seen.append((target.host, outcome.state)))
    assert [host for host, _ in seen] == [t.host for t in targets]
    assert [state for _, state in seen].count(DnsState.TIMEOUT) == 4
    assert time.monotonic() - started < 1.5, "slow names are waited for side by side"


# --- configuration -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[2001:db8::1]", ("2001:db8::1", 53)),
    ],
)
def test_it_reads_nameservers_with_or_without_a_port(text: str, expected: tuple[str, int]) -> None:
    assert dns.parse_nameserver(text) == expected


def test_it_asks_only_the_configured_nameserver(dns_zone: Zone, settings) -> None:
    resolver = dns.make_resolver()
    assert [(ns.address, ns.port) for ns in resolver.nameservers] == [  # type: ignore[union-attr]
        tuple(dns.parse_nameserver(settings.MAILROOM_DNS_NAMESERVERS[0]))
    ]
    assert resolver.lifetime == settings.MAILROOM_DNS_TIMEOUT
    dns_zone.cname(BOUNCE, "tracking.socketlabs.com")
    dns.check_cname(BOUNCE)
    assert dns_zone.queries == [(BOUNCE, "CNAME")]
