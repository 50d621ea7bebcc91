"""TLS between machines (protocol/tls.py), on loopback with real sockets and processes.

A two-node cluster with TLS on runs tasks across nodes and pulls a large object
(the second node is at 127.0.0.2, so everything between the nodes is TCP, hence
TLS). Each bad input is refused at the handshake with an error that names the side
and why, and the listener keeps serving good peers: a plain-TCP peer on a TLS
listener and the reverse, an expired certificate (either side), a certificate for
another host, one from another CA, and missing files. The process's TLS settings
are switched with ``use_settings`` (the environment for child processes, and the
settings tls.py reads in this one).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import pytest

import minray
from minray import _loop, tls_certs
from minray.cluster_utils import Cluster
from minray.config import CONFIG
from minray.exceptions import RaySystemError
from minray.protocol import blocking, tls
from minray.protocol.connection import serve
from minray.protocol.messages import ClusterInfo, GetClusterInfo

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOKEN = b"k" * 32
LOCAL = ["127.0.0.1", "127.0.0.2", "localhost"]


@pytest.fixture(scope="module")
def certs():
    """Good and bad certificates: name -> (cert path, key path); "ca" and "other_ca"."""
    folder = tempfile.mkdtemp(prefix="mr-tls-")
    ca, other_ca = tls_certs.make_ca(), tls_certs.make_ca("another CA")
    long_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
    made = {
        "ca": ca,
        "other_ca": other_ca,
        "good": tls_certs.make_node_cert(ca, LOCAL),
        "expired": tls_certs.make_node_cert(ca, LOCAL, days=1, valid_from=long_ago),
        "other_host": tls_certs.make_node_cert(ca, ["127.0.0.2"]),
        "from_other_ca": tls_certs.make_node_cert(other_ca, LOCAL),
    }
    paths = {}
    for name, issued in made.items():
        paths[name] = (os.path.join(folder, f"{name}.crt"), os.path.join(folder, f"{name}.key"))
        tls_certs.write_issued(issued, *paths[name])
    yield paths
    shutil.rmtree(folder)


@pytest.fixture
def use_settings(monkeypatch):
    """``use_settings(cert_name, ca_name)`` turns TLS on with those files, for this process
    and the processes it starts; ``use_settings(None)`` turns it off."""

    def switch(paths: tuple | None, ca: str = "") -> None:
        if paths is None:
            monkeypatch.setenv("MINRAY_USE_TLS", "0")
            monkeypatch.setattr(tls, "CONFIG", dataclasses.replace(CONFIG, use_tls=False))
        else:
            values = {
                "tls_server_cert": paths[0],
                "tls_server_key": paths[1],
                "tls_ca_cert": ca,
            }
            monkeypatch.setenv("MINRAY_USE_TLS", "1")
            for field, value in values.items():
                monkeypatch.setenv(f"MINRAY_{field.upper()}", value)
            settings = dataclasses.replace(CONFIG, use_tls=True, **values)
            monkeypatch.setattr(tls, "CONFIG", settings)
        tls._contexts.cache_clear()

    yield switch
    tls._contexts.cache_clear()


class Handler:
    def handle_GetClusterInfo(self, conn, msg):
        return ClusterInfo([{"NodeID": "n"}])


class Listener:
    """``serve`` on a loop thread of its own (with the TLS settings in force when made),
    recording what its connections and its admission gate log."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.logged: list[str] = []
        handler = logging.Handler()
        handler.emit = lambda record: self.logged.append(record.getMessage())
        self._log_handler = handler
        logging.getLogger("minray.protocol").addHandler(handler)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.server = self._run(serve("tcp:127.0.0.1:0", Handler(), TOKEN, 1 << 20))
        self.address = f"tcp:127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def wait_logged(self, text: str) -> str:
        for _ in range(200):
            found = [line for line in self.logged if text in line]
            if found:
                return found[0]
            threading.Event().wait(0.05)
        raise AssertionError(f"{text!r} not logged; logged: {self.logged}")

    def close(self) -> None:
        async def stop():
            self.server.close()

        self._run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()
        logging.getLogger("minray.protocol").removeHandler(self._log_handler)


@pytest.fixture
def listener_with(certs, use_settings):
    """``listener_with(name)``: a listener with that certificate (None: plain TCP)."""
    made = []

    def start(name: str | None) -> Listener:
        use_settings(None if name is None else certs[name], certs["ca"][0])
        made.append(Listener())
        return made[-1]

    yield start
    for listener in made:
        listener.close()


def ask(address: str) -> list:
    sock = blocking.dial(address, TOKEN, 5)
    try:
        return blocking.request(sock, GetClusterInfo()).nodes
    finally:
        sock.close()


# --- a cluster with TLS on ---------------------------------------------------------------


def test_two_node_cluster_with_tls_runs_tasks_across_nodes_and_pulls_a_large_object(
    certs, use_settings
):
    np = pytest.importorskip("numpy")
    use_settings(certs["good"], certs["ca"][0])
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        node = cluster.add_node(num_cpus=1, resources={"far": 1}, node_ip_address="127.0.0.2")
        cluster.wait_for_nodes()
        cluster.connect()

        @minray.remote(resources={"far": 0.01})
        def on_far_node(x):
            return minray.get_runtime_context().get_node_id(), int(x.sum())

        @minray.remote(resources={"far": 0.01})
        def make_there():
            return np.full(48 << 20, 3, dtype=np.uint8)

        big = np.ones(64 << 20, dtype=np.uint8)
        where, total = minray.get(on_far_node.remote(minray.put(big)))  # a pull to the node
        assert (where, total) == (node.node_id, big.size)
        back = minray.get(make_there.remote())  # a pull from it, to the head
        assert back.size == 48 << 20 and int(back[-1]) == 3
        assert (
            sorted(minray.get([on_far_node.remote(np.ones(10)) for _ in range(20)]))
            == [(node.node_id, 10)] * 20
        )
        # the head's TCP listener speaks TLS only: a plain-TCP client gets nothing
        use_settings(None)
        with pytest.raises((TimeoutError, ConnectionError)):
            blocking.dial(f"tcp:{cluster.address}", cluster.token, 0.5)
    finally:
        cluster.shutdown()


