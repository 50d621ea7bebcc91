"""The course pack (docs/course): every check passes on its solution and fails on its starter.

All the checks run in one pytest process per answer (one small cluster per
exercise, each checked for leaks by docs/course/conftest.py when it shuts
down), as ``make course-check`` runs them. The starters' run proves that the
checks can fail: each exercise has at least one failing check, and none ends
in an error (a check that crashes, or a cluster that leaked).
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

COURSE = Path(__file__).resolve().parents[2] / "docs" / "course"
CHECKS = sorted(COURSE.glob("ex*_*/check_*.py"))


def run_checks(answer: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess, ET.Element]:
    report = tmp_path / f"{answer}.xml"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        + [str(path) for path in CHECKS]
        + [f"--answer={answer}", f"--junitxml={report}", "-o", "junit_family=xunit1"],
        cwd=COURSE.parents[1],
        capture_output=True,
        text=True,
        timeout=150,
        env={**os.environ, "PYTHONPATH": str(COURSE.parents[1])},
    )
    return result, ET.parse(report).getroot()


def test_the_course_has_ten_exercises_each_with_its_files():
    assert len(CHECKS) == 10
    for check in CHECKS:
        folder = check.parent
        for name in ("README.md", "starter.py", "solution.py"):
            assert (folder / name).is_file(), f"{folder.name} has no {name}"


def test_every_check_passes_on_its_solution(tmp_path):
    result, report = run_checks("solution", tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    files = {case.get("file") or case.get("classname") for case in report.iter("testcase")}
    assert len(files) == len(CHECKS)


def test_every_check_fails_on_its_untouched_starter(tmp_path):
    result, report = run_checks("starter", tmp_path)
    assert result.returncode == 1, result.stdout[-4000:] + result.stderr[-2000:]
    failed, errors = set(), []
    for case in report.iter("testcase"):
        if case.find("failure") is not None:
            failed.add(case.get("classname"))
        if case.find("error") is not None:
            errors.append(case.get("name"))
    assert not errors, f"checks that crashed or leaked on a starter: {errors}"
    exercises = {path.stem for path in CHECKS}
    failed_exercises = {name.rsplit(".", 1)[-1] for name in failed}
    assert failed_exercises == exercises, f"starters that pass: {exercises - failed_exercises}"
