"""``capcast config check|show``: load the configuration the way the service will, and report."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, TextIO

from dispatcher.cli import EXIT_INVALID, EXIT_OK, Commands

if TYPE_CHECKING:
    from dispatcher.config import Settings


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """The options every command that reads the configuration takes."""
    parser.add_argument("--config", metavar="FILE",
                        help="configuration file (default: $CAPCAST_CONFIG, else built-in "
                             "defaults with an embedded database)")
    parser.add_argument("--secrets", metavar="FILE",
                        help="secrets file, mode 0600, outside the source tree "
                             "(default: $CAPCAST_SECRETS_FILE)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="where the embedded database and state live "
                             "(default: $CAPCAST_DATA_DIR or the user's data folder)")


def register(commands: Commands) -> None:
    """Add ``capcast config check`` and ``capcast config show``."""
    group = commands.group("config", "check and show the service configuration")
    check = group.add_parser("check", help="load and validate the configuration",
                             description="Load the configuration file, environment and "
                                         "secrets as the service would; list every problem "
                                         "with its key and line. Exit 1 if there is any.")
    add_config_options(check)
    check.set_defaults(handler=_cmd_check)
    show = group.add_parser("show", help="print the effective configuration, secrets masked",
                            description="Print the effective configuration as JSON, with "
                                        "secrets masked.")
    add_config_options(show)
    show.set_defaults(handler=_cmd_show)


def load_or_report(args: argparse.Namespace, out: TextIO, *,
                   prefix: str = "") -> Settings | None:
    """The settings from --config/--secrets/--data-dir, or None after writing every problem."""
    from dispatcher.config import ConfigError, load_settings

    try:
        return load_settings(args.config, secrets_path=args.secrets,
                             overrides={"data_dir": args.data_dir})
    except ConfigError as exc:
        out.write(f"{prefix}configuration has {len(exc.problems)} problem"
                  f"{'s' if len(exc.problems) != 1 else ''}:\n")
        for problem in exc.problems:
            out.write(f"  {problem}\n")
        return None


def _load(args: argparse.Namespace, out: TextIO) -> Settings | None:
    return load_or_report(args, out)


def _cmd_check(args: argparse.Namespace, out: TextIO) -> int:
    settings = _load(args, out)
    if settings is None:
        return EXIT_INVALID
    out.write("configuration is valid\n")
    return EXIT_OK


def _cmd_show(args: argparse.Namespace, out: TextIO) -> int:
    settings = _load(args, out)
    if settings is None:
        return EXIT_INVALID
    out.write(json.dumps(settings.redacted(), indent=2, default=str) + "\n")
    return EXIT_OK
