"""Which receivers the notifier may call (no server-side request forgery).

A receiver is ``https://`` on a public address. Loopback (this host: 127.0.0.0/8, ::1, 0.0.0.0,
``localhost``) only when allowed, and then ``http://`` too; private, link-local, shared and
reserved addresses (10/8, 172.16/12, 192.168/16, 169.254/16 with the cloud metadata endpoint,
fc00::/7, fe80::/10, 100.64/10, ...) only when allowed; ``http://`` elsewhere only when allowed.
The addresses are those the host resolves to, checked when subscribing and again before every
attempt (a name may resolve elsewhere later).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class DestinationPolicy:
    allow_loopback: bool = False
    allow_private: bool = False
    allow_http: bool = False


def parse(url: str) -> tuple[SplitResult | None, str | None]:
    """The URL split, or why it is no receiver's URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return None, f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return None, "the URL must start with https:// (or http:// where allowed)"
    if not parts.hostname:
        return None, "the URL names no host"
    if port == 0:
        return None, "the URL's port must be 1 to 65535"
    if any(c.isspace() for c in url) or parts.fragment:
        return None, "the URL may not hold spaces or a #fragment"
    return parts, None


def literal_address(host: str) -> Address | None:
    """The host as an IP address when it is one (IPv4-mapped IPv6 unwrapped)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_loopback_name(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


def kind_of(address: Address) -> str:
    """``loopback``, ``private`` (any address not globally reachable) or ``public``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback or address.is_unspecified:
        return "loopback"
    if not address.is_global or address.is_multicast:
        return "private"
    return "public"


def destination_problem(parts: SplitResult, addresses: Iterable[Address],
                        policy: DestinationPolicy) -> str | None:
    """Why the notifier may not call ``parts`` resolving to ``addresses``, or None."""
    host = parts.hostname or ""
    kinds = {kind_of(a) for a in addresses}
    if is_loopback_name(host):
        kinds.add("loopback")
    if "loopback" in kinds and not policy.allow_loopback:
        return (f"{host} is a loopback address of the notifier's own host; refused unless "
                "TANDEM_NOTIFIER_ALLOW_LOOPBACK is set")
    if "private" in kinds and not policy.allow_private:
        return (f"{host} is a private, link-local or reserved address; refused unless "
                "TANDEM_NOTIFIER_ALLOW_PRIVATE is set")
    if parts.scheme == "http" and not policy.allow_http and kinds != {"loopback"}:
        return ("only https:// receivers are allowed (http:// for loopback, or with "
                "TANDEM_NOTIFIER_ALLOW_HTTP)")
    return None
