"""``capcast cap ...``: validate, show and convert CAP documents."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dispatcher.cli import EXIT_INVALID, EXIT_OK, Commands, UsageError, size_argument

if TYPE_CHECKING:
    from cap.findings import Finding
    from cap.model import Alert
    from cap.validate import Report

CAP_SUFFIXES = (".xml", ".cap", ".atom", ".rss", ".edxlde")


def _add_limit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-bytes", type=size_argument, default=1 << 20, metavar="SIZE",
                        help="refuse documents larger than this (default 1m = 1 MiB)")


def register(commands: Commands) -> None:
    """Add ``capcast cap validate|show|convert``."""
    cap_commands = commands.group("cap", "read, check and convert CAP documents")

    validate = cap_commands.add_parser(
        "validate", help="validate CAP alerts, EDXL-DE distributions and Atom/RSS feeds",
        description="Validate CAP 1.2 (and 1.1/1.0) alerts, EDXL-DE distributions and "
                    "Atom/RSS CAP feeds. Folders are searched recursively for "
                    + ", ".join(f"*{s}" for s in CAP_SUFFIXES) + ". Exit status: 0 when "
                    "every document is valid, 1 when any is invalid, 2 on a usage error.")
    validate.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    validate.add_argument("--profile", default="oasis",
                          help="rule set on top of OASIS CAP 1.2: oasis (default), ipaws, "
                               "cap-cp, cap-au")
    validate.add_argument("--trust-store", metavar="PATH",
                          help="PEM file or folder of certificates that signatures must "
                               "chain to")
    validate.add_argument("--json", action="store_true",
                          help="print one JSON object per file (format in docs/cli.md)")
    validate.add_argument("--no-signature", action="store_true",
                          help="skip XML signature verification")
    _add_limit(validate)
    validate.set_defaults(handler=_cmd_validate)

    show = cap_commands.add_parser(
        "show", help="print a readable summary of a CAP alert",
        description="Print who, what, where and when of a CAP alert.")
    show.add_argument("file", metavar="FILE")
    _add_limit(show)
    show.set_defaults(handler=_cmd_show)

    convert = cap_commands.add_parser(
        "convert", help="convert a CAP alert between XML and JSON",
        description="Convert a CAP alert (XML of CAP 1.0/1.1/1.2, or capcast's JSON form) "
                    "to CAP 1.2 XML or to JSON. The result goes to standard output.")
    convert.add_argument("file", metavar="FILE")
    convert.add_argument("--to", choices=("json", "xml"), required=True,
                         help="output format")
    _add_limit(convert)
    convert.set_defaults(handler=_cmd_convert)


# -- cap validate ------------------------------------------------------------


def _cap_files(paths: Sequence[str]) -> Iterator[Path]:
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.is_file() and p.name.lower().endswith(CAP_SUFFIXES))
            if not found:
                raise UsageError(f"no CAP files ({', '.join(CAP_SUFFIXES)}) under {name}")
            yield from found
        elif path.is_file():
            yield path
        else:
            raise UsageError(f"no such file or folder: {name}")


def _finding_line(finding: Finding) -> str:
    where = f" (line {finding.line}, column {finding.column})" if finding.line else ""
    text = f"    {finding.severity.value:7} {finding.path}{where}: {finding.message} " \
           f"[{finding.code}]"
    if finding.fix:
        text += f"\n            fix: {finding.fix}"
    return text


def _describe(report: Report) -> str:
    if report.kind == "refused":
        return "refused"
    what = {"alert": "CAP alert", "edxl": "EDXL-DE distribution", "atom": "Atom feed",
            "rss": "RSS feed"}[report.kind]
    if report.kind != "alert":
        what += f", {len(report.alerts)} alert{'s' if len(report.alerts) != 1 else ''}"
    errors, warnings = len(report.errors), len(report.warnings)
    parts = [what]
    if errors:
        parts.append(f"{errors} error{'s' if errors != 1 else ''}")
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    parts.append(f"signature {report.signature.value}")
    return ", ".join(parts)


def _report_json(path: Path, report: Report) -> dict[str, Any]:
    return {"file": str(path), "valid": report.valid,
            "errors": [f.to_json() for f in report.errors],
            "warnings": [f.to_json() for f in report.warnings],
            "signature": report.signature.value}


def _cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    from cap.profiles import get_profile
    from cap.signature import load_trust_store
    from cap.validate import validate

    try:
        profile = get_profile(args.profile)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    trust_store = None
    if args.trust_store:
        from cap.errors import CapError

        try:
            trust_store = load_trust_store(args.trust_store)
        except CapError as exc:
            raise UsageError(str(exc)) from None
    files = list(_cap_files(args.paths))
    all_valid = True
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from None
        report = validate(data, profile=profile, trust_store=trust_store,
                          max_bytes=args.max_bytes, check_signature=not args.no_signature)
        all_valid &= report.valid
        if args.json:
            out.write(json.dumps(_report_json(path, report), ensure_ascii=False) + "\n")
            continue
        status = "valid  " if report.valid else "INVALID"
        out.write(f"{status} {path}: {_describe(report)}\n")
        for finding in report.all_findings:
            out.write(_finding_line(finding) + "\n")
    if not args.json:
        valid = "all valid" if all_valid else "some invalid"
        out.write(f"{len(files)} file{'s' if len(files) != 1 else ''} checked "
                  f"(profile {profile.name}): {valid}\n")
    return EXIT_OK if all_valid else EXIT_INVALID


# -- cap show / convert -------------------------------------------------------


def _load_alert(file: str, max_bytes: int, err: TextIO) -> Alert | None:
    from cap.errors import CapError, InvalidAlert
    from cap.parse import parse_alert
    from cap.serialize import alert_from_json

    path = Path(file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror}") from None
    try:
        if data.lstrip()[:1] == b"{":
            try:
                document = json.loads(data)
            except ValueError as exc:
                err.write(f"{file}: not valid JSON: {exc}\n")
                return None
            return alert_from_json(document)
        return parse_alert(data, max_bytes=max_bytes)
    except InvalidAlert as exc:
        err.write(f"{file}: invalid CAP alert\n")
        for finding in exc.findings:
            if finding.is_error:
                err.write(_finding_line(finding) + "\n")
        return None
    except CapError as exc:
        err.write(f"{file}: {exc}\n")
        return None


def _cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    from cap.summary import summarize

    alert = _load_alert(args.file, args.max_bytes, sys.stderr)
    if alert is None:
        return EXIT_INVALID
    out.write(summarize(alert))
    return EXIT_OK


def _cmd_convert(args: argparse.Namespace, out: TextIO) -> int:
    from cap.serialize import alert_to_json, serialize

    alert = _load_alert(args.file, args.max_bytes, sys.stderr)
    if alert is None:
        return EXIT_INVALID
    if args.to == "json":
        out.write(json.dumps(alert_to_json(alert), ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(serialize(alert).decode("utf-8"))
    return EXIT_OK


