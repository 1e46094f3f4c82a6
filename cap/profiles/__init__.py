"""CAP validation profiles: national rule sets checked on top of OASIS CAP 1.2.

A profile looks at an :class:`~cap.model.Alert` that :mod:`cap.parse` already
accepted, so it never repeats a base OASIS rule; it only adds what the
national profile demands (errors) or advises (warnings). Every finding code is
prefixed with the profile name (``ipaws-``, ``cap-cp-``, ``cap-au-``) and each
profile module documents its rules in a table with their sources.

=========  ====================================================================
name       rule set
=========  ====================================================================
oasis      OASIS CAP 1.2 only (no extra rule)
ipaws      CAP 1.2 USA IPAWS Profile v1.0 (:mod:`cap.profiles.ipaws`)
cap-cp     Canadian Profile CAP-CP (:mod:`cap.profiles.cap_cp`)
cap-au     Australian Profile CAP-AU 1.0 (:mod:`cap.profiles.cap_au`)
=========  ====================================================================

The reference implementation these match (and in places improve on) is
google/cap-library's ``Ipaws1Profile``, ``CanadianProfile`` and
``AustralianProfile``.
"""

from __future__ import annotations

from typing import Protocol

from cap.findings import Finding
from cap.model import Alert
from cap.profiles.cap_au import CapAuProfile
from cap.profiles.cap_cp import CapCpProfile
from cap.profiles.ipaws import IpawsProfile

__all__ = [
    "PROFILES",
    "CapAuProfile",
    "CapCpProfile",
    "IpawsProfile",
    "OasisProfile",
    "Profile",
    "get_profile",
]


class Profile(Protocol):
    """A rule set checked on an alert that already passed the OASIS CAP 1.2 rules."""

    #: Short name used on the command line and in reports: ``oasis``, ``ipaws``, ...
    name: str
    #: Human-readable title with the profile's version and owner.
    title: str

    def check(self, alert: Alert, *, path: str = "alert") -> list[Finding]:
        """Return the profile's findings for ``alert``; ``path`` names the alert element."""
        ...


class OasisProfile:
    """The base OASIS CAP 1.2 rules only: :mod:`cap.parse` checks them all, so no extra rule."""

    name = "oasis"
    title = "OASIS CAP 1.2 (base rules only)"

    def check(self, alert: Alert, *, path: str = "alert") -> list[Finding]:
        """Return no findings: the parser already enforced every OASIS rule."""
        return []


PROFILES: dict[str, Profile] = {
    profile.name: profile
    for profile in (OasisProfile(), IpawsProfile(), CapCpProfile(), CapAuProfile())
}


def get_profile(name: str) -> Profile:
    """The profile called ``name`` (``oasis``, ``ipaws``, ``cap-cp`` or ``cap-au``).

    Raises ValueError, listing the valid names, for anything else.
    """
    profile = PROFILES.get(name.strip().lower())
    if profile is None:
        raise ValueError(f"unknown CAP profile {name!r}; valid profiles: {', '.join(PROFILES)}")
    return profile
