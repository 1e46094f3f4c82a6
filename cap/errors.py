"""The exception hierarchy of capcast's CAP package.

``CapcastError`` is the single base of every error capcast raises on purpose;
each package adds a family below it. Errors carry structured fields (the
element path, the line and column) so that a caller can point a user at the
exact place to fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cap.findings import Finding


class CapcastError(Exception):
    """Base of every error raised on purpose by capcast."""


class CapError(CapcastError):
    """Something is wrong with a CAP document or a CAP feed."""


class XmlRefused(CapError):
    """The bytes were refused before or while parsing XML.

    Raised for input that is not well-formed, too large, too deep, or that
    uses a feature capcast never processes (DTDs, entities, XInclude).
    ``line`` and ``column`` are 1-based when known.
    """

    def __init__(self, code: str, message: str, *, line: int | None = None,
                 column: int | None = None, fix: str | None = None) -> None:
        self.code = code
        self.message = message
        self.line = line
        self.column = column
        self.fix = fix
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(f"{message}{where}")


class NotCap(CapError):
    """The document is well-formed XML but not a CAP alert (or not the kind asked for)."""

    def __init__(self, code: str, message: str, *, fix: str | None = None) -> None:
        self.code = code
        self.message = message
        self.fix = fix
        super().__init__(message)


class InvalidAlert(CapError):
    """A CAP alert broke one or more rules; ``findings`` lists every one."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        errors = [f for f in findings if f.is_error]
        first = errors[0] if errors else None
        summary = f"{first.path}: {first.message}" if first else "invalid alert"
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        super().__init__(summary + more)
