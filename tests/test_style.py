"""The code passes ruff's lint and format checks (settings in ruff.toml)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ['pet_keras', 'scripts', 'benchmarks', 'tests']


def ruff(*args):
    # ruff is pinned in requirements.txt; run as a module so an unactivated venv works too
    return subprocess.run(
        [sys.executable, '-m', 'ruff', *args, *FOLDERS], cwd=str(REPO), capture_output=True, text=True
    )


def test_lint():
    result = ruff('check', '--no-cache')
    assert result.returncode == 0, result.stdout + result.stderr


def test_format():
    result = ruff('format', '--check', '--no-cache')
    assert result.returncode == 0, result.stdout + result.stderr
