"""Refuse outbound requests to this network's own hosts (SSRF) unless explicitly allowed.

Mailroom POSTs to URLs that Ops users type (inbound forwarding). In production those must be
public hosts: a URL naming loopback, a private range, link-local (cloud metadata) or another
reserved address would let a panel user reach services behind the firewall.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class BlockedTarget(ValueError):
    """The URL's host is not a public address."""


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return ip.is_global and not ip.is_multicast


def check_public_url(url: str) -> None:
    """Raise BlockedTarget unless every address the URL's host resolves to is public.

    With MAILROOM_ALLOW_PRIVATE_TARGETS on (development and tests) nothing is resolved or refused.
    A name that does not resolve passes here: the request itself will then fail to connect.
    """
    if settings.MAILROOM_ALLOW_PRIVATE_TARGETS:
        return
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise BlockedTarget(f"“{url}” names no host.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return
    for info in infos:
        address = str(info[4][0])
        if not _is_public(address):
            raise BlockedTarget(
                f"{host} resolves to {address}, which is not a public address. "
                "Mailroom only forwards to public hosts (set MAILROOM_ALLOW_PRIVATE_TARGETS to change this)."
            )
