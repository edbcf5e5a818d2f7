"""SSRF guard for every URL the gateway POSTs to on someone's behalf (job webhooks, budget alerts).

Only public http(s) targets pass, judged on the addresses the host resolves to, every one of them.
An IPv6 address that carries an IPv4 address inside it (IPv4-mapped, IPv4-compatible, SIIT, 6to4,
Teredo, NAT64) reaches that IPv4 host through a translator or tunnel, so it is judged by the
embedded IPv4 too: `http://[2002:7f00:1::]/` is 127.0.0.1 by another name. Numeric hosts in the
legacy spellings inet_aton accepts (`2130706433`, `0x7f.1`, `0177.0.0.1`) are parsed here rather
than left to the resolver, so the answer does not depend on the C library.

Callers check once when the URL is given (a clear 4xx) and again at delivery, then POST to the
very address that was checked (`post`), so a DNS answer that changes in between (rebinding)
cannot steer the request inside.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT ::ffff:0:a.b.c.d
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: any RFC 6052 prefix length inside it


class UnsafeUrl(ValueError):
    def __init__(self, *, url: str, reason: str) -> None:
        super().__init__(f"URL refused: {reason}.")
        self.url, self.reason = url, reason


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    address: str  # the checked IP the request must go to


def check_url(url: str, *, allow_private: bool) -> Target:
    """Resolve the URL's host; refuse it unless every address is public (or private targets are allowed)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeUrl(url=url, reason="only http and https URLs are allowed")
    if not parts.hostname or parts.username or parts.password:
        raise UnsafeUrl(url=url, reason="a host is required and credentials are not allowed")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrl(url=url, reason="invalid port") from None
    addresses = resolve(url, parts.hostname, port)
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise UnsafeUrl(url=url, reason=f"{parts.hostname} resolves to a non-public address")
    return Target(scheme=parts.scheme, host=parts.hostname, port=port, address=str(addresses[0]))


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and (address.ipv4_mapped or address in _NAT64_WELL_KNOWN):
        # A dual stack or a NAT64 translator takes these straight to the IPv4 host (and Python files
        # 64:ff9b::/96 under the reserved ::/8): that host decides.
        return all(_is_public_v4(v4) for v4 in embedded_ipv4(address))
    if isinstance(address, ipaddress.IPv6Address):
        return _is_public_v6(address) and all(_is_public_v4(v4) for v4 in embedded_ipv4(address))
    return _is_public_v4(address)


def _is_public_v4(address: ipaddress.IPv4Address) -> bool:
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _is_public_v6(address: ipaddress.IPv6Address) -> bool:
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_site_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address this IPv6 address can stand for (RFC 4291, 6052, 3056, 4380, 8215)."""
    found: list[ipaddress.IPv4Address] = []
    if address.ipv4_mapped:
        found.append(address.ipv4_mapped)
    if address in _IPV4_COMPATIBLE or address in _IPV4_TRANSLATED or address in _NAT64_WELL_KNOWN:
        found.append(_v4(address.packed[12:16]))
    if address.sixtofour:
        found.append(address.sixtofour)
    if address.teredo:
        found.extend(address.teredo)  # (server, client): the client part is the one a packet reaches
    if address in _NAT64_LOCAL_USE:
        raw = address.packed  # bits 64..71 are the RFC 6052 "u" octet, never part of the IPv4 address
        found.extend(_v4(b) for b in (raw[6:8] + raw[9:11], raw[7:8] + raw[9:12], raw[9:13], raw[12:16]))
    return found


def _v4(packed: bytes) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(packed)


def legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """`host` as inet_aton reads it (1 to 4 parts, each decimal, 0-octal or 0x-hex), or None if it is a name."""
    parts = host.rstrip(".").split(".")
    if not 1 <= len(parts) <= 4:
        return None
    try:
        numbers = [_c_integer(p) for p in parts]
    except ValueError:
        return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(parts)) or min(numbers) < 0:
        return None
    value = last
    for index, n in enumerate(head):
        value += n << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _c_integer(text: str) -> int:
    if text[:2].lower() == "0x":
        return int(text[2:], 16)
    return int(text, 8) if text[:1] == "0" else int(text, 10)


def resolve(url: str, host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host.split("%")[0])]
    except ValueError:
        pass
    legacy = legacy_ipv4(host)
    if legacy is not None:
        return [legacy]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeUrl(url=url, reason=f"{host} does not resolve") from None
    # Every answer is checked: a name with one public and one private address is refused.
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def post(url: str, target: Target, *, content: bytes, headers: dict[str, str], timeout: float) -> httpx.Response:
    """POST to the address that passed the check; the name stays in Host and TLS (SNI and certificate check)."""
    pinned = httpx.URL(url).copy_with(host=target.address)
    headers = {**headers, "Host": httpx.URL(url).netloc.decode()}
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        return client.post(pinned, content=content, headers=headers, extensions={"sni_hostname": target.host})
