"""Checking the job API's submit request (pure): what is accepted, and what each refusal says."""

from __future__ import annotations

import json

import pytest

from minray.head.job_schema import (
    RUNTIME_ENV_VARIABLE,
    JobStatus,
    check_submission_id,
    new_submission_id,
    package_names,
    parse_submit_request,
    with_submitted_job_env,
)


def test_a_ray_submit_body_is_accepted():
    request = parse_submit_request({
        "entrypoint": "python x.py", "submission_id": "my-job.1", "metadata": {"k": "v"},
        "runtime_env": {"env_vars": {"A": "1"}}, "entrypoint_num_cpus": 0,
    })  # fmt: skip
    assert request.entrypoint == "python x.py" and request.submission_id == "my-job.1"
    assert request.metadata == {"k": "v"} and request.runtime_env == {"env_vars": {"A": "1"}}
    assert parse_submit_request({"entrypoint": "true", "job_id": "old"}).submission_id == "old"
    uri = "gcs://_ray_pkg_" + "a" * 32 + ".zip"
    packaged = parse_submit_request({"entrypoint": "x", "runtime_env": {
        "working_dir": uri, "py_modules": [uri], "excludes": ["*.csv"]}})  # fmt: skip
    assert package_names(packaged.runtime_env) == ["_ray_pkg_" + "a" * 32 + ".zip"] * 2


def test_a_submitted_jobs_runtime_env_is_merged_under_inits_own(monkeypatch):
    assert with_submitted_job_env({"env_vars": {"A": "1"}}) == {"env_vars": {"A": "1"}}
    job = {"env_vars": {"A": "job", "B": "job"}, "working_dir": "gcs://w"}
    monkeypatch.setenv(RUNTIME_ENV_VARIABLE, json.dumps(job))
    assert with_submitted_job_env(None) == job
    mine = with_submitted_job_env({"env_vars": {"A": "mine"}, "py_modules": ["m"]})
    assert mine == {"env_vars": {"A": "mine", "B": "job"}, "working_dir": "gcs://w",
                    "py_modules": ["m"]}  # fmt: skip
    monkeypatch.setenv(RUNTIME_ENV_VARIABLE, "not json")
    with pytest.raises(ValueError, match="unset it to run this script on its own"):
        with_submitted_job_env(None)


@pytest.mark.parametrize(
    "body, says",
    [
        ([], "JSON object"),
        ({}, "entrypoint must be a non-empty string"),
        ({"entrypoint": "  "}, "entrypoint must be a non-empty string"),
        ({"entrypoint": 3}, "entrypoint must be a non-empty string"),
        ({"entrypoint": "x", "colour": 1}, "unknown fields ['colour']"),
        ({"entrypoint": "x", "submission_id": "../etc"}, "submission_id '../etc' is not allowed"),
        ({"entrypoint": "x", "metadata": {"k": 1}}, "metadata must be"),
        ({"entrypoint": "x", "runtime_env": "env"}, "runtime_env must be a JSON object"),
        ({"entrypoint": "x", "runtime_env": {"pip": ["requests"]}}, "['pip'] is not supported"),
        ({"entrypoint": "x", "runtime_env": {"conda": "env"}}, "create the environment"),
        ({"entrypoint": "x", "runtime_env": {"working_dir": "."}}, "'.' is not the gcs:// uri"),
        ({"entrypoint": "x", "runtime_env": {"py_modules": ["/m"]}}, "'/m' is not the gcs://"),
        ({"entrypoint": "x", "runtime_env": {"working_dir": 3}}, "must be the path"),
        ({"entrypoint": "x", "runtime_env": {"env_vars": {"A": 1}}}, "env_vars"),
        ({"entrypoint": "x", "entrypoint_num_cpus": 1}, "reserves no resources"),
        ({"entrypoint": "x", "entrypoint_resources": {"a": 1}}, "entrypoint_resources"),
    ],
)
def test_a_bad_body_is_refused_naming_what_is_wrong(body, says):
    with pytest.raises(ValueError) as e:
        parse_submit_request(body)
    assert says in str(e.value)


def test_fresh_submission_ids_look_like_rays_and_are_valid():
    ids = {new_submission_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(i.startswith("raysubmit_") and check_submission_id(i) == i for i in ids)


def test_job_status_has_rays_values():
    assert [s.value for s in JobStatus] == ["PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"]
    assert str(JobStatus.RUNNING) == "RUNNING" and JobStatus("FAILED").is_terminal()
    assert not JobStatus.PENDING.is_terminal()
