"""Ray's _system_config keys turned into minray's node settings (minray/system_config.py)."""

from __future__ import annotations

import json
import os

import pytest

from minray import system_config
from minray.config import Config

BASE = Config(heartbeat_interval_s=1.0, node_death_timeout_s=10.0)


def env(config: dict) -> dict:
    return system_config.node_environment(config, base=BASE)


def test_health_check_keys_set_heartbeat_and_death_timeout():
    assert env(
        {
            "health_check_period_ms": 200,
            "health_check_failure_threshold": 5,
            "health_check_timeout_ms": 500,
        }
    ) == {"MINRAY_HEARTBEAT_INTERVAL_S": "0.2", "MINRAY_NODE_DEATH_TIMEOUT_S": "1.5"}


def test_keys_not_given_keep_minrays_values():
    # threshold 10 (10 s / 1 s) x 0.1 s + a timeout of one period
    assert env({"health_check_period_ms": 100})["MINRAY_NODE_DEATH_TIMEOUT_S"] == "1.1"
    assert env({"health_check_failure_threshold": 3}) == {"MINRAY_NODE_DEATH_TIMEOUT_S": "4.0"}
    assert env({"idle_worker_killing_time_threshold_ms": 250}) == {
        "MINRAY_IDLE_WORKER_TIMEOUT_S": "0.25"
    }
    assert env({}) == {} and system_config.node_environment(None) == {}


def test_the_env_values_are_read_back_by_config(monkeypatch):
    for name, value in env({"health_check_period_ms": 300, "health_check_timeout_ms": 50}).items():
        monkeypatch.setenv(name, value)
    config = Config.from_env()
    assert config.heartbeat_interval_s == pytest.approx(0.3)
    assert config.node_death_timeout_s == pytest.approx(10 * 0.3 + 0.05)


def test_other_keys_are_warned_about_once_and_ignored(minray_log):
    config = {"object_spilling_threshold_test_key": 0.9, "health_check_initial_delay_ms": 0}
    assert env(config) == {}
    assert env({"object_spilling_threshold_test_key": 0.5, "health_check_period_ms": 1000}) == {
        "MINRAY_HEARTBEAT_INTERVAL_S": "1.0",
        "MINRAY_NODE_DEATH_TIMEOUT_S": "11.0",
    }
    records = {id(r): r for r in minray_log.records if r.levelname == "WARNING"}  # each once
    warnings = [r.getMessage() for r in records.values()]
    assert len(warnings) == 1, warnings
    assert "'object_spilling_threshold_test_key'" in warnings[0]
    assert "ignored" in warnings[0] and "health_check_period_ms" in warnings[0]


def test_a_nonzero_initial_delay_is_warned_about(minray_log):
    env({"health_check_initial_delay_ms": 5000})
    assert "'health_check_initial_delay_ms'" in minray_log.text


@pytest.mark.parametrize("value", ["fast", {"a": 1}.items(), ["health_check_period_ms"]])
def test_not_a_dict_is_a_type_error(value):
    with pytest.raises(TypeError, match="_system_config of init\\(\\) must be a dict"):
        env(value)


@pytest.mark.parametrize(
    "config",
    [
        {"health_check_period_ms": 0},
        {"health_check_period_ms": "soon"},
        {"health_check_timeout_ms": -5},
        {"health_check_failure_threshold": 2.5},
        {"health_check_failure_threshold": True},
    ],
)
def test_bad_values_say_which_key(config):
    (key,) = config
    with pytest.raises(ValueError, match=f"_system_config\\['{key}'\\] must be a"):
        env(config)


def test_object_spilling_config_names_the_spill_directory(tmp_path):
    spec = {"type": "filesystem", "params": {"directory_path": str(tmp_path / "spill")}}
    env = system_config.node_environment({"object_spilling_config": json.dumps(spec)})
    assert env == {"MINRAY_OBJECT_SPILLING_DIRECTORY": str(tmp_path / "spill")}
    assert os.path.isdir(tmp_path / "spill")


@pytest.mark.parametrize(
    "value, message",
    [
        ("{not json", "not JSON"),
        (json.dumps({"type": "smart_open", "params": {"uri": "s3://b"}}), "filesystem"),
        (json.dumps({"type": "filesystem", "params": {}}), "directory_path"),
    ],
)
def test_a_bad_object_spilling_config_says_what_to_give(value, message):
    with pytest.raises(ValueError, match=message):
        system_config.node_environment({"object_spilling_config": value})


def test_an_unwritable_spill_directory_fails_at_once(tmp_path):
    (tmp_path / "file").write_text("")
    spec = {"type": "filesystem", "params": {"directory_path": str(tmp_path / "file" / "d")}}
    with pytest.raises(ValueError, match="cannot be used"):
        system_config.node_environment({"object_spilling_config": json.dumps(spec)})


def test_spilling_ahead_keys_become_settings_read_back_by_config(monkeypatch):
    got = env({"object_spilling_threshold": 0.5, "min_spilling_size": 1024})
    assert got == {"MINRAY_OBJECT_SPILLING_THRESHOLD": "0.5", "MINRAY_MIN_SPILLING_SIZE": "1024"}
    for name, value in got.items():
        monkeypatch.setenv(name, value)
    config = Config.from_env()
    assert (config.object_spilling_threshold, config.min_spilling_size) == (0.5, 1024)
    assert env({"object_spilling_threshold": 1}) == {"MINRAY_OBJECT_SPILLING_THRESHOLD": "1.0"}


@pytest.mark.parametrize("value", [1.01, -0.5, float("nan"), "0.5", True, None])
def test_a_spilling_threshold_that_is_not_a_share_is_refused(value):
    with pytest.raises(ValueError, match="object_spilling_threshold.*from 0 to 1"):
        env({"object_spilling_threshold": value})


@pytest.mark.parametrize("value", [-1, 1.5, "100", None])
def test_a_min_spilling_size_that_is_not_bytes_is_refused(value):
    with pytest.raises(ValueError, match="min_spilling_size.*whole number of bytes"):
        env({"min_spilling_size": value})


@pytest.mark.parametrize(
    "field, value, named",
    [
        ("object_spilling_threshold", 2.0, "MINRAY_OBJECT_SPILLING_THRESHOLD"),
        ("object_spilling_threshold", -0.1, "MINRAY_OBJECT_SPILLING_THRESHOLD"),
        ("min_spilling_size", -1, "MINRAY_MIN_SPILLING_SIZE"),
    ],
)
def test_bad_spilling_settings_in_the_environment_are_named(monkeypatch, field, value, named):
    with pytest.raises(ValueError, match=named):
        Config(**{field: value})
    monkeypatch.setenv(named, str(value))
    with pytest.raises(ValueError, match=named):
        Config.from_env()
