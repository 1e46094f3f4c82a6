"""The ``capcast`` command line.

Commands live in :mod:`dispatcher.commands`, one module per command or
group, each with a ``register(commands)`` function; this module finds them,
builds the parser and runs the chosen handler. Only the command line installs
logging handlers and prints; the packages it calls return values and raise
errors. Exit codes: 0 success, 1 a document was invalid (or a command failed on
its input), 2 a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from typing import NoReturn

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake in how the command was called; exits with status 2."""


def size_argument(text: str) -> int:
    """An argparse type for sizes like ``1048576``, ``512k``, ``2m``."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    try:
        if text[-1:].lower() in units:
            return int(float(text[:-1]) * units[text[-1].lower()])
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a size: {text!r} (examples: 1048576, 512k, 2m)") from None


class Commands:
    """Where command modules add their parsers: top-level commands and groups."""

    def __init__(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self._subparsers = subparsers
        self._groups: dict[str, argparse._SubParsersAction[argparse.ArgumentParser]] = {}

    def command(self, name: str, help: str, **kwargs: str) -> argparse.ArgumentParser:
        """A top-level command, e.g. ``capcast target``; set ``handler`` with set_defaults."""
        return self._subparsers.add_parser(name, help=help,
                                           description=kwargs.get("description", help))

    def group(self, name: str, help: str = "") -> argparse._SubParsersAction[
            argparse.ArgumentParser]:
        """The subcommands of a group such as ``capcast cap`` or ``capcast bench``."""
        if name not in self._groups:
            parser = self._subparsers.add_parser(name, help=help or GROUP_HELP.get(name, ""),
                                                 description=help or GROUP_HELP.get(name))
            self._groups[name] = parser.add_subparsers(dest=f"{name}_command",
                                                       metavar="COMMAND", required=True)
        return self._groups[name]


#: Help for groups that several modules add to.
GROUP_HELP = {
    "bench": "benchmarks that print ratios against alternatives (not tests)",
    "sim": "simulators of network elements (SMSC, CBC) for drills, demos and tests",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every capcast command."""
    parser = argparse.ArgumentParser(
        prog="capcast",
        description="Mobile early-warning dispatcher: CAP alerts in, cell broadcast and "
                    "location-based SMS out.")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v info, -vv debug) to standard error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands = Commands(subparsers)
    import dispatcher.commands as package

    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        importlib.import_module(f"dispatcher.commands.{module.name}").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the ``capcast`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code = args.handler(args, sys.stdout)
    except UsageError as exc:
        parser.exit(EXIT_USAGE, f"{parser.prog}: error: {exc}\n")
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = EXIT_OK
    sys.exit(code)
