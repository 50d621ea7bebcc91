"""``python -m minray.node.main --settings JSON [--ready-fd N]``: a node process.

It forks the zygote before it loads anything but the standard library, so that
the zygote imports what workers run while this process imports the node itself:
two cores at once, where both used to wait for one (node/zygote.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys

from .. import proctitle
from .node_settings import NodeSettings
from .zygote import start_zygote, worker_entry


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m minray.node.main")
    parser.add_argument("--settings", required=True, help="JSON of NodeSettings")
    parser.add_argument("--ready-fd", type=int, default=None)
    args = parser.parse_args(argv)
    raw = json.loads(args.settings)
    settings = NodeSettings(**{**raw, "node_id": bytes.fromhex(raw["node_id"])})
    proctitle.set_title("node" if settings.head_address else "head")  # (ps: minray::head)
    with open(os.path.join(settings.session_dir, "token"), "rb") as f:
        token = f.read()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s node: %(message)s", stream=sys.stderr
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # fork the zygote first, while this process has no threads and no event loop
    zygote_pid, zygote_sock = start_zygote(worker_entry(settings, token))
    from . import daemon  # the node itself, loaded while the zygote loads the workers' modules
    from .worker_pool import ZygoteClient

    daemon.run(settings, token, ZygoteClient(zygote_pid, zygote_sock), args.ready_fd)


if __name__ == "__main__":
    main()
