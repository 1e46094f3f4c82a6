"""Every finding code that the source can emit is listed in docs/validation-codes.md."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FAMILIES = r"(?:xml|cap|atom|rss|edxl|ipaws|signature|json|not)"
LITERAL = re.compile(rf"[\"']({FAMILIES}-[a-z0-9]+(?:-[a-z0-9]+)*)[\"']")
# Literals that are not finding codes: profile names and a project name.
NOT_CODES = {"cap-au", "cap-cp", "cap-library"}


def documented() -> set[str]:
    text = (REPO / "docs" / "validation-codes.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", text, re.MULTILINE))


def emitted() -> set[str]:
    codes: set[str] = set()
    for path in (REPO / "cap").rglob("*.py"):
        codes.update(LITERAL.findall(path.read_text(encoding="utf-8")))
    return codes - NOT_CODES


def test_every_code_in_the_source_is_documented() -> None:
    missing = emitted() - documented()
    assert not missing, f"add to docs/validation-codes.md: {sorted(missing)}"


def built_suffixes() -> set[str]:
    """Suffixes of codes built at run time from a prefix, like f"{prefix}-expires-recommended"."""
    template = re.compile(r"f[\"']\{[a-z_.]+\}-([a-z0-9]+(?:-[a-z0-9]+)*)[\"']")
    suffixes: set[str] = set()
    for path in (REPO / "cap").rglob("*.py"):
        suffixes.update(template.findall(path.read_text(encoding="utf-8")))
    return suffixes


def test_every_documented_code_exists() -> None:
    suffixes = built_suffixes()
    assert suffixes, "expected codes built from a prefix (feeds, profiles)"
    stale = {code for code in documented() - emitted()
             if not any(code.endswith(f"-{suffix}") for suffix in suffixes)}
    assert stale == set(), f"documented but never emitted: {sorted(stale)}"
