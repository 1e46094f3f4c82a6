"""``capcast smpp send|broadcast``: talk to any SMSC with capcast's SMPP client."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from dispatcher.cli import EXIT_INVALID, EXIT_OK, Commands, UsageError

if TYPE_CHECKING:
    from gateways.smpp.client import LinkConfig


def register(commands: Commands) -> None:
    """Add ``capcast smpp send`` and ``capcast smpp broadcast``."""
    group = commands.group("smpp", "send SMS and SMPP 5.0 cell broadcasts to an SMSC")

    send = group.add_parser(
        "send", help="submit one message or a load of N messages (submit_sm)",
        description="Bind to an SMSC and submit TEXT to the destinations (cycling through them "
                    "for --count N), with a window of outstanding requests and an optional "
                    "rate limit. Reports submitted, acknowledged, failed, delivery receipts "
                    "and the rate. Exit status 1 when the bind fails or any message was not "
                    "acknowledged.")
    _add_link_options(send)
    send.add_argument("--from", dest="source", required=True, metavar="SRC",
                      help="source address: a number (+4915..., a short code) or a name")
    send.add_argument("--to", required=True, metavar="DEST[,DEST...]",
                      help="destination numbers, comma-separated")
    send.add_argument("--text", required=True, help="message text (GSM-7 or UCS-2, segmented)")
    send.add_argument("--count", type=int, default=0, metavar="N",
                      help="messages to send (default: one per destination)")
    send.add_argument("--window", type=int, default=64, metavar="W",
                      help="outstanding requests per link (default 64)")
    send.add_argument("--tps", type=float, metavar="R", help="submit_sm per second (per link)")
    send.add_argument("--expires-in", type=float, metavar="S",
                      help="nothing is submitted after S seconds from now")
    send.add_argument("--no-receipts", action="store_true",
                      help="do not ask for delivery receipts")
    send.add_argument("--wait-receipts", type=float, default=5.0, metavar="S",
                      help="seconds to wait for receipts after the last response (default 5)")
    send.add_argument("--json", action="store_true", help="print one JSON summary object")
    send.set_defaults(handler=_cmd_send)

    broadcast = group.add_parser(
        "broadcast", help="send an SMPP 5.0 broadcast_sm (cell broadcast) to cells",
        description="Bind to an SMSC/CBC and send one broadcast_sm for the given cells. "
                    "--message-id is the 3GPP TS 23.041 message identifier (the CBS channel, "
                    "e.g. 4370); it goes in broadcast_content_type with network type GSM. "
                    "--repeat and --interval ask the centre to repeat the broadcast "
                    "(broadcast_rep_num, broadcast_frequency_interval).")
    _add_link_options(broadcast)
    broadcast.add_argument("--message-id", type=int, required=True, metavar="ID",
                           help="CBS message identifier (0-65535)")
    broadcast.add_argument("--cells", required=True, metavar="ID[,ID...]",
                           help="cell ids or area names, comma-separated")
    broadcast.add_argument("--text", required=True, help="message text")
    broadcast.add_argument("--from", dest="source", default="", metavar="SRC",
                           help="source address (optional)")
    broadcast.add_argument("--repeat", type=int, metavar="N",
                           help="number of broadcasts (0 = until expiry)")
    broadcast.add_argument("--interval", type=float, metavar="S",
                           help="seconds between repetitions")
    broadcast.add_argument("--expires-in", type=float, metavar="S",
                           help="validity period in seconds; not sent after it")
    broadcast.add_argument("--json", action="store_true", help="print one JSON summary object")
    broadcast.set_defaults(handler=_cmd_broadcast)


class BindFailed(Exception):
    """No link to the SMSC could be bound (unreachable, or credentials refused)."""


def _add_link_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", metavar="HOST:PORT", help="the SMSC")
    parser.add_argument("--system-id", required=True, metavar="ID", help="SMPP system_id")
    secret = parser.add_mutually_exclusive_group(required=True)
    secret.add_argument("--password-env", metavar="VAR",
                        help="environment variable holding the password")
    secret.add_argument("--password-file", metavar="FILE", help="file holding the password")
    parser.add_argument("--system-type", default="", help="SMPP system_type (default empty)")
    parser.add_argument("--bind", choices=("transceiver", "transmitter"), default="transceiver",
                        help="bind mode (default transceiver)")
    parser.add_argument("--links", type=int, default=1, metavar="N",
                        help="parallel links (binds) to the SMSC (default 1)")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="S",
                        help="seconds to connect and bind, and to wait for each response")


def read_password(env: str | None, file: str | None) -> str | None:
    """The password from an environment variable or a file (never from the command line)."""
    if env:
        if env not in os.environ:
            raise UsageError(f"environment variable {env} is not set")
        return os.environ[env]
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise UsageError(f"cannot read the password file {file}: {exc.strerror}") from None
    return None


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) as (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"not HOST:PORT: {text!r}")
    return host.strip("[]"), int(port)


def _links(args: argparse.Namespace, *, window: int = 64, tps: float | None = None,
           interface_version: int = 0x34) -> list[LinkConfig]:
    from gateways.smpp.client import BindMode, LinkConfig

    host, port = parse_address(args.address)
    password = read_password(args.password_env, args.password_file) or ""
    if args.links < 1:
        raise UsageError("--links must be at least 1")
    try:
        return [LinkConfig(host=host, port=port, system_id=args.system_id, password=password,
                           system_type=args.system_type, bind_mode=BindMode(args.bind),
                           window=window, tps=tps, interface_version=interface_version,
                           response_timeout=args.timeout, connect_timeout=args.timeout)
                for _ in range(args.links)]
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _expiry(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.now(UTC) + timedelta(seconds=seconds)


# -- smpp send ---------------------------------------------------------------------------


def _cmd_send(args: argparse.Namespace, out: TextIO) -> int:
    destinations = [d.strip() for d in args.to.split(",") if d.strip()]
    if not destinations:
        raise UsageError("--to needs at least one destination")
    if args.count < 0:
        raise UsageError("--count must not be negative")
    count = args.count or len(destinations)
    links = _links(args, window=args.window, tps=args.tps)
    try:
        summary = asyncio.run(_send(args, links, destinations, count))
    except BindFailed as exc:
        print(f"capcast: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        print(json.dumps(summary, sort_keys=True), file=out)
    else:
        print(f"submitted {summary['submitted']}, acknowledged {summary['acknowledged']}, "
              f"failed {summary['failed']}, receipts {summary['receipts']} "
              f"in {summary['seconds']:.2f} s ({summary['rate']:.0f} msg/s)", file=out)
        for status, n in summary["statuses"].items():
            if n and status != "accepted":
                print(f"  {status}: {n}", file=out)
        for error in summary["errors"]:
            print(f"  {error}", file=out)
    return EXIT_OK if summary["failed"] == 0 else EXIT_INVALID


async def _send(args: argparse.Namespace, links: list[LinkConfig], destinations: list[str],
                count: int) -> dict[str, Any]:
    from gateways.errors import GatewayError
    from gateways.smpp.client import OutcomeStatus, SmppClient, SubmitOutcome

    client = SmppClient(links)
    try:
        await client.start(wait_bound=args.timeout)
    except GatewayError as exc:
        await client.close(drain_timeout=0, unbind_timeout=1)
        raise BindFailed(f"cannot bind to {args.address}: {exc}") from None
    errors: dict[str, int] = {}
    started = time.perf_counter()
    try:
        job = client.submit_bulk(
            text=args.text, source=args.source,
            recipients=itertools.islice(itertools.cycle(destinations), count),
            expires_at=_expiry(args.expires_in), registered_delivery=not args.no_receipts,
            receipt_timeout=0.0 if args.no_receipts else args.wait_receipts)
        submitted_at = None
        async for outcome in job:
            if isinstance(outcome, SubmitOutcome):
                if outcome.error:
                    errors[outcome.error] = errors.get(outcome.error, 0) + 1
                if job.submissions_done and submitted_at is None:
                    submitted_at = time.perf_counter()
        elapsed = (submitted_at or time.perf_counter()) - started
    finally:
        await client.close()
    summary = job.summary()
    stats = client.stats()
    acknowledged = summary[OutcomeStatus.ACCEPTED.value]
    return {
        "address": args.address,
        "messages": summary["messages"],
        "submitted": sum(s.submitted for s in stats),
        "acknowledged": acknowledged,
        "failed": summary["messages"] - acknowledged,
        "receipts": summary["receipts"],
        "throttled": sum(s.throttled for s in stats),
        "seconds": round(elapsed, 3),
        "rate": round(acknowledged / elapsed, 1) if elapsed > 0 else 0.0,
        "statuses": {status.value: summary[status.value] for status in OutcomeStatus},
        "errors": [f"{n} x {text}" for text, n in sorted(errors.items())][:20],
    }


# -- smpp broadcast ----------------------------------------------------------------------


def _cmd_broadcast(args: argparse.Namespace, out: TextIO) -> int:
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    if not cells:
        raise UsageError("--cells needs at least one cell id")
    if not 0 <= args.message_id <= 0xFFFF:
        raise UsageError("--message-id must be between 0 and 65535")
    if args.repeat is not None and not 0 <= args.repeat <= 0xFFFF:
        raise UsageError("--repeat must be between 0 and 65535")
    links = _links(args, interface_version=0x50)
    try:
        result = asyncio.run(_broadcast(args, links, cells))
    except BindFailed as exc:
        print(f"capcast: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        print(json.dumps(result, sort_keys=True), file=out)
    elif result["ok"]:
        failed = f", failed areas: {', '.join(result['failed_areas'])}" \
            if result["failed_areas"] else ""
        print(f"broadcast accepted as {result['broadcast_id']} for {len(cells)} cell(s) "
              f"in {result['seconds']:.2f} s{failed}", file=out)
    else:
        print(f"broadcast refused: {result['error']}", file=out)
    return EXIT_OK if result["ok"] else EXIT_INVALID


async def _broadcast(args: argparse.Namespace, links: list[LinkConfig],
                     cells: list[str]) -> dict[str, Any]:
    from gateways.errors import GatewayError
    from gateways.smpp.client import SmppClient
    from gateways.smpp.codec import BroadcastContentType

    client = SmppClient(links)
    try:
        await client.start(wait_bound=args.timeout)
    except GatewayError as exc:
        await client.close(drain_timeout=0, unbind_timeout=1)
        raise BindFailed(f"cannot bind to {args.address}: {exc}") from None
    started = time.perf_counter()
    result: dict[str, Any] = {"address": args.address, "cells": len(cells),
                              "message_identifier": args.message_id}
    try:
        outcome = await client.broadcast(
            areas=cells, text=args.text, source=args.source,
            content_type=BroadcastContentType(network_type=1, content_type=args.message_id),
            repetitions=args.repeat, interval=args.interval,
            expires_at=_expiry(args.expires_in))
        result.update(ok=True, broadcast_id=outcome.message_id,
                      failed_areas=[a.name or a.details.hex() for a in outcome.failed_areas])
    except GatewayError as exc:
        result.update(ok=False, error=str(exc),
                      command_status=getattr(exc, "command_status", None))
    finally:
        await client.close()
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result
