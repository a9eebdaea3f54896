"""scripts/fuzz.sh passes signed in: no 5xx, every response as documented, no session lost.

The fuzz itself is slow (gunicorn and schemathesis); its verdict (scripts/fuzz_report.py) is
also checked on made-up records, so a run that lost its session cannot pass unnoticed.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from .gunicorn_helpers import ROOT


def _load_report():
    """scripts/fuzz_report.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("fuzz_report", ROOT / "scripts/fuzz_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fuzz_report = _load_report()
OPERATIONS = {
    "GET /api/account": {"security": [{"session": []}], "responses": {}},
    "POST /api/auth/login": {"security": [], "responses": {}},
}


def test_a_signed_in_operation_that_only_answered_401_fails_the_fuzz():
    counts = {"signed-in": {"GET /api/account": Counter({401: 12}), "POST /api/auth/login": {}}}
    problems = fuzz_report.verdict(counts, OPERATIONS, {"signed-in": Counter({"link": 1})})
    assert problems == ["GET /api/account only ever answered 401 in the signed-in pass"]


def test_a_public_operation_may_answer_only_401():
    counts = {
        "signed-in": {
            "GET /api/account": Counter({200: 3, 401: 1}),
            "POST /api/auth/login": Counter({401: 9}),
        }
    }
    assert fuzz_report.verdict(counts, OPERATIONS, {"signed-in": Counter({"link": 1})}) == []


def test_an_operation_never_called_or_no_link_followed_fails_the_fuzz():
    counts = {"signed-in": {"GET /api/account": Counter({200: 3})}}
    assert fuzz_report.verdict(counts, OPERATIONS, {}) == [
        "POST /api/auth/login was never called",
        "the stateful phase followed none of the document's links",
    ]


def _table(output: str, name: str) -> dict[str, dict[int, int]]:
    """The per-operation status counts fuzz.sh printed for the pass `name`."""
    block = output.split(f"fuzz: {name} pass, answers per operation (status: count)\n", 1)[1]
    table = {}
    for line in block.splitlines():
        if not line.startswith("  "):
            break
        label, _, figures = line.strip().partition("  ")
        table[label] = {
            int(status): int(count) for status, count in re.findall(r"(\d+): (\d+)", figures)
        }
    return table


def _followed(output: str, link: str, name: str) -> int:
    """How often the stateful phase of the pass `name` followed `link`."""
    match = re.search(rf"  {re.escape(link)}  .*\b{name}: (\d+)", output)
    assert match is not None, link
    return int(match.group(1))


@pytest.mark.slow
def test_fuzzing_the_documented_api_signed_in_finds_no_failure():
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
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
    cases = re.search(r"fuzz: (\d+) generated cases", output)
    assert cases is not None and int(cases.group(1)) > 0, output[-2000:]

    signed_in = _table(output, "signed-in")
    assert len(signed_in) >= 25, signed_in
    # The session lived: the account answered, and more than 401 (fuzz_report.py fails otherwise).
    assert signed_in["GET /api/account"].get(200), signed_in["GET /api/account"]
    ending = _table(output, "session-ending")
    for operation in (
        "POST /api/auth/logout",
        "POST /api/auth/login",
        "DELETE /api/account/sessions/{session_id}",
        "DELETE /api/account",
        "PUT /api/account/security",
    ):
        assert operation not in signed_in, operation
        assert ending[operation].get(200), (operation, ending[operation])

    # The stateful phase ran in both passes and followed the document's links.
    assert output.count("Stateful (in") >= 2, output[-4000:]
    assert _followed(output, "GET /api/account/sessions -> revokeSession", "session-ending") > 0
    followed = re.findall(r"signed-in: (\d+)", output.split("links followed", 1)[1])
    assert sum(map(int, followed)) > 0, output[-4000:]
