"""``minray up | down | exec | submit | attach CLUSTER.yaml``: clusters on SSH hosts
(minray/cluster_launcher/)."""

from __future__ import annotations

import argparse
import os
import sys

COMMANDS = ("up", "down", "exec", "submit", "attach")


def add_commands(commands) -> None:
    up = commands.add_parser("up", help="start a cluster on SSH hosts from a cluster YAML file")
    up.add_argument("cluster", help="the cluster file (see docs/cluster.md, 'minray up')")
    up.add_argument("-y", "--yes", action="store_true", help="do not ask (minray up never asks)")
    up.add_argument(
        "--wait-timeout", type=float, default=120.0,
        help="seconds to wait for every node to join (default 120)",
    )  # fmt: skip
    down = commands.add_parser("down", help="stop the cluster of a cluster YAML file")
    down.add_argument("cluster")
    down.add_argument("-y", "--yes", action="store_true", help="do not ask (it never asks)")
    run = commands.add_parser("exec", help="run a shell command on the cluster's head")
    run.add_argument("cluster")
    run.add_argument("cmd", help="the command (one argument: quote it)")
    submit = commands.add_parser("submit", help="copy a script to the head and run it there")
    submit.add_argument("cluster")
    submit.add_argument("script")
    submit.add_argument("script_args", nargs=argparse.REMAINDER, help="the script's arguments")
    attach = commands.add_parser("attach", help="an interactive shell on the cluster's head")
    attach.add_argument("cluster")


def run(args) -> int:
    from .cluster_launcher import commands
    from .cluster_launcher.config import ClusterConfigError, load

    try:
        config = load(args.cluster)
        if args.command == "up":
            return commands.up(config, args.wait_timeout)
        if args.command == "down":
            return commands.down(config)
        if args.command == "exec":
            return commands.exec_on_head(config, args.cmd)
        if args.command == "submit":
            return commands.submit(config, args.script, args.script_args)
        argv = commands.attach_argv(config)
        sys.stdout.flush()
        os.execvp(argv[0], argv)  # the shell is ssh's from here on
    except (ClusterConfigError, commands.LaunchError, TimeoutError, RuntimeError) as e:
        print(f"minray {args.command}: {e}", file=sys.stderr)
        return 1
    return 0
