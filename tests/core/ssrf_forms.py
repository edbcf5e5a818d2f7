"""Every spelling of a non-public target the SSRF guard must refuse, shared by both webhooks' tests."""

from __future__ import annotations

NON_PUBLIC_URLS = [
    # IPv6 forms that embed an IPv4 address, each pointing at a private one
    "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1 (the one the issue found)
    "http://[2002:a9fe:a9fe::1]/hook",  # 6to4 of 169.254.169.254 (cloud metadata)
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped
    "http://[::ffff:a00:1]/hook",  # IPv4-mapped 10.0.0.1, hex spelling
    "http://[::127.0.0.1]/hook",  # IPv4-compatible (deprecated)
    "http://[::ffff:0:a9fe:a9fe]/hook",  # SIIT IPv4-translated 169.254.169.254
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",  # Teredo, client 127.0.0.1 (obfuscated)
    "http://[2001:0:a00:1::1]/hook",  # Teredo with server 10.0.0.1
    "http://[64:ff9b::7f00:1]/hook",  # NAT64 well-known prefix, 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 well-known prefix, metadata
    "http://[64:ff9b:1::a00:1]/hook",  # NAT64 local-use /48 with a /96 embedding, 10.0.0.1
    "http://[64:ff9b:1:7f00:0:100::]/hook",  # NAT64 local-use /48 with a /48 embedding, 127.0.0.1
    # decimal, octal, hex and short IPv4 spellings
    "http://2130706433/hook",
    "http://0x7f.1/hook",
    "http://0177.0.0.1/hook",
    "http://127.1/hook",
    "http://0x7f000001/hook",
    "http://0xa9.0376.43518/hook",  # 169.254.169.254 in mixed bases
    "http://127.0.0.1./hook",  # trailing dot
    # plain private, loopback, link-local, shared and unspecified addresses
    "http://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://100.64.0.1/hook",  # carrier-grade NAT
    "http://0.0.0.0/hook",
    "http://[::1]/hook",
    "http://[::]/hook",
    "http://[fe80::1]/hook",
    "http://[fc00::1]/hook",
    "http://[fec0::1]/hook",  # site-local (deprecated, not global)
    # names that resolve to a private address
    "http://localhost:8000/hook",
    # not http(s), or carrying credentials
    "ftp://example.com/x",
    "http://user:pw@example.com/x",
    "file:///etc/passwd",
]

PUBLIC_URLS = [
    "http://8.8.8.8/hook",
    "https://[2606:4700:4700::1111]/hook",
    "http://[2002:808:808::1]/hook",  # 6to4 of a public address
    "http://[64:ff9b::808:808]/hook",  # NAT64 of a public address
    "http://[::ffff:8.8.8.8]/hook",
    "http://0x08080808/hook",  # a legacy spelling of a public address is judged, not refused for its spelling
]
