"""``capcast alerts ...`` and ``capcast drill``: the HTTP API from the command line.

They talk to a running service (``--url``, default ``$CAPCAST_URL`` or
``http://127.0.0.1:8080``) with a bearer token from ``$CAPCAST_TOKEN`` or
``--token-file`` (never a token on the command line, where other users see
it), and print the API's JSON answer. Exit status: 0 for a 2xx answer, 1 for
an error answer or an unreachable service, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from dispatcher.cli import EXIT_INVALID, EXIT_OK, Commands, UsageError

DEFAULT_URL = "http://127.0.0.1:8080"


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None,
                        help=f"the service (default: $CAPCAST_URL, else {DEFAULT_URL})")
    parser.add_argument("--token-file", metavar="FILE",
                        help="file holding the bearer token (default: $CAPCAST_TOKEN)")


def register(commands: Commands) -> None:
    """Add ``capcast alerts list|show|send|cancel`` and ``capcast drill``."""
    group = commands.group("alerts", "list, show, send and cancel alerts on a running service")
    listing = group.add_parser("list", help="list alerts, newest first")
    _connection_options(listing)
    listing.add_argument("--status", help="CAP status (Actual, Exercise, ...)")
    listing.add_argument("--sender", help="CAP sender")
    listing.add_argument("--state", help="alert state (accepted, refused, ...)")
    listing.add_argument("--since", help="received at or after (ISO 8601)")
    listing.add_argument("--until", help="received before (ISO 8601)")
    listing.add_argument("--area", metavar="MINLON,MINLAT,MAXLON,MAXLAT",
                         help="alerts whose area intersects this box")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="print the API's JSON")
    listing.set_defaults(handler=_cmd_list)

    show = group.add_parser("show", help="one alert with its plan, jobs and submissions")
    _connection_options(show)
    show.add_argument("alert_id", type=int)
    show.set_defaults(handler=_cmd_show)

    send = group.add_parser("send", help="POST a CAP file (as its authority)")
    _connection_options(send)
    send.add_argument("file", help="the CAP XML file ('-' reads standard input)")
    send.set_defaults(handler=_cmd_send)

    cancel = group.add_parser("cancel", help="cancel an alert (issues a CAP Cancel)")
    _connection_options(cancel)
    cancel.add_argument("alert_id", type=int)
    cancel.add_argument("--note", help="why (goes into the Cancel's note)")
    cancel.set_defaults(handler=_cmd_cancel)

    drill = commands.command(
        "drill", "run a drill: an Exercise alert through the whole path, with per-hop timings",
        description="POST /api/v1/drills: create an Exercise alert for an area (GeoJSON file) "
                    "or a preset ('jurisdiction' or a geocode VALUENAME=VALUE), sent only on "
                    "the channels and cells each operator configures for exercises; waits for "
                    "the jobs and prints the per-hop timings.")
    _connection_options(drill)
    where = drill.add_mutually_exclusive_group(required=True)
    where.add_argument("--area", metavar="FILE", help="GeoJSON geometry/feature of the area")
    where.add_argument("--preset", help="'jurisdiction' or a geocode like NUTS3=DEA11")
    drill.add_argument("--text", required=True, help="the message")
    drill.add_argument("--headline")
    drill.add_argument("--language", default="en")
    drill.add_argument("--operator", action="append", dest="operators",
                       help="only this operator (repeatable)")
    drill.add_argument("--channel", type=int, help="an exercise/test channel")
    drill.add_argument("--authority", help="the authority (sender) the drill is for")
    drill.add_argument("--expires-minutes", type=int, default=30)
    drill.add_argument("--wait", type=float, default=60.0, metavar="SECONDS",
                       help="wait this long for the jobs to finish (default 60, max 120)")
    drill.set_defaults(handler=_cmd_drill)


def _token(args: argparse.Namespace) -> str:
    if args.token_file:
        try:
            return Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"--token-file {args.token_file}: {exc.strerror or exc}") from exc
    token = os.environ.get("CAPCAST_TOKEN", "").strip()
    if not token:
        raise UsageError("no token: set CAPCAST_TOKEN or give --token-file")
    return token


def _base(args: argparse.Namespace) -> str:
    return str(args.url or os.environ.get("CAPCAST_URL") or DEFAULT_URL).rstrip("/")


def call(args: argparse.Namespace, method: str, path: str, *, body: bytes | None = None,
         content_type: str = "application/json",
         params: dict[str, str] | None = None) -> tuple[int, Any]:
    """One API request; returns (HTTP status, decoded JSON or text)."""
    import aiohttp

    token = _token(args)
    url = _base(args) + path

    async def go() -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=180)) as session, \
                session.request(method, url, data=body, headers=headers,
                                params=params) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    try:
        return asyncio.run(go())
    except (TimeoutError, OSError) as exc:
        raise _Unreachable(f"{url}: {exc}") from exc
    except aiohttp.ClientError as exc:
        raise _Unreachable(f"{url}: {exc}") from exc


class _Unreachable(Exception):
    pass


def _finish(status: int, data: Any, out: TextIO) -> int:
    out.write((json.dumps(data, indent=2) if not isinstance(data, str) else data) + "\n")
    return EXIT_OK if 200 <= status < 300 else EXIT_INVALID


def _guarded(run: Any) -> Any:
    def handler(args: argparse.Namespace, out: TextIO) -> int:
        try:
            return int(run(args, out))
        except _Unreachable as exc:
            print(f"capcast: cannot reach the service: {exc}", file=sys.stderr)
            return EXIT_INVALID
    return handler


@_guarded
def _cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    params = {key: str(value) for key in ("status", "sender", "state", "since", "until", "area",
                                          "limit")
              if (value := getattr(args, key)) is not None}
    status, data = call(args, "GET", "/api/v1/alerts", params=params)
    if args.json or not (200 <= status < 300) or not isinstance(data, dict):
        return _finish(status, data, out)
    for alert in data.get("alerts", []):
        out.write(f"{alert.get('id'):>6}  {alert.get('received_at', '')[:19]:<19}  "
                  f"{alert.get('state', ''):<10} {alert.get('status') or '-':<9} "
                  f"{alert.get('msg_type') or '-':<7} {alert.get('sender') or '-'}  "
                  f"{alert.get('identifier') or '-'}\n")
    return EXIT_OK


@_guarded
def _cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    return _finish(*call(args, "GET", f"/api/v1/alerts/{args.alert_id}"), out)


@_guarded
def _cmd_send(args: argparse.Namespace, out: TextIO) -> int:
    try:
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"{args.file}: {exc.strerror or exc}") from exc
    return _finish(*call(args, "POST", "/api/v1/alerts", body=raw,
                         content_type="application/cap+xml"), out)


@_guarded
def _cmd_cancel(args: argparse.Namespace, out: TextIO) -> int:
    body = json.dumps({"note": args.note} if args.note else {}).encode()
    return _finish(*call(args, "POST", f"/api/v1/alerts/{args.alert_id}/cancel", body=body), out)


@_guarded
def _cmd_drill(args: argparse.Namespace, out: TextIO) -> int:
    request: dict[str, Any] = {"text": args.text, "language": args.language,
                               "expires_minutes": args.expires_minutes,
                               "wait_seconds": min(max(args.wait, 0.0), 120.0)}
    if args.area:
        try:
            area = json.loads(Path(args.area).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"--area {args.area}: {exc}") from exc
        if isinstance(area, dict) and area.get("type") == "FeatureCollection":
            features = area.get("features") or [{}]
            area = features[0]
        if isinstance(area, dict) and area.get("type") == "Feature":
            area = area.get("geometry")
        request["area"] = area
    else:
        request["preset"] = args.preset
    for key in ("headline", "operators", "channel", "authority"):
        if getattr(args, key) is not None:
            request[key] = getattr(args, key)
    return _finish(*call(args, "POST", "/api/v1/drills", body=json.dumps(request).encode()), out)
