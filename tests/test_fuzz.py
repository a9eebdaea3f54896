"""The schemathesis run of scripts/fuzz.sh passes: no 5xx, every response as documented."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .gunicorn_helpers import ROOT

pytestmark = pytest.mark.slow


def test_fuzzing_the_documented_api_finds_no_failure():
    venv_bin = str(Path(sys.executable).parent)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
        # The suite's interpreter already has the tools; fuzz.sh then skips its install step.
        "VIRTUAL_ENV": str(Path(venv_bin).parent),
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
        "FUZZ_MAX_EXAMPLES": "15",
        "FUZZ_MAX_TIME": "40",
    }
    result = subprocess.run(
        ["bash", "scripts/fuzz.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    cases = re.search(r"fuzz: (\d+) generated cases", output)
    assert cases is not None and int(cases.group(1)) > 0, output[-2000:]
