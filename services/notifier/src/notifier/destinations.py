"""The destination guard at its edges: resolve a receiver's host and check every address it
resolves to by :mod:`notifier.rules.destinations`, when subscribing and before each attempt."""

from __future__ import annotations

import asyncio
import socket

from notifier.config import NotifierSettings
from notifier.errors import DestinationRefused
from notifier.rules.destinations import (
    Address,
    DestinationPolicy,
    destination_problem,
    literal_address,
    parse,
)


def policy_of(settings: NotifierSettings) -> DestinationPolicy:
    return DestinationPolicy(allow_loopback=settings.allow_loopback,
                             allow_private=settings.allow_private,
                             allow_http=settings.allow_http)


async def resolve(host: str, timeout: float = 3.0) -> list[Address]:
    """The addresses ``host`` resolves to (itself when it is one); empty when it resolves to
    nothing in time."""
    if (literal := literal_address(host)) is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), timeout)
    except (OSError, TimeoutError, UnicodeError):
        return []
    found = [literal_address(str(info[4][0])) for info in infos]
    return [a for a in found if a is not None]


async def check_destination(url: str, settings: NotifierSettings, *, field: str = "url",
                            must_resolve: bool = False) -> None:
    """Raise :class:`DestinationRefused` naming ``field`` unless the notifier may call
    ``url``. A host that resolves to nothing now passes when subscribing (it is checked again
    before each attempt, where ``must_resolve`` refuses it)."""
    parts, why = parse(url)
    if parts is None:
        raise DestinationRefused(field, why or "not a valid URL")
    addresses = await resolve(parts.hostname or "")
    if not addresses and must_resolve:
        raise DestinationRefused(field, f"{parts.hostname} does not resolve")
    if (why := destination_problem(parts, addresses, policy_of(settings))) is not None:
        raise DestinationRefused(field, why)
