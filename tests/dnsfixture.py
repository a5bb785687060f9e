"""A real DNS server on loopback for tests, built on dnslib, serving zone data each test controls.

    def test_it_sees_the_record(dns_zone):
        dns_zone.txt("mr1._domainkey.example.com", "v=DKIM1; k=rsa; p=…")   # split into ≤255-byte strings
        dns_zone.txt("example.com", ["part one", "part two"], "v=spf1 -all")  # explicit strings, two records
        dns_zone.cname("bounce.example.com", "tracking.socketlabs.com")
        dns_zone.silent("slow.example.com")                                  # never answers → timeout
        dns_zone.servfail("broken.example.com")

Names not in the zone are NXDOMAIN; `exists()` makes a name that has no records of the asked type
(NOERROR, no data). Like a recursive resolver, a query for any type at an alias returns the CNAME
chain followed by the target's records. The server listens on 127.0.0.1 with a random UDP port,
and `dns_zone` points Mailroom's resolver there (MAILROOM_DNS_NAMESERVERS), so no test leaves the
machine. `dns_zone.queries` lists the (name, type) pairs asked, for tests that must prove a lookup
happened or did not.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from dnslib import CNAME, QTYPE, RCODE, RR, TXT, A, DNSRecord

TXT_STRING_MAX = 255


def _name(text: str) -> str:
    return text.rstrip(".").lower()


def _split(value: str) -> list[bytes]:
    data = value.encode()
    return [data[i : i + TXT_STRING_MAX] for i in range(0, len(data), TXT_STRING_MAX)] or [b""]


@dataclass
class Zone:
    """Records by lower-cased name: ("TXT", [strings]) / ("CNAME", target) / ("A", ip)."""

    records: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    silent_names: set[str] = field(default_factory=set)
    servfail_names: set[str] = field(default_factory=set)
    queries: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def txt(self, name: str, *values: str | Sequence[str]) -> None:
        """Add TXT records: a str is split into ≤255-byte strings, a list gives the strings as they are."""
        with self.lock:
            for value in values:
                strings = _split(value) if isinstance(value, str) else [s.encode() for s in value]
                if any(len(s) > TXT_STRING_MAX for s in strings):
                    raise ValueError(f"a TXT string holds at most {TXT_STRING_MAX} bytes")
                self.records.setdefault(_name(name), []).append(("TXT", strings))

    def cname(self, name: str, target: str) -> None:
        with self.lock:
            self.records[_name(name)] = [("CNAME", _name(target))]

    def a(self, name: str, address: str = "192.0.2.1") -> None:
        with self.lock:
            self.records.setdefault(_name(name), []).append(("A", address))

    def exists(self, name: str) -> None:
        """The name exists (NOERROR) but holds no TXT or CNAME."""
        self.a(name)

    def silent(self, name: str) -> None:
        with self.lock:
            self.silent_names.add(_name(name))

    def servfail(self, name: str) -> None:
        with self.lock:
            self.servfail_names.add(_name(name))

    def remove(self, name: str) -> None:
        with self.lock:
            self.records.pop(_name(name), None)

    def clear(self) -> None:
        with self.lock:
            self.records.clear()
            self.silent_names.clear()
            self.servfail_names.clear()
            self.queries.clear()

    def answer(self, data: bytes) -> bytes | None:
        request = DNSRecord.parse(data)
        qname = _name(str(request.q.qname))
        qtype = QTYPE[request.q.qtype]
        with self.lock:
            self.queries.append((qname, qtype))
            if qname in self.silent_names:
                return None
            reply = request.reply()
            if qname in self.servfail_names:
                reply.header.rcode = RCODE.SERVFAIL
                return reply.pack()
            name, seen = qname, set()
            while True:
                entries = self.records.get(name)
                if entries is None:
                    reply.header.rcode = RCODE.NXDOMAIN
                    break
                alias = next((value for kind, value in entries if kind == "CNAME"), None)
                if alias is not None and qtype != "CNAME" and name not in seen:
                    seen.add(name)
                    reply.add_answer(RR(name + ".", QTYPE.CNAME, rdata=CNAME(alias + "."), ttl=60))
                    if alias in self.silent_names:
                        return None
                    name = alias
                    continue
                for kind, value in entries:
                    if kind != qtype:
                        continue
                    if kind == "TXT":
                        reply.add_answer(RR(name + ".", QTYPE.TXT, rdata=TXT(value), ttl=60))
                    elif kind == "CNAME":
                        reply.add_answer(RR(name + ".", QTYPE.CNAME, rdata=CNAME(value + "."), ttl=60))
                    elif kind == "A":
                        reply.add_answer(RR(name + ".", QTYPE.A, rdata=A(value), ttl=60))
                break
            return reply.pack()


class DnsServer:
    """UDP on 127.0.0.1, a random port, one thread; answers from `zone`."""

    def __init__(self) -> None:
        self.zone = Zone()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> DnsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                reply = self.zone.answer(data)
            except Exception:  # noqa: BLE001 - a malformed packet must not stop the server
                continue
            if reply is not None:
                self.sock.sendto(reply, peer)


@pytest.fixture(scope="session")
def dns_server() -> Generator[DnsServer]:
    server = DnsServer().start()
    yield server
    server.stop()


@pytest.fixture
def dns_zone(dns_server: DnsServer, settings: Any) -> Generator[Zone]:
    """An empty zone on the loopback DNS server, with Mailroom's resolver pointed at it (short timeout)."""
    dns_server.zone.clear()
    settings.MAILROOM_DNS_NAMESERVERS = [dns_server.address]
    settings.MAILROOM_DNS_TIMEOUT = 0.4
    yield dns_server.zone
    dns_server.zone.clear()
