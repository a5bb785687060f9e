"""Our own DNS checks: what is published for a DKIM key, a domain verification, a bounce or tracking CNAME.

dnspython with the nameservers and timeout from settings (`MAILROOM_DNS_NAMESERVERS`, empty =
the system's resolv.conf; `MAILROOM_DNS_TIMEOUT` seconds for the whole lookup). Every outcome
is one of `DnsState`: NXDOMAIN, no record, a wrong value, several records, a timeout and other
DNS failures are told apart, and only a real match is OK — a lookup that did not complete is
"unknown, retry later", never "verified" (R21).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
from django.conf import settings

from sending import dkim
from sending.models import DnsState, RecordKind

MAX_CNAME_HOPS = 8
# Where custom bounce and engagement-tracking domains must point (SocketLabs help pages H-BOUNCE, H-TRACK).
CNAME_TARGET = "tracking.socketlabs.com"


# --- lookups --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Lookup:
    """One DNS query's outcome: `answer` (with values), `nodata`, `nxdomain`, `timeout` or `error`."""

    outcome: str
    values: tuple[str, ...] = ()
    detail: str = ""


def parse_nameserver(text: str) -> tuple[str, int]:
    """`1.1.1.1`, `1.1.1.1:5353`, `::1` or `[::1]:5353` → (address, port)."""
    value = text.strip()
    if value.startswith("["):
        address, _, rest = value[1:].partition("]")
        port = rest.lstrip(":")
        return address, int(port) if port else 53
    if value.count(":") == 1:
        address, port = value.split(":")
        return address, int(port)
    return value, 53


def make_resolver() -> dns.resolver.Resolver:
    configured = list(getattr(settings, "MAILROOM_DNS_NAMESERVERS", []) or [])
    timeout = float(getattr(settings, "MAILROOM_DNS_TIMEOUT", 5.0))
    if configured:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(*parse_nameserver(ns)) for ns in configured]
    else:
        resolver = dns.resolver.Resolver()  # the system's resolv.conf
    # One budget for the whole lookup, and no retrying a SERVFAIL within it: the answer is shown to a person.
    resolver.timeout = timeout
    resolver.lifetime = timeout
    resolver.retry_servfail = False
    resolver.cache = None
    return resolver


def timeout_seconds() -> float:
    return float(getattr(settings, "MAILROOM_DNS_TIMEOUT", 5.0))


def lookup(name: str, rtype: str, resolver: dns.resolver.Resolver | None = None) -> Lookup:
    try:
        resolver = resolver or make_resolver()
        answer = resolver.resolve(name, rtype, raise_on_no_answer=True, search=False)
    except dns.resolver.NXDOMAIN:
        return Lookup("nxdomain", detail=f"{name} does not exist (NXDOMAIN).")
    except dns.resolver.NoAnswer:
        return Lookup("nodata", detail=f"{name} exists but has no {rtype} record.")
    except dns.exception.Timeout:
        return Lookup(
            "timeout",
            detail=f"The DNS server did not answer for {name} within {timeout_seconds():g} s. Unknown: retry later.",
        )
    except dns.resolver.NoNameservers as exc:
        return Lookup("error", detail=f"The DNS server failed to answer for {name} ({_first_error(exc)}). Retry later.")
    except dns.resolver.NoResolverConfiguration:
        return Lookup("error", detail="No DNS server is configured: set MAILROOM_DNS_NAMESERVERS.")
    except (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel) as exc:
        return Lookup("error", detail=f"{name} is not a valid DNS name ({exc}).")
    except dns.exception.DNSException as exc:
        return Lookup("error", detail=f"DNS lookup of {name} failed: {exc}. Retry later.")
    if rtype == "TXT":
        values = tuple(b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer)
    else:
        values = tuple(_name(rdata.to_text()) for rdata in answer)
    return Lookup("answer", values=values)


def _first_error(exc: dns.resolver.NoNameservers) -> str:
    errors = exc.kwargs.get("errors") or []
    if errors:
        text = str(errors[0][3]) if len(errors[0]) > 3 else str(errors[0])
        return text or "SERVFAIL"
    return "SERVFAIL"


def _name(text: str) -> str:
    return text.rstrip(".").lower()


# --- checks ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """One record Mailroom expects to be published for a server."""

    kind: str
    domain: str
    host: str
    rtype: str
    expected: str  # DKIM: the `p=` value; sending domain: the TXT value; bounce/tracking: the CNAME target
    selector: str = ""
    server_id: int | None = None  # Mailroom's Server pk, for batch checks

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.host)

    @property
    def expected_display(self) -> str:
        if self.kind == RecordKind.DKIM:
            return dkim.txt_value(self.expected)
        return self.expected


@dataclass(frozen=True)
class Outcome:
    state: str
    published: tuple[str, ...] = ()
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state == DnsState.OK


def _failed_lookup(found: Lookup, missing: str) -> Outcome:
    state = {
        "nxdomain": DnsState.NXDOMAIN,
        "nodata": DnsState.MISSING,
        "timeout": DnsState.TIMEOUT,
        "error": DnsState.ERROR,
    }[found.outcome]
    return Outcome(state, (), missing if found.outcome == "nodata" else found.detail)


def _tail(value: str) -> str:
    compact = "".join(value.split())
    return f"…{compact[-12:]}" if len(compact) > 12 else compact


