"""One style for the repository: `ruff format` and `ruff check` (pyproject.toml) find nothing."""

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ruff():
    local = os.path.join(os.path.dirname(sys.executable), "ruff")
    return local if os.path.exists(local) else shutil.which("ruff")


@pytest.mark.parametrize("command", [["format", "--check"], ["check"]])
def test_ruff_finds_nothing(command):
    ruff = _ruff()
    assert ruff, "ruff is not installed: pip install -e '.[dev]'"
    proc = subprocess.run(
        [ruff, *command, "."], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
