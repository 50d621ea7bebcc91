"""minray up's cluster file (pure): defaults, Ray's names, and clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minray.cluster_launcher import ssh
from minray.cluster_launcher.commands import alive_nodes, attach_argv
from minray.cluster_launcher.config import ClusterConfigError, load, parse


def _file(**changes) -> dict:
    data = {
        "cluster_name": "lab",
        "provider": {"type": "ssh", "head_ip": "10.0.0.1", "worker_ips": ["10.0.0.2"]},
        "auth": {"ssh_user": "student"},
    }
    data.update(changes)
    return data


def test_defaults_start_the_head_and_join_the_workers_to_it():
    config = parse(_file())
    assert config.hosts() == ["10.0.0.1", "10.0.0.2"] and config.address == "10.0.0.1:6380"
    assert config.head_script()[-1].startswith("minray start --head --port=6380")
    assert "--address=$MINRAY_HEAD_IP:6380" in config.worker_script()[-1]
    assert config.ssh_private_key is None and config.python == "python3"


def test_setup_commands_run_before_the_start_commands_in_order():
    config = parse(
        _file(
            setup_commands=["a"],
            head_setup_commands=["h"],
            worker_setup_commands=["w"],
            initialization_commands=["i"],
            head_start_minray_commands=["start head"],
            worker_start_minray_commands=["start worker"],
        )
    )
    assert config.head_script() == ["i", "a", "h", "start head"]
    assert config.worker_script() == ["i", "a", "w", "start worker"]


@pytest.mark.parametrize(
    "changes, said",
    [
        ({"head_start_ray_commands": ["ray start --head"]}, "head_start_minray_commands"),
        ({"docker": {}}, "does not support"),
        ({"colour": 1}, "unknown key 'colour'"),
        ({"cluster_name": "my lab"}, "cluster_name"),
        ({"provider": {"type": "aws", "head_ip": "1.2.3.4"}}, "provider.type must be 'ssh'"),
        ({"provider": {"type": "ssh"}}, "provider.head_ip"),
        ({"provider": {"type": "ssh", "head_ip": "a b"}}, "provider.head_ip"),
        ({"provider": {"type": "ssh", "head_ip": "h", "worker_ips": ["h"]}}, "more than once"),
        ({"provider": {"type": "ssh", "head_ip": "h", "worker_ips": "x"}}, "must be a list"),
        ({"provider": {"type": "ssh", "head_ip": "h", "zone": 1}}, "provider.zone"),
        ({"auth": {}}, "auth.ssh_user"),
        ({"auth": {"ssh_user": "s", "ssh_private_key": "/nonexistent/key"}}, "does not exist"),
        ({"auth": {"ssh_user": "s", "ssh_port": 70000}}, "auth.ssh_port"),
        ({"auth": {"ssh_user": "s", "ssh_options": ["-v"]}}, "Name=value"),
        ({"setup_commands": "pip install x"}, "list of strings"),
        ({"max_workers": 5}, "does not autoscale"),
        ({"head_port": "6380"}, "head_port"),
    ],
)
def test_a_wrong_file_names_the_key_and_what_to_write(changes, said):
    with pytest.raises(ClusterConfigError, match=said.replace("(", r"\(").replace(".", r"\.")):
        parse(_file(**changes))


def test_not_a_mapping_and_not_yaml_are_refused(tmp_path):
    with pytest.raises(ClusterConfigError, match="YAML mapping"):
        parse(["a"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster_name: [unclosed\n")
    with pytest.raises(ClusterConfigError, match="not valid YAML"):
        load(str(bad))
    with pytest.raises(ClusterConfigError, match="cannot read"):
        load(str(tmp_path / "missing.yaml"))


@given(st.text(min_size=0, max_size=40))
def test_any_cluster_name_is_either_accepted_as_is_or_refused_clearly(name):
    try:
        config = parse(_file(cluster_name=name))
    except ClusterConfigError as e:
        assert "cluster_name" in str(e)
    else:
        assert config.cluster_name == name and "/" not in name and " " not in name


@given(st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_the_token_travels_in_the_script_never_on_the_command_line(token):
    config = parse(_file(auth={"ssh_user": "s", "ssh_port": 2222, "ssh_options": ["A=b"]}))
    text = ssh.script(["minray start"], {"MINRAY_HEAD_IP": "10.0.0.1"}, secret=token)
    argv = ssh.ssh_argv(config, "10.0.0.2")
    assert token in text.splitlines() and not any(token in arg for arg in argv)
    assert text.index(token) < text.index("minray start")  # written before anything starts
    assert (
        argv[-1] == "s@10.0.0.2" and ["-p", "2222"] == argv[argv.index("-p") : argv.index("-p") + 2]
    )
    assert "BatchMode=yes" in argv and "A=b" in argv


def test_attach_is_an_interactive_ssh_to_the_head():
    argv = attach_argv(parse(_file()))
    assert argv[0] == "ssh" and "-t" in argv and argv[-1] == "student@10.0.0.1"


def test_the_live_nodes_are_read_from_minray_status():
    output = (
        "minray cluster at 10.0.0.1:6380: 2 node(s) alive, 1 dead\n"
        "  0123456789ab  10.0.0.1         head   CPU 0/2\n"
        "  abcdef012345  10.0.0.2         alive  CPU 1/2\n"
        "  fedcba987654  10.0.0.3         DEAD   CPU 0/2  (gone)\n"
    )
    assert alive_nodes(output) == {"10.0.0.1", "10.0.0.2"}


@pytest.mark.parametrize(
    "text, said",
    [
        (
            "cluster_name: lab\nprovider:\n  type: ssh\n  head_ip: h\n  zone: 2\n",
            "line 5: unknown key provider.zone",
        ),
        (
            "cluster_name: lab\nprovider:\n  type: ssh\nauth: {ssh_user: s}\n",
            "line 2: provider.head_ip",
        ),
        (
            "cluster_name: lab\ncolour: red\nprovider: {type: ssh, head_ip: h}\n",
            "line 2: unknown key 'colour'",
        ),
        (
            "cluster_name: lab\nprovider: {type: ssh, head_ip: h}\n"
            "auth:\n  ssh_user: s\n  ssh_port: x\n",
            "line 5: auth.ssh_port",
        ),
    ],
)
def test_errors_in_a_file_name_the_line_of_the_key(tmp_path, text, said):
    path = tmp_path / "cluster.yaml"
    path.write_text(text)
    with pytest.raises(ClusterConfigError, match=f"{path}, {said}"):
        load(str(path))
