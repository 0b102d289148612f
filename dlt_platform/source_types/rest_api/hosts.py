"""Where a rest_api source may connect: not the platform's own network.

A definition's base_url, and every request its source makes (absolute endpoint paths, next links, redirects),
may not reach loopback, link-local (the cloud metadata service at 169.254.169.254 among them), private or
unspecified addresses, nor the orchestrator Worker's own host (DLT_ORCHESTRATOR_URL): a source would otherwise
read the Worker's internal API or the local Dagster with the platform's network position. Host names are
resolved before connecting and every address they resolve to is checked. A deployment lifts the rule for named
hosts with DLT_PLATFORM_ALLOW_PRIVATE_HOSTS (the local stack does for its sample API).

Host entries (here and in DLT_SOURCE_SECRETS) are `host` (any port) or `host:port`, compared with the URL's host
as written: an entry for 127.0.0.1:8790 does not allow a name that resolves there.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from dlt_platform.source_types.rest_api.errors import HostNotAllowed

DEFAULT_PORTS = {"http": 80, "https": 443}


def url_host(url: str) -> tuple[str, int]:
    """(lower-case host, port) of a URL; the scheme's port when none is written."""
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(parts.scheme, 0)


def written_host(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def entry_matches(entry: str, host: str, port: int) -> bool:
    """An entry `host` matches the host on any port, `host:port` that port only."""
    parts = urlsplit(f"//{entry}")
    return (parts.hostname or "").lower() == host and (parts.port is None or parts.port == port)


def matches_any(entries: Iterable[str], host: str, port: int) -> bool:
    return any(entry_matches(entry, host, port) for entry in entries)


def _not_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone index is not part of the address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is false for loopback, link-local, private (10/8, 172.16/12, 192.168/16, fc00::/7), unspecified,
    # shared (100.64/10) and reserved ranges; multicast is never an API.
    return not ip.is_global or ip.is_multicast


def _literal_address(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


Resolver = Callable[[str, int], list[str]]


def resolved_addresses(host: str, port: int) -> list[str]:
    """Every address the host resolves to (as the connection will resolve it); [] when it does not resolve,
    which the connection then reports itself."""
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
    except (socket.gaierror, UnicodeError):
        return []


class HostPolicy:
    """The hosts a rest_api source may connect to, for one run."""

    def __init__(
        self, allowed: Iterable[str] = (), orchestrator_url: str | None = None, resolve: Resolver = resolved_addresses
    ) -> None:
        self.allowed = tuple(allowed)
        self.orchestrator = url_host(orchestrator_url)[0] if orchestrator_url else None
        self.resolve = resolve

    def check(self, url: str, what: str) -> None:
        """Raises HostNotAllowed (naming `what`, the host and why, never the URL's path or query) unless the
        source may connect to the URL's host."""
        host, port = url_host(url)
        if not host:
            raise HostNotAllowed(f"{what}: the URL names no host")
        if matches_any(self.allowed, host, port):
            return
        where = written_host(host, port)
        lift = f"unless DLT_PLATFORM_ALLOW_PRIVATE_HOSTS lists {where}"
        if self.orchestrator is not None and host == self.orchestrator:
            raise HostNotAllowed(
                f"{what}: {where} is the orchestrator Worker's own host (DLT_ORCHESTRATOR_URL): "
                f"sources may not call the platform's API, {lift}"
            )
        literal = _literal_address(host)
        for address in [literal] if literal else self.resolve(host, port):
            if _not_public(address):
                said = "is" if literal else f"resolves to {address},"
                raise HostNotAllowed(
                    f"{what}: {where} {said} a loopback, link-local, private or unspecified "
                    f"address: sources may not reach it, {lift}"
                )
