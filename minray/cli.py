"""The ``minray`` command."""

from __future__ import annotations

import argparse
import sys

from . import chaos_cli, cluster_cli, dashboard_cli, job_cli, stack_cli, state_cli, tls_cli, up_cli
from .debugger import cli as debug_cli


def build_parser() -> argparse.ArgumentParser:
    """The ``minray`` command's parser, every subcommand registered (tests check deployment
    files against it)."""
    parser = argparse.ArgumentParser(prog="minray", description="minray command line")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser(
        "microbenchmark", help="run the rows of `ray microbenchmark` on a local minray cluster"
    )
    cluster_cli.add_commands(commands)
    state_cli.add_commands(commands)
    chaos_cli.add_commands(commands)
    dashboard_cli.add_command(commands)
    job_cli.add_command(commands)
    debug_cli.add_command(commands)
    tls_cli.add_command(commands)
    up_cli.add_commands(commands)
    stack_cli.add_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("start", "stop", "status"):
        return cluster_cli.run(args)
    if args.command in ("list", "summary", "timeline", "why", "logs"):
        return state_cli.run(args)
    if args.command == "dashboard":
        return dashboard_cli.run(args)
    if args.command == "job":
        return job_cli.run(args)
    if args.command == "chaos":
        return chaos_cli.run(args)
    if args.command == "debug":
        return debug_cli.run(args)
    if args.command == "stack":
        return stack_cli.run(args)
    if args.command == "tls":
        return tls_cli.run(args)
    if args.command in up_cli.COMMANDS:
        return up_cli.run(args)
    if args.command == "microbenchmark":
        from .microbenchmark import main as run_microbenchmark

        run_microbenchmark()
        return 0
    if args.version:
        from . import __version__

        print(f"minray {__version__}")
        return 0
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
