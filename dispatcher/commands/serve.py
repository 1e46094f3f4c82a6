"""``capcast serve`` (HTTP API with workers) and ``capcast worker`` (workers only)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TextIO

from dispatcher.cli import EXIT_INVALID, EXIT_OK, Commands, UsageError
from dispatcher.commands.config import add_config_options, load_or_report

if TYPE_CHECKING:
    from dispatcher.config import Settings

#: Exit status when the service cannot start (bad config, database, inventory).
EXIT_STARTUP = 1


def register(commands: Commands) -> None:
    """Add ``capcast serve`` and ``capcast worker``."""
    serve = commands.command(
        "serve", "run the HTTP API with workers and the feed poller",
        description="Run the service: the HTTP API (/api/v1, /healthz, /readyz, /metrics), "
                    "in-process workers and the feed poller. Without a database URL an "
                    "embedded PostgreSQL starts in the data folder. Stops cleanly on SIGINT "
                    "or SIGTERM.")
    add_config_options(serve)
    serve.add_argument("--host", help="listen address (default: http.host)")
    serve.add_argument("--port", type=int, help="listen port (default: http.port; 0: any free)")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="in-process workers (default 1; 0 runs the API only, for "
                            "deployments with separate `capcast worker` processes)")
    serve.add_argument("--no-feeds", action="store_true", help="do not poll the feeds")
    _worker_tuning(serve)
    serve.set_defaults(handler=_cmd_serve)

    worker = commands.command(
        "worker", "run workers only (scale out: any number, on any host, one database)",
        description="Claim and run dispatch jobs from the shared PostgreSQL until SIGINT or "
                    "SIGTERM; any number of worker processes on any number of hosts may run "
                    "against one database.")
    add_config_options(worker)
    worker.add_argument("--workers", type=int, default=1, metavar="N",
                        help="workers in this process (default 1)")
    worker.add_argument("--concurrency", type=int, default=4, metavar="N",
                        help="jobs each worker runs at once (default 4)")
    _worker_tuning(worker)
    worker.set_defaults(handler=_cmd_worker)


def _worker_tuning(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lease-seconds", type=float, default=30.0, metavar="S",
                        help="a claimed job's lease, renewed by heartbeats every third of it; a "
                             "crashed worker's job is taken over after at most this long "
                             "(default 30)")
    parser.add_argument("--poll-interval", type=float, default=5.0, metavar="S",
                        help="fallback polling (and housekeeping) period when no NOTIFY "
                             "arrives (default 5)")


def load(args: argparse.Namespace, err: TextIO = sys.stderr) -> Settings | None:
    """The settings from --config/--secrets/--data-dir, or None after printing the problems."""
    return load_or_report(args, err, prefix="capcast: ")


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run ``main(stop)`` with ``stop`` set on SIGINT/SIGTERM; returns its exit status."""
    async def runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        return await main(stop)
    return asyncio.run(runner())


def startup_failed(exc: BaseException, err: TextIO = sys.stderr) -> int:
    """Print why the service could not start; the exit status."""
    err.write(f"capcast: cannot start: {exc}\n")
    return EXIT_STARTUP


def _cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    from aiohttp import web

    from cap.errors import CapcastError
    from dispatcher.app import create_app, open_service

    if args.workers < 0:
        raise UsageError("--workers must not be negative")
    if args.lease_seconds < 1 or args.poll_interval <= 0:
        raise UsageError("--lease-seconds must be at least 1 and --poll-interval positive")
    settings = load(args)
    if settings is None:
        return EXIT_INVALID
    host = args.host or settings.http.host
    port = settings.http.port if args.port is None else args.port

    async def main(stop: asyncio.Event) -> int:
        try:
            async with open_service(settings) as service:
                app = create_app(service, workers=args.workers, feeds=not args.no_feeds,
                                 lease_seconds=args.lease_seconds,
                                 poll_interval=args.poll_interval)
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                try:
                    site = web.TCPSite(runner, host, port)
                    await site.start()
                    bound = runner.addresses[0][1] if runner.addresses else port
                    out.write(f"capcast serving on http://{host}:{bound} "
                              f"(database {service.database_display}, "
                              f"{args.workers} worker(s)); Ctrl-C stops\n")
                    out.flush()
                    await stop.wait()
                finally:
                    await runner.cleanup()
        except (CapcastError, OSError) as exc:
            return startup_failed(exc)
        out.write("capcast stopped\n")
        return EXIT_OK

    return run_until_signalled(main)


def _cmd_worker(args: argparse.Namespace, out: TextIO) -> int:
    from cap.errors import CapcastError
    from dispatcher.app import make_workers, open_service, run_sweeper, run_workers

    if args.workers < 1 or args.concurrency < 1:
        raise UsageError("--workers and --concurrency must be at least 1")
    if args.lease_seconds < 1 or args.poll_interval <= 0:
        raise UsageError("--lease-seconds must be at least 1 and --poll-interval positive")
    settings = load(args)
    if settings is None:
        return EXIT_INVALID

    async def main(stop: asyncio.Event) -> int:
        try:
            async with open_service(settings) as service:
                workers = make_workers(service, args.workers, concurrency=args.concurrency,
                                       lease_seconds=args.lease_seconds,
                                       poll_interval=args.poll_interval)
                out.write(f"capcast worker: {len(workers)} worker(s) on "
                          f"{service.database_display}; Ctrl-C stops\n")
                out.flush()
                await asyncio.gather(run_workers(workers, stop), run_sweeper(service, stop))
        except (CapcastError, OSError) as exc:
            return startup_failed(exc)
        out.write("capcast worker stopped\n")
        return EXIT_OK

    return run_until_signalled(main)
