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


def test_every_documented_code_exists() -> None:
    stale = documented() - emitted()
    # Codes built from a prefix at run time (f"{kind}-unknown-element") are not literals.
    built = {code for code in stale
             if re.fullmatch(r"(atom|rss)-(unknown-element|duplicate-element|misplaced-alert|"
                             r"content-escaped-cap|link-not-http|feed-misplaced-alert)", code)}
    assert stale - built == set(), f"documented but never emitted: {sorted(stale - built)}"
