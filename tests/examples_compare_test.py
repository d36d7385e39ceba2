"""Tests of the `optax-l1 compare` command (optax_l1/examples/compare.py) and its dispatcher."""

import contextlib
import io
import json
import re
import subprocess
import sys

import pytest

import optax_l1
from optax_l1.__main__ import main
from optax_l1.examples import compare, digits

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = ["--steps", "60", "--hidden", "32"]


def test_compare_end_to_end(tmp_path):
  """`optax-l1 compare` with tiny settings, through the dispatcher, checked by the helpers below.

  One test, in-process: a fixture shared by several tests would run once per xdist worker, and
  a subprocess would pay for importing and warming up JAX again.
  """
  out = tmp_path / "out"  # not there yet: the command creates it
  stdout, stderr = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
    status = main(["compare", *TINY, "--out", str(out)])
  assert status == 0, stderr.getvalue()
  check_files(out)
  check_printed(stdout.getvalue(), stderr.getvalue())
  runs = check_results_json(out)
  check_prox_gives_more_exact_zeros_than_the_penalty(runs)


def check_files(out):
  assert sorted(p.name for p in out.iterdir()) == sorted(
    [compare.RESULTS_JSON, compare.HISTOGRAM_PNG, compare.HISTORY_PNG]
  )
  for name in (compare.HISTOGRAM_PNG, compare.HISTORY_PNG):
    data = (out / name).read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, name


def check_printed(stdout, stderr):
  lines = stdout.splitlines()
  header = next(i for i, line in enumerate(lines) if line.startswith("method"))
  for word in ("λ", "test acc", "exact zeros", "nonzero", "|w| < 1e-3", "train s"):
    assert word in lines[header]
  rows = [line.split() for line in lines[header + 2 : header + 2 + len(digits.METHODS)]]
  assert [row[0] for row in rows] == list(digits.METHODS)
  # The baselines that ignore λ (dense, and target, which asks for zeros) show none.
  for row in rows:
    assert row[1] == ("0.001" if digits.REGISTRY[row[0]].uses_l1 else "—"), row
  # tqdm writes to stderr; each run's bar advances with the exact zeros and reaches 60/60.
  for method in digits.METHODS:
    assert re.search(rf"{method} *: 100%.*60/60.*exact zeros \d", stderr), method


def check_results_json(out):
  results = json.loads((out / compare.RESULTS_JSON).read_text())
  assert set(results) == {"runs", "config"}
  assert [run["method"] for run in results["runs"]] == list(digits.METHODS)
  types = {
    "method": str,
    "summary": str,
    "l1": float,
    "test_accuracy": float,
    "exact_zero_fraction": float,
    "nonzero_params": int,
    "kernel_params": int,
    "small_fraction": float,
    "hidden_units": int,
    "seconds": float,
    "compile_seconds": float,
    "history": list,
  }
  kernel_params = 64 * 32 + 32 * 10
  for run in results["runs"]:
    assert set(run) == set(types), run.keys()
    for key, kind in types.items():
      assert type(run[key]) is kind, (key, run[key])
    assert 0 <= run["exact_zero_fraction"] <= run["small_fraction"] <= 1
    assert 0 <= run["test_accuracy"] <= 1 and run["seconds"] >= 0
    assert run["kernel_params"] == kernel_params
    assert 0 <= run["hidden_units"] <= 32
    assert run["nonzero_params"] == round((1 - run["exact_zero_fraction"]) * kernel_params)
    history = run["history"]
    assert all(len(pair) == 2 for pair in history)
    assert all(type(step) is int and type(fraction) is float for step, fraction in history)
    steps = [step for step, _ in history]
    assert steps[0] == 0 and steps[-1] == 60 and steps == sorted(steps)
    assert history[-1][1] == run["exact_zero_fraction"]
  assert results["runs"][0]["l1"] == 0.0  # dense
  config = results["config"]
  assert {"l1": 1e-3, "steps": 60, "hidden": 32, "seed": 0}.items() <= config.items()
  assert config["methods"] == list(digits.METHODS)
  assert {"learning_rate", "batch_size", "log_every", "versions", "backend"} <= set(config)
  return {run["method"]: run for run in results["runs"]}


def check_prox_gives_more_exact_zeros_than_the_penalty(runs):
  assert runs["dense"]["exact_zero_fraction"] == runs["penalty"]["exact_zero_fraction"] == 0.0
  assert runs["penalty"]["exact_zero_fraction"] < runs["prox"]["exact_zero_fraction"]
  assert runs["naive"]["exact_zero_fraction"] < runs["prox"]["exact_zero_fraction"]


def test_compare_methods_keep_the_order_given():
  args = compare.build_parser().parse_args(["--methods", "prox, dense,prox"])
  assert args.methods == ["prox", "dense"]
  assert compare.build_parser().parse_args([]).methods == list(digits.METHODS)


def test_a_method_added_to_the_registry_runs_in_compare_without_plots(
  tmp_path, monkeypatch, capsys
):
  sgd = digits.Method(
    "optax_l1.sgd", lambda l1, lr, budget: optax_l1.sgd(lr, l1=l1, mask=digits.kernel_mask)
  )
  monkeypatch.setitem(digits.REGISTRY, "sgd", sgd)  # what adding a line to REGISTRY does
  args = ["compare", "--steps", "5", "--hidden", "8", "--methods", "sgd", "--no-plots"]
  assert main([*args, "--out", str(tmp_path)]) == 0
  # --no-plots: results.json only.
  assert [p.name for p in tmp_path.iterdir()] == [compare.RESULTS_JSON]
  assert json.loads((tmp_path / compare.RESULTS_JSON).read_text())["runs"][0]["method"] == "sgd"
  assert "optax_l1.sgd" in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys):
  assert main([]) == 2
  err = capsys.readouterr().err
  assert err.startswith("usage: optax-l1") and "compare" in err


def test_python_m_optax_l1_is_the_command_line():
  completed = subprocess.run(
    [sys.executable, "-m", "optax_l1"], capture_output=True, text=True, timeout=120, check=False
  )
  assert completed.returncode == 2 and "usage: python -m optax_l1" in completed.stderr


def test_compare_help_explains_each_flag_and_method(capsys):
  with pytest.raises(SystemExit) as exit_info:
    main(["compare", "--help"])
  assert exit_info.value.code == 0
  text = capsys.readouterr().out
  assert text.startswith("usage: optax-l1 compare")
  for flag in ("--l1", "--steps", "--hidden", "--seed", "--out", "--no-plots", "--methods"):
    assert flag in text
  assert all(method in text for method in digits.METHODS)


@pytest.mark.parametrize(
  "args", [["--methods", "dense,lasso"], ["--l1", "nan"], ["--steps", "0"], ["--bogus"]]
)
def test_compare_rejects_bad_arguments(args, capsys):
  with pytest.raises(SystemExit) as exit_info:
    main(["compare", *args])
  assert exit_info.value.code == 2
  assert "usage: optax-l1 compare" in capsys.readouterr().err
