"""A readable, plain-text summary of an alert: who, what, where, when."""

from __future__ import annotations

from collections import Counter

from cap.model import Alert, Area, Info
from cap.parse import format_datetime


def _area_line(index: int, area: Area) -> str:
    parts = []
    if area.polygons:
        vertices = ", ".join(str(len(p.points) - 1) for p in area.polygons)
        parts.append(f"{len(area.polygons)} polygon{'s' if len(area.polygons) > 1 else ''} "
                     f"({vertices} vertices)")
    if area.circles:
        radii = ", ".join(f"{c.radius_km:g} km" for c in area.circles)
        parts.append(f"{len(area.circles)} circle{'s' if len(area.circles) > 1 else ''} "
                     f"(radius {radii})")
    if area.geocodes:
        names = Counter(g.value_name for g in area.geocodes)
        listed = ", ".join(f"{n} {name}" for name, n in names.items())
        parts.append(f"geocodes: {listed}")
    if area.altitude is not None:
        ceiling = f" to {area.ceiling:g}" if area.ceiling is not None else ""
        parts.append(f"altitude {area.altitude:g}{ceiling} ft")
    shape = "; ".join(parts) if parts else "description only"
    return f"    area[{index}] {area.area_desc!r}: {shape}"


def _info_lines(index: int, info: Info) -> list[str]:
    categories = "/".join(c.value for c in info.categories)
    lines = [f"  info[{index}] {info.language}: {info.event} ({categories}) — "
             f"{info.urgency.value} / {info.severity.value} / {info.certainty.value}"]
    if info.headline:
        lines.append(f"    headline: {info.headline}")
    when = [(name, value) for name, value in (("effective", info.effective),
                                               ("onset", info.onset),
                                               ("expires", info.expires)) if value]
    if when:
        lines.append("    " + "  ".join(f"{n} {format_datetime(v)}" for n, v in when))
    if info.response_types:
        lines.append("    response: " + ", ".join(r.value for r in info.response_types))
    if info.instruction:
        instruction = info.instruction.strip().splitlines() or [""]
        more = " ..." if len(instruction) > 1 else ""
        lines.append(f"    instruction: {instruction[0]}{more}")
    lines.extend(_area_line(i, area) for i, area in enumerate(info.areas))
    if info.resources:
        lines.append(f"    resources: {len(info.resources)} "
                     f"({', '.join(r.mime_type for r in info.resources)})")
    return lines


def summarize(alert: Alert) -> str:
    """A multi-line summary of ``alert`` for people (not a stable format)."""
    sender_names = {i.sender_name for i in alert.infos if i.sender_name}
    who = alert.sender + (f" ({'; '.join(sorted(sender_names))})" if sender_names else "")
    lines = [f"alert {alert.identifier}",
             f"  from: {who}",
             f"  sent: {format_datetime(alert.sent)}",
             f"  {alert.status.value} {alert.msg_type.value}, scope {alert.scope.value}"
             + (" (signed)" if alert.signed else "")]
    if alert.references:
        lines.append("  references: " + ", ".join(
            f"{r.sender} {r.identifier} ({format_datetime(r.sent)})" for r in alert.references))
    if alert.note:
        note = " ".join(alert.note.split())
        lines.append(f"  note: {note[:200]}{' ...' if len(note) > 200 else ''}")
    lines.append(f"  languages: {', '.join(alert.languages) or 'none (no info block)'}")
    for index, info in enumerate(alert.infos):
        lines.extend(_info_lines(index, info))
    return "\n".join(lines) + "\n"
