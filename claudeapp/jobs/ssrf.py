"""SSRF guard for webhook URLs: only public http(s) targets, checked on the resolved addresses.

Checked when a job is created (so the caller gets a 400 naming webhook_url) and again at
delivery, where the POST is sent to the very address that was checked, so a DNS answer
that changes in between (rebinding) cannot steer it inside.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from claudeapp.jobs.errors import InvalidWebhookUrl

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    address: str  # the checked IP the request must go to


def check_url(url: str, *, allow_private: bool | None = None) -> Target:
    """Resolve the URL's host and refuse non-public addresses unless private targets are allowed."""
    allow = settings.JOBS_WEBHOOK_ALLOW_PRIVATE if allow_private is None else allow_private
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhookUrl(url=url, reason="only http and https URLs are allowed")
    if not parts.hostname or parts.username or parts.password:
        raise InvalidWebhookUrl(url=url, reason="a host is required and credentials are not allowed")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidWebhookUrl(url=url, reason="invalid port") from None
    addresses = _resolve(url, parts.hostname, port)
    if not allow:
        for address in addresses:
            if not is_public(address):
                raise InvalidWebhookUrl(url=url, reason=f"{parts.hostname} resolves to a non-public address")
    return Target(scheme=parts.scheme, host=parts.hostname, port=port, address=str(addresses[0]))


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _resolve(url: str, host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise InvalidWebhookUrl(url=url, reason=f"{host} does not resolve") from None
    # Every answer is checked: a name with one public and one private address is refused.
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
