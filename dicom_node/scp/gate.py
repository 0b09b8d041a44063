"""The association gate: calling-AE allow-list (optionally pinned to a host), called AE.

The allow-list is on by default: a caller that is not listed (or calls from
another host than the one it is pinned to) is refused at association with
A-ASSOCIATE-RJ *rejected-permanent, service-user, calling-AE-title-not-recognised*
(PS3.8 9.3.4); a request naming another called AE title is refused with
*called-AE-title-not-recognised*. ``allow_any`` must be set explicitly.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from dicom_node.config import AllowedCaller, NodeSettings

logger = logging.getLogger(__name__)

# A-ASSOCIATE-RJ parameters (PS3.8 9.3.4): (result, source, reason/diagnostic).
REJECT_CALLING_AE: tuple[int, int, int] = (0x01, 0x01, 0x03)  # permanent, user, calling AE
REJECT_CALLED_AE: tuple[int, int, int] = (0x01, 0x01, 0x07)  # permanent, user, called AE
REJECT_LOCAL_LIMIT: tuple[int, int, int] = (0x02, 0x03, 0x02)  # transient, presentation, limit


@dataclass(frozen=True)
class Rejection:
    """Why an association is refused, with its A-ASSOCIATE-RJ parameters."""

    result: int
    source: int
    reason: int
    why: str


def _resolve(host: str) -> frozenset[str]:
    """The addresses a configured host name or IP stands for (itself when unresolvable)."""
    addresses = {host}
    try:
        for info in socket.getaddrinfo(host, None):
            addresses.add(str(info[4][0]))
    except OSError:
        logger.warning("allow-list host %r does not resolve; matching it literally", host)
    return frozenset(addresses)


def _normalise_ip(address: str) -> str:
    return address[7:] if address.startswith("::ffff:") else address


@dataclass
class AssociationGate:
    """Decides whether an association request is accepted (allow-list, called AE).

    Args:
        ae_title: this node's AE title; a request naming another called AE is refused.
        allow: callers allowed to associate, optionally pinned to a host/IP.
        allow_any: accept any calling AE (must be set explicitly).
    """

    ae_title: str
    allow: Iterable[AllowedCaller] = ()
    allow_any: bool = False
    _rules: dict[str, list[frozenset[str] | None]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rules = {}
        for caller in self.allow:
            hosts = None if caller.host is None else _resolve(caller.host)
            self._rules.setdefault(caller.ae_title, []).append(hosts)

    @classmethod
    def from_settings(cls, settings: NodeSettings) -> AssociationGate:
        return cls(ae_title=settings.ae_title, allow=settings.allow, allow_any=settings.allow_any)

    def check(self, calling_ae: str, called_ae: str, peer_ip: str) -> Rejection | None:
        """Return ``None`` to accept, or the :class:`Rejection` to send."""
        calling = calling_ae.strip()
        if called_ae.strip() != self.ae_title:
            return Rejection(*REJECT_CALLED_AE, why=f"called AE {called_ae.strip()!r} is not ours")
        if self.allow_any:
            return None
        rules = self._rules.get(calling)
        if rules is None:
            return Rejection(*REJECT_CALLING_AE, why=f"calling AE {calling!r} is not allowed")
        peer = _normalise_ip(peer_ip)
        if any(hosts is None or peer in hosts for hosts in rules):
            return None
        return Rejection(
            *REJECT_CALLING_AE, why=f"calling AE {calling!r} is not allowed from {peer}"
        )
