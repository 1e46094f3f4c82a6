"""Structured validation findings: what is wrong, where, and how to fix it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum


class Severity(Enum):
    """How bad a finding is."""

    #: The document breaks a rule; it must not be accepted.
    ERROR = "error"
    #: The document is acceptable but something is likely a mistake.
    WARNING = "warning"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One validation result.

    ``code`` is stable (documented in docs/validation-codes.md) and safe to
    match on; ``path`` names the element like ``alert/info[1]/area[0]/polygon[2]``
    (indexes are 0-based); ``fix`` says what to change, when we can tell.
    """

    severity: Severity
    code: str
    path: str
    message: str
    fix: str | None = None
    line: int | None = None
    column: int | None = None

    @classmethod
    def error_at(cls, code: str, path: str, message: str, fix: str | None = None) -> Finding:
        """An error finding."""
        return cls(severity=Severity.ERROR, code=code, path=path, message=message, fix=fix)

    @classmethod
    def warning_at(cls, code: str, path: str, message: str, fix: str | None = None) -> Finding:
        """A warning finding."""
        return cls(severity=Severity.WARNING, code=code, path=path, message=message, fix=fix)

    @property
    def is_error(self) -> bool:
        """True for findings that make the document invalid."""
        return self.severity is Severity.ERROR

    def to_json(self) -> dict[str, object]:
        """The stable JSON form used by ``capcast cap validate --json``."""
        out: dict[str, object] = {"code": self.code, "path": self.path, "message": self.message}
        if self.fix is not None:
            out["fix"] = self.fix
        if self.line is not None:
            out["line"] = self.line
            out["column"] = self.column
        return out

    def __str__(self) -> str:
        where = f" (line {self.line}, column {self.column})" if self.line is not None else ""
        fix = f" Fix: {self.fix}" if self.fix else ""
        return f"{self.severity.value} {self.code} at {self.path}{where}: {self.message}{fix}"


@dataclass(slots=True)
class Findings:
    """An ordered collector of findings, used while walking a document."""

    items: list[Finding] = field(default_factory=list)

    def error(self, code: str, path: str, message: str, fix: str | None = None) -> None:
        """Record a rule the document breaks."""
        self.items.append(Finding(severity=Severity.ERROR, code=code, path=path,
                                  message=message, fix=fix))

    def warning(self, code: str, path: str, message: str, fix: str | None = None) -> None:
        """Record something acceptable but probably wrong."""
        self.items.append(Finding(severity=Severity.WARNING, code=code, path=path,
                                  message=message, fix=fix))

    def extend(self, findings: Iterable[Finding]) -> None:
        """Append findings produced elsewhere."""
        self.items.extend(findings)

    @property
    def has_errors(self) -> bool:
        """True when any finding is an error."""
        return any(f.is_error for f in self.items)
