"""The quality gates: ruff (lint and format) and mypy are clean on the library."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def run(*command):
  result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_lint():
  run(sys.executable, "-m", "ruff", "check", "optax_l1", "tests", "benchmarks")


def test_ruff_format():
  run(sys.executable, "-m", "ruff", "format", "--check", "optax_l1", "tests", "benchmarks")


def test_mypy():
  run(sys.executable, "-m", "mypy")