def test_node_with_a_certificate_from_another_ca_cannot_join_and_the_cluster_carries_on(
    certs, use_settings
):
    use_settings(certs["good"], certs["ca"][0])
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        use_settings(certs["from_other_ca"], certs["ca"][0])
        with pytest.raises(RaySystemError) as refused:
            cluster.add_node(num_cpus=1, node_ip_address="127.0.0.2")
        assert "could not join" in str(refused.value)
        assert "TLS handshake" in str(refused.value)
        assert "not signed by the CA" in str(refused.value)  # our side refused the head's
        use_settings(certs["good"], certs["ca"][0])
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.2")
        cluster.wait_for_nodes()
        assert len(cluster.alive_node_ids()) == 2
    finally:
        cluster.shutdown()


# --- each bad input, against one listener --------------------------------------------------


def test_plain_tcp_client_on_a_tls_listener_is_dropped_and_good_peers_are_served(
    listener_with, certs, use_settings, monkeypatch
):
    monkeypatch.setattr(tls, "HANDSHAKE_TIMEOUT_S", 0.5)
    listener = listener_with("good")
    use_settings(None)
    with pytest.raises((TimeoutError, ConnectionError)):
        blocking.dial(listener.address, TOKEN, 2)
    line = listener.wait_logged("no TLS handshake")
    assert "on this side (the server)" in line and "plain TCP" in line
    use_settings(certs["good"], certs["ca"][0])
    assert ask(listener.address) == [{"NodeID": "n"}]


def test_tls_client_on_a_plain_listener_is_refused_on_both_sides(
    listener_with, certs, use_settings
):
    listener = listener_with(None)
    use_settings(certs["good"], certs["ca"][0])
    with pytest.raises(tls.TLSHandshakeError, match="does not speak TLS"):
        ask(listener.address)
    assert "this listener does not" in listener.wait_logged("speaks TLS")
    use_settings(None)
    assert ask(listener.address) == [{"NodeID": "n"}]


def test_expired_client_certificate_is_refused_by_the_server(listener_with, certs, use_settings):
    listener = listener_with("good")
    use_settings(certs["expired"], certs["ca"][0])
    with pytest.raises(tls.TLSHandshakeError, match=r"refused by the other side \(the server\)"):
        ask(listener.address)
    line = listener.wait_logged("client's certificate failed verification")
    assert "refused by this side (the server)" in line and "expired" in line
    use_settings(certs["good"], certs["ca"][0])
    assert ask(listener.address) == [{"NodeID": "n"}]


def test_expired_server_certificate_is_refused_by_the_client(listener_with, certs, use_settings):
    listener = listener_with("expired")
    use_settings(certs["good"], certs["ca"][0])
    with pytest.raises(tls.TLSHandshakeError) as refused:
        ask(listener.address)
    assert "refused by this side (the client)" in str(refused.value)
    assert "expired" in str(refused.value)
    assert "refused by the other side (the client)" in listener.wait_logged("TLS handshake")


def test_server_certificate_for_another_host_is_refused_by_the_client(
    listener_with, certs, use_settings
):
    listener = listener_with("other_host")  # names 127.0.0.2 only; dialled at 127.0.0.1
    use_settings(certs["good"], certs["ca"][0])
    with pytest.raises(tls.TLSHandshakeError) as refused:
        ask(listener.address)
    assert "refused by this side (the client)" in str(refused.value)
    assert "mismatch" in str(refused.value) and "--hosts" in str(refused.value)


@pytest.mark.parametrize("side", ["client", "server"])
def test_certificate_from_another_ca_is_refused(listener_with, certs, use_settings, side):
    listener = listener_with("from_other_ca" if side == "server" else "good")
    use_settings(certs["good" if side == "server" else "from_other_ca"], certs["ca"][0])
    with pytest.raises(tls.TLSHandshakeError) as refused:
        ask(listener.address)
    if side == "server":  # the client checks the server's certificate
        assert "refused by this side (the client)" in str(refused.value)
        assert "not signed by the CA" in str(refused.value)
    else:
        line = listener.wait_logged("client's certificate failed verification")
        assert "not signed by the CA" in line
    use_settings(certs["good"], certs["ca"][0])
    if side == "client":
        assert ask(listener.address) == [{"NodeID": "n"}]


def test_missing_certificate_file_is_refused_at_start(certs, use_settings, tmp_path):
    use_settings((str(tmp_path / "nothing.crt"), certs["good"][1]), certs["ca"][0])
    with pytest.raises(tls.TLSSettingsError, match="MINRAY_TLS_SERVER_CERT=.*cannot be read"):
        _loop.run(serve("tcp:127.0.0.1:0", Handler(), TOKEN, 1 << 20))
    env = dict(os.environ, PYTHONPATH=ROOT, MINRAY_SESSION_ROOT=str(tmp_path / "root"))
    out = subprocess.run(
        [sys.executable, "-m", "minray.cli", "start", "--head", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "MINRAY_TLS_SERVER_CERT" in out.stderr and "cannot be read" in out.stderr
    assert not os.path.exists(tmp_path / "root" / "started")  # nothing was started
