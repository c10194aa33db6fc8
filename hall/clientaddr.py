"""The client's address, for per-address limits: forwarding headers only from
the proxies named in settings.TRUSTED_PROXIES.

Anyone can send `X-Forwarded-For` or `X-Real-IP`; believing them from
everyone lets a client rotate addresses and escape every per-address limit.
So the TCP peer is the client, unless the peer is a trusted proxy: then
`X-Forwarded-For` is read from the right (each proxy appends the address it
was reached from), skipping trusted hops, and the first untrusted hop is the
client; without that header, `X-Real-IP`.
"""
from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

import settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=4)
def _networks(spec: tuple[str, ...]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(x, strict=False) for x in spec)
    except ValueError as exc:
        raise SystemExit(f"HALL_TRUSTED_PROXIES: {exc}")


def trusted_networks() -> tuple[Network, ...]:
    return _networks(tuple(settings.TRUSTED_PROXIES))


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(ip: Any, networks: tuple[Network, ...]) -> bool:
    return any(ip.version == net.version and ip in net for net in networks)


def client_address(peer: str, headers: Any, networks: tuple[Network, ...] | None = None) -> str:
    """The address limits count against: `peer` (the TCP peer) unless it is a
    trusted proxy, then the nearest untrusted hop that the proxies name."""
    networks = trusted_networks() if networks is None else networks
    peer_ip = _ip(peer)
    if not networks or peer_ip is None or not _trusted(peer_ip, networks):
        return peer
    forwarded = [h for part in headers.get_list("X-Forwarded-For") for h in part.split(",")]
    nearest = str(peer_ip)
    for hop in reversed(forwarded):
        ip = _ip(hop)
        if ip is None:
            break  # junk only a client writes: stop at the last hop a proxy vouched for
        nearest = str(ip)
        if not _trusted(ip, networks):
            return nearest
    if not forwarded:
        real = _ip(headers.get("X-Real-IP", ""))
        if real is not None:
            return str(real)
    return nearest
