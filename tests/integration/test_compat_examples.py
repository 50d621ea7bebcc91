"""Every program in examples/, rewritten as a Ray program, runs under ``python -m minray.compat``.

The examples are written against minray (``import minray as ray``). Each test
copies examples/ into a temporary directory with every ``minray`` identifier
in the code turned into ``ray`` (strings and comments are left alone), so the
copy is what a Ray user would have written, and runs it with
``python -m minray.compat``. Examples added later are picked up when the
tests are collected.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPTS = sorted(path.name for path in EXAMPLES.glob("*.py") if not path.name.startswith("_"))


def as_ray_program(source: str) -> str:
    """The same program with ``minray`` spelled ``ray`` wherever it is a name in the code."""
    spots = [
        token.start
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.NAME and token.string == "minray"
    ]
    lines = source.splitlines(keepends=True)
    for row, col in reversed(spots):  # right to left, so earlier columns stay valid
        line = lines[row - 1]
        lines[row - 1] = line[:col] + "ray" + line[col + len("minray") :]
    rewritten = "".join(lines)
    # `import minray as ray` became `import ray as ray`: write it as a Ray user would.
    return re.sub(r"^(\s*)import ray as ray\b", r"\1import ray", rewritten, flags=re.MULTILINE)


def test_the_rewrite_yields_a_ray_program():
    source = (
        "import minray as ray\n"
        "import minray\n"
        "from minray.util.queue import Queue\n"
        "import minray.exceptions as errors\n"
        "minray_log = minray.get\n"
        'print("minray stays minray in strings")  # and minray in comments\n'
    )
    assert as_ray_program(source) == (
        "import ray\n"
        "import ray\n"
        "from ray.util.queue import Queue\n"
        "import ray.exceptions as errors\n"
        "minray_log = ray.get\n"
        'print("minray stays minray in strings")  # and minray in comments\n'
    )


def copy_examples_as_ray_programs(destination: Path) -> None:
    for path in EXAMPLES.iterdir():
        target = destination / path.name
        if path.is_dir():
            if path.name != "__pycache__":
                shutil.copytree(path, target)
        elif path.suffix == ".py":
            target.write_text(as_ray_program(path.read_text()))
        else:
            shutil.copy2(path, target)


@pytest.mark.timeout(200)
@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs_unmodified_as_a_ray_program(script, tmp_path):
    copy_examples_as_ray_programs(tmp_path)
    program = (tmp_path / script).read_text()
    code_names = {
        token.string
        for token in tokenize.generate_tokens(io.StringIO(program).readline)
        if token.type == tokenize.NAME
    }
    assert "minray" not in code_names, "the copy must not use minray directly"
    result = subprocess.run(
        [sys.executable, "-m", "minray.compat", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
