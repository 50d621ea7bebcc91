"""Where the job client sends its requests and which token it sends (job_submission/address.py),
with a session root of fake sessions and no server."""

from __future__ import annotations

import pytest

from minray.job_submission import address
from minray.node import cluster_address


@pytest.fixture
def root(tmp_path, monkeypatch):
    """An empty session root; no MINRAY_ADDRESS, token variable or ~/.minray/auth_token."""
    sessions = tmp_path / "root"
    sessions.mkdir(mode=0o700)
    monkeypatch.setattr(address, "session_root", lambda: str(sessions))
    monkeypatch.setattr(address, "running_dashboards", lambda root: [])
    monkeypatch.setattr(cluster_address, "current_cluster_file", lambda: str(tmp_path / "cc"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("MINRAY_ADDRESS", "MINRAY_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return sessions


def session(root, name: str, head: str | None, dashboard: str | None, token: bytes = b"\x01" * 32):
    path = root / name
    path.mkdir()
    if head:
        (path / "head_address").write_text(head + "\n")
    if dashboard:
        (path / "dashboard_url").write_text(dashboard + "\n")
    (path / "token").write_bytes(token)
    return str(path)


def test_a_url_is_the_dashboard_and_its_sessions_token_is_found(root):
    found = session(root, "session-a", "127.0.0.1:6380", "127.0.0.1:8265", b"\x07" * 32)
    assert address.dashboard_address("http://localhost:8265/") == ("http://localhost:8265", found)
    assert address.find_token(found) == b"\x07" * 32
    assert address.dashboard_address("http://10.0.0.5:8265") == ("http://10.0.0.5:8265", None)


def test_a_heads_address_is_turned_into_its_dashboards(root, monkeypatch):
    found = session(root, "session-a", "127.0.0.1:6380", "127.0.0.1:41000")
    assert address.dashboard_address("127.0.0.1:6380") == ("http://127.0.0.1:41000", found)
    monkeypatch.setenv("MINRAY_ADDRESS", "127.0.0.1:6380")
    assert address.dashboard_address(None) == ("http://127.0.0.1:41000", found)
    session(root, "session-b", "127.0.0.1:6390", None)
    with pytest.raises(ConnectionError, match="serves no dashboard"):
        address.dashboard_address("127.0.0.1:6390")
    assert address.dashboard_address("127.0.0.1:9999") == ("http://127.0.0.1:9999", None)


def test_the_environment_token_comes_before_the_sessions(root, monkeypatch):
    found = session(root, "session-a", None, "127.0.0.1:8265")
    monkeypatch.setenv("MINRAY_AUTH_TOKEN", "ab" * 32)
    assert address.find_token(found) == b"\xab" * 32
    monkeypatch.delenv("MINRAY_AUTH_TOKEN")
    assert address.find_token(None) is None


@pytest.mark.parametrize("bad", ["ftp://h:1", "http://h", "http://:80", "nonsense", "h:0"])
def test_a_malformed_address_says_which_forms_work(root, bad):
    with pytest.raises(ValueError, match="http://HOST:PORT|Accepted forms"):
        address.dashboard_address(bad)


def test_with_nothing_running_it_says_how_to_start_a_cluster(root):
    with pytest.raises(ConnectionError, match="minray start --head"):
        address.dashboard_address(None)
