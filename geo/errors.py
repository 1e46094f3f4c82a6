"""The exception family of capcast's ``geo`` package.

Every error ``geo`` raises on purpose is a :class:`GeoError`, itself a
:class:`~cap.errors.CapcastError`. Errors carry structured fields (the file,
the offending value) so that a caller can tell a user what to fix. Problems in
a CAP alert's areas are *not* errors: they come back as notes on the result
(see :class:`geo.areas.AreaNote`), because an alert must still be targeted.
"""

from __future__ import annotations

from pathlib import Path

from cap.errors import CapcastError


class GeoError(CapcastError):
    """Base of every error raised on purpose by the ``geo`` package."""


class GeodataError(GeoError):
    """A boundary file (GeoJSON, TopoJSON) is missing, unreadable or malformed.

    ``path`` names the file; ``detail`` says what is wrong with it.
    """

    def __init__(self, path: str | Path, detail: str) -> None:
        self.path = str(path)
        self.detail = detail
        super().__init__(f"{self.path}: {detail}")


class InvalidGeoInput(GeoError, ValueError):
    """An argument is out of range or not one of the valid options.

    Also a :class:`ValueError`, so that callers treating bad arguments
    generically keep working. ``name`` is the argument, ``value`` what was given.
    """

    def __init__(self, name: str, value: object, detail: str) -> None:
        self.name = name
        self.value = value
        self.detail = detail
        super().__init__(f"{name}={value!r}: {detail}")
