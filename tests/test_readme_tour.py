"""The README's tour runs, as pasted, against gunicorn: twice in a row."""

from __future__ import annotations

import re
import subprocess
from urllib.parse import urlsplit

import pytest

from .gunicorn_helpers import ROOT, flask_cli, gunicorns, service_env

pytestmark = pytest.mark.slow

TOUR = re.compile(r"## A short tour.*?```bash\n(.*?)```", re.DOTALL)


def readme_tour() -> str:
    """The shell block of the README's tour."""
    match = TOUR.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert match, "README.md has no tour"
    return match.group(1)


def test_the_readme_tour_runs_twice(tmp_path):
    env = service_env(f"sqlite:///{tmp_path / 'tour.db'}", INTERNAL_API_TOKEN="dev-internal-token")
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "seed-plans")
    tour = readme_tour()
    with gunicorns(env, workers=1) as (instance,):
        port = str(urlsplit(instance.url).port)
        for _run in range(2):
            result = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", tour],
                cwd=tmp_path,
                env={**env, "PORT": port},
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert '"success":false' not in result.stdout.replace(" ", "")
            # Twelve answers are printed; the sign-up and the 2FA answer are read into variables.
            assert result.stdout.replace(" ", "").count('"success":true') == 12, result.stdout
