"""Rules that several national profiles share, parameterised by the profile's code prefix."""

from __future__ import annotations

from cap.findings import Findings
from cap.model import Info


def blank(text: str | None) -> bool:
    """True when an optional text element is absent or only whitespace."""
    return text is None or not text.strip()


def check_same_as_first(f: Findings, prefix: str, label: str, info: Info, first: Info,
                        info_path: str, *, categories: bool = True,
                        fix_suffix: str = "") -> None:
    """Every info block repeats the categories and event codes of info[0]."""
    if categories and set(info.categories) != set(first.categories):
        f.error(f"{prefix}-categories-must-match", f"{info_path}/category",
                f"{label} requires every <info> of an alert to have the same <category> "
                "values; these differ from info[0]",
                f"use the categories of the first <info>{fix_suffix}")
    if set(info.event_codes) != set(first.event_codes):
        f.error(f"{prefix}-event-codes-must-match", f"{info_path}/eventCode",
                f"{label} requires every <info> of an alert to have the same <eventCode> "
                "values; these differ from info[0]",
                f"use the event codes of the first <info>{fix_suffix}")


def check_recommended(f: Findings, prefix: str, label: str, info: Info, info_path: str) -> None:
    """The elements CAP-CP and CAP-AU strongly recommend in every info block."""
    if info.expires is None:
        f.warning(f"{prefix}-expires-recommended", f"{info_path}/expires",
                  f"{label} strongly recommends <expires>",
                  "add <expires> with the time the information stops being valid")
    if blank(info.sender_name):
        f.warning(f"{prefix}-sender-name-recommended", f"{info_path}/senderName",
                  f"{label} strongly recommends <senderName>, the publicly recognised name "
                  "of the issuing agency", "name the issuing agency in <senderName>")
    if not info.response_types:
        f.warning(f"{prefix}-response-type-recommended", f"{info_path}/responseType",
                  f"{label} strongly recommends <responseType>, with a matching <instruction>",
                  "add the recommended action, e.g. <responseType>Monitor</responseType>")
    if blank(info.instruction):
        f.warning(f"{prefix}-instruction-recommended", f"{info_path}/instruction",
                  f"{label} strongly recommends <instruction>",
                  "say what people should do in <instruction>")
    if info.areas and not any(area.polygons or area.circles for area in info.areas):
        f.warning(f"{prefix}-polygon-or-circle-recommended", f"{info_path}/area[0]",
                  f"{label} encourages <polygon> or <circle> as a more accurate description "
                  "of the area than geocodes alone", "add a <polygon> or <circle> to the areas")
