"""Finding a cluster: address forms, where the token comes from, versions, the local node."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray import __version__
from minray.head.query import parse_host_port
from minray.head.service import PYTHON_VERSION, version_problem
from minray.node import cluster_address
from minray.node.cluster_address import connection_target, local_node
from minray.protocol.reach import LOOPBACK, listens_on_tcp, reach_address


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MINRAY_AUTH_TOKEN", raising=False)
    monkeypatch.setattr(cluster_address, "current_cluster_file", lambda: str(tmp_path / "cc"))
    return tmp_path


def test_host_port_forms():
    assert parse_host_port("127.0.0.1:6380") == ("127.0.0.1", 6380)
    assert parse_host_port("[::1]:6380") == ("::1", 6380)
    for bad in ("6380", "host:", ":1", "h:0", "h:70000", "h:x"):
        with pytest.raises(ValueError, match="Accepted forms"):
            parse_host_port(bad)


def test_the_token_comes_from_the_argument_then_the_environment_then_the_file(home, monkeypatch):
    token_file = home / "home" / ".minray" / "auth_token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text("aa" * 32 + "\n")
    assert connection_target("h:1", None) == ("h:1", b"\xaa" * 32)
    monkeypatch.setenv("MINRAY_AUTH_TOKEN", "bb" * 32)
    assert connection_target("h:1", None)[1] == b"\xbb" * 32
    assert connection_target("h:1", "cc" * 32)[1] == b"\xcc" * 32
    assert connection_target("h:1", b"raw")[1] == b"raw"


def test_auto_reads_the_current_cluster_and_its_session_token(home):
    session = home / "session"
    session.mkdir()
    (session / "token").write_bytes(b"t" * 32)
    (home / "cc").write_text(json.dumps({"address": "127.0.0.1:7", "session_dir": str(session)}))
    assert connection_target("auto", None) == ("127.0.0.1:7", b"t" * 32)


def test_auto_without_a_cluster_and_an_address_without_a_token_say_what_to_do(home):
    with pytest.raises(ConnectionError, match="no running minray cluster.*minray start --head"):
        connection_target("auto", None)
    with pytest.raises(ConnectionError, match="no token.*MINRAY_AUTH_TOKEN"):
        connection_target("127.0.0.1:7", None)


def test_other_versions_are_refused_naming_both():
    assert version_problem(__version__, PYTHON_VERSION) == ""
    assert "minray 0.0.1" in version_problem("0.0.1", PYTHON_VERSION)
    problem = version_problem(__version__, "2.7")
    assert "Python 2.7" in problem and PYTHON_VERSION in problem


def test_a_driver_uses_a_live_node_whose_socket_is_on_this_machine(tmp_path):
    sock = tmp_path / "node.sock"
    sock.write_text("")
    nodes = [
        {"NodeID": "a", "Alive": True, "RayletSocketName": "unix:/elsewhere/node.sock"},
        {"NodeID": "b", "Alive": False, "RayletSocketName": f"unix:{sock}", "IsHead": True},
        {"NodeID": "c", "Alive": True, "RayletSocketName": f"unix:{sock}"},
    ]
    assert local_node(nodes)["NodeID"] == "c"
    assert local_node(nodes[:2]) is None


def test_the_current_cluster_record_is_removed_only_by_its_own_head(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster_address, "current_cluster_file", lambda: str(tmp_path / "cc"))
    cluster_address.record_current_cluster("127.0.0.1:1", "/s/one")
    cluster_address.forget_current_cluster("/s/two")
    assert cluster_address.read_current_cluster()["address"] == "127.0.0.1:1"
    cluster_address.forget_current_cluster("/s/one")
    assert cluster_address.read_current_cluster() is None


# --- which address reaches a node (protocol/reach.py) ---------------------------------

_ips = st.sampled_from(["127.0.0.1", "127.0.0.2", "10.0.0.1", "10.0.0.2", "::1"])


@given(_ips, _ips, st.integers(0, 65535))
def test_a_node_is_reached_by_unix_socket_at_its_own_address_else_by_tcp(here, there, port):
    node = {"NodeManagerAddress": there, "NodeManagerPort": port, "RayletSocketName": "unix:/s"}
    address = reach_address(node, here)
    if here == there:
        assert address == "unix:/s"
    elif port:
        assert address == f"tcp:{there}:{port}"
    else:  # a node without a TCP listener (an embedded one) cannot be reached from elsewhere
        assert address is None


def test_only_processes_of_a_node_at_the_default_loopback_address_skip_tcp():
    assert not listens_on_tcp(LOOPBACK)
    assert listens_on_tcp("127.0.0.2")
    assert listens_on_tcp("10.0.0.1")
