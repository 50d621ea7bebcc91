"""``minray tls init DIR [--hosts HOST ...]``: a CA and a certificate per machine.

Writes, under DIR::

    ca.crt, ca.key            the cluster's CA (keep ca.key on this machine only)
    HOST/node.crt, node.key   one per host given (default: one for this machine, named
                              "localhost"), each valid for HOST, 127.0.0.1 and localhost

An existing ``ca.crt``/``ca.key`` in DIR is reused, so running it again with a new
host adds a machine to a cluster whose others keep their certificates. Keys are
written mode 0600. Then it prints the environment lines to set on each machine
(protocol/tls.py reads them through config.py).
"""

from __future__ import annotations

import os
import sys

from . import tls_certs
from .protocol.tls import env_lines


def add_command(commands) -> None:
    """Register ``tls init`` on the ``minray`` parser."""
    tls = commands.add_parser("tls", help="TLS between machines: make certificates")
    actions = tls.add_subparsers(dest="tls_command", required=True)
    init = actions.add_parser(
        "init", help="write a CA and a certificate per machine, and print the settings"
    )
    init.add_argument("dir", help="folder for the certificates (made mode 0700 if new)")
    init.add_argument(
        "--hosts",
        nargs="+",
        default=[],
        metavar="HOST",
        help="each machine's IP address or host name, as the others dial it (one "
        "certificate each; 127.0.0.1 and localhost are always added)",
    )
    init.add_argument("--days", type=int, default=825, help="validity of node certificates")


def run(args) -> int:
    try:
        init(args.dir, args.hosts, args.days)
    except (ImportError, ValueError, OSError) as e:
        print(f"minray tls init: {e}", file=sys.stderr)
        return 1
    return 0


def init(folder: str, hosts: list[str], days: int = 825) -> dict[str, tuple[str, str]]:
    """Write the CA (unless there) and a certificate per host; print what to set where.
    Returns host -> (certificate path, key path)."""
    for host in hosts:
        if not host or "/" in host or host.startswith("."):
            raise ValueError(f"--hosts {host!r} is not an IP address or host name")
    if days < 1:
        raise ValueError(f"--days must be at least 1, not {days}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    ca_cert, ca_key = os.path.join(folder, "ca.crt"), os.path.join(folder, "ca.key")
    if os.path.exists(ca_cert) and os.path.exists(ca_key):
        ca = tls_certs.read_issued(ca_cert, ca_key)
        print(f"Using the CA already in {ca_cert}.")
    else:
        ca = tls_certs.make_ca()
        tls_certs.write_issued(ca, ca_cert, ca_key)
        print(f"Wrote the cluster's CA to {ca_cert} (its key {ca_key}: keep it here only).")
    written = {}
    for host in hosts or ["localhost"]:
        where = os.path.join(folder, host)
        os.makedirs(where, mode=0o700, exist_ok=True)
        cert, key = os.path.join(where, "node.crt"), os.path.join(where, "node.key")
        issued = tls_certs.make_node_cert(ca, tls_certs.node_hosts(host), days=days)
        tls_certs.write_issued(issued, cert, key)
        written[host] = (cert, key)
    for host, (cert, key) in written.items():
        print(f"\nOn {host}: copy {os.path.dirname(cert)}/ and {ca_cert} there, then set")
        for line in env_lines(cert, key, ca_cert):
            print(f"  {line}")
    print(
        "\n(Paths above are on this machine: adjust them where the files land. Every "
        "machine of the cluster, drivers' too, needs TLS on with a certificate from this CA.)"
    )
    return written