def check_dkim(host: str, public_key: str, resolver: dns.resolver.Resolver | None = None) -> Outcome:
    """The TXT record at `host` must be exactly one DKIM record whose `p=` is this public key."""
    found = lookup(host, "TXT", resolver)
    if found.outcome != "answer":
        return _failed_lookup(found, f"There is no TXT record at {host}. Publish the DKIM record there.")
    records = [v for v in found.values if dkim.looks_like_dkim(v)]
    if not records:
        return Outcome(
            DnsState.MISSING,
            found.values,
            f"{host} has {len(found.values)} TXT record(s), but none is a DKIM key (v=DKIM1; … p=…).",
        )
    if len(records) > 1:
        return Outcome(
            DnsState.MULTIPLE,
            found.values,
            f"{host} has {len(records)} DKIM records; receivers may pick any of them. Keep exactly one.",
        )
    tags = dkim.parse_tags(records[0])
    published = tags.get("p", "")
    if tags.get("v") and tags["v"].upper() != "DKIM1":
        return Outcome(DnsState.WRONG, found.values, f"The record's v= is “{tags['v']}”; it must be DKIM1.")
    if tags.get("k") and tags["k"].lower() != "rsa":
        return Outcome(DnsState.WRONG, found.values, f"The record's k= is “{tags['k']}”; this key is rsa.")
    if not published:
        return Outcome(DnsState.WRONG, found.values, "The record's p= is empty, which means the key is revoked.")
    if not dkim.valid_b64(published):
        return Outcome(DnsState.WRONG, found.values, "The record's p= is not valid base64: is part of it missing?")
    if not dkim.same_public_key(published, public_key):
        return Outcome(
            DnsState.WRONG,
            found.values,
            f"The published p= ({_tail(published)}) is not this key's public key ({_tail(public_key)}).",
        )
    return Outcome(DnsState.OK, found.values, "The published DKIM record matches the key.")


def check_txt_value(host: str, expected: str, resolver: dns.resolver.Resolver | None = None) -> Outcome:
    """One of the TXT records at `host` must equal `expected` (other TXT records, e.g. SPF, may sit beside it)."""
    found = lookup(host, "TXT", resolver)
    if found.outcome != "answer":
        return _failed_lookup(found, f"There is no TXT record at {host}. Publish “{expected}” there.")
    if any(v.strip() == expected.strip() for v in found.values):
        return Outcome(DnsState.OK, found.values, "The verification record is published.")
    prefix = expected.split("=", 1)[0] + "=" if "=" in expected else ""
    if prefix and any(v.strip().startswith(prefix) for v in found.values):
        return Outcome(
            DnsState.WRONG, found.values, f"A {prefix}… record is published at {host}, but with another value."
        )
    return Outcome(
        DnsState.MISSING,
        found.values,
        f"{host} has {len(found.values)} TXT record(s), but not “{expected}”.",
    )


def check_cname(host: str, target: str = CNAME_TARGET, resolver: dns.resolver.Resolver | None = None) -> Outcome:
    """`host` must be an alias of `target`, directly or through a chain of CNAMEs."""
    target = _name(target)
    first = lookup(host, "CNAME", resolver)
    if first.outcome != "answer":
        return _failed_lookup(first, f"{host} has no CNAME record. Point it to {target}.")
    chain = [_name(host), first.values[0]]
    while chain[-1] != target:
        if len(chain) > MAX_CNAME_HOPS:
            return Outcome(
                DnsState.WRONG, tuple(chain[1:]), f"The CNAME chain from {host} is longer than {MAX_CNAME_HOPS}."
            )
        step = lookup(chain[-1], "CNAME", resolver)
        if step.outcome in ("timeout", "error"):
            return Outcome(
                DnsState(step.outcome), tuple(chain[1:]), f"While following {' → '.join(chain)}: {step.detail}"
            )
        if step.outcome != "answer":
            break  # the chain ends at a name that is not an alias
        if step.values[0] in chain:
            return Outcome(
                DnsState.WRONG, tuple(chain[1:]), f"The CNAMEs loop: {' → '.join([*chain, step.values[0]])}."
            )
        chain.append(step.values[0])
    if chain[-1] == target:
        via = f" through {' → '.join(chain[1:-1])}" if len(chain) > 2 else ""
        return Outcome(DnsState.OK, tuple(chain[1:]), f"{host} points to {target}{via}.")
    path = " → ".join(chain[1:])
    return Outcome(DnsState.WRONG, tuple(chain[1:]), f"{host} points to {path}, not {target}.")


def check(target: Target, resolver: dns.resolver.Resolver | None = None) -> Outcome:
    checkers: dict[str, Callable[[], Outcome]] = {
        RecordKind.DKIM: lambda: check_dkim(target.host, target.expected, resolver),
        RecordKind.SENDING_DOMAIN: lambda: check_txt_value(target.host, target.expected, resolver),
        RecordKind.BOUNCE: lambda: check_cname(target.host, target.expected, resolver),
        RecordKind.TRACKING: lambda: check_cname(target.host, target.expected, resolver),
    }
    return checkers[target.kind]()


@dataclass
class Batch:
    """Several checks, run a few at a time (DNS answers are waits, not work)."""

    targets: list[Target] = field(default_factory=list)
    workers: int = 8

    def run(self, on_result: Callable[[Target, Outcome], None]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        if not self.targets:
            return
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(self.targets)))) as pool:
            # map keeps the order and lets the caller (the main thread) do every database write.
            for target, outcome in zip(self.targets, pool.map(_safe_check, self.targets), strict=True):
                on_result(target, outcome)


def _safe_check(target: Target) -> Outcome:
    try:
        return check(target)
    except Exception as exc:  # noqa: BLE001 - one bad record must not stop the batch
        return Outcome(DnsState.ERROR, (), f"The check failed unexpectedly: {type(exc).__name__}. Retry later.")
