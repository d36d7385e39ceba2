"""Tests of the command line's errors: each is one line on stderr and a non-zero exit status,
given before any training starts."""

import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

from optax_l1 import __main__ as cli
from optax_l1.examples import compare

ROOT = pathlib.Path(__file__).resolve().parent.parent
INSTALL_HINT = 'pip install "optax_l1[examples]"'
TINY = ["--steps", "2", "--hidden", "4", "--methods", "prox"]

# Runs the command line in a fresh interpreter in which the given modules cannot be imported, as
# after `pip install optax_l1` without the examples extra: the finder raises what Python raises
# for a module that is not installed.
WITHOUT = """\
import sys

class NotInstalled:
  def find_spec(self, name, path=None, target=None):
    if name.partition(".")[0] in {missing!r}:
      raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
    return None

assert not {missing!r} & set(sys.modules), "imported before the finder was installed"
sys.meta_path.insert(0, NotInstalled())
from optax_l1.__main__ import main
sys.exit(main({argv!r}))
"""


def run_without(missing, argv):
  script = WITHOUT.format(missing=set(missing), argv=list(argv))
  return subprocess.run(
    [sys.executable, "-c", script],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )


BASE_INSTALL = ("flax", "sklearn", "matplotlib", "tqdm", "equinox")  # the examples extra


@pytest.mark.parametrize(
  "argv", [["compare", "--help"], ["compare"], ["compare", "--steps", "1"]], ids=" ".join
)
def test_compare_on_a_base_install_says_what_to_install_in_one_line(argv):
  completed = run_without(BASE_INSTALL, argv)
  assert completed.returncode == 1, completed.stderr
  assert completed.stdout == ""
  [line] = completed.stderr.splitlines()
  assert line.startswith("optax-l1 compare: error: no module named 'flax'")
  assert line.endswith(INSTALL_HINT)


@pytest.mark.parametrize("missing", ["sklearn", "tqdm"])
def test_each_missing_module_of_the_extra_is_named(missing):
  completed = run_without([missing], ["compare", "--help"])
  assert completed.returncode == 1, completed.stderr
  [line] = completed.stderr.splitlines()
  assert f"no module named {missing!r}" in line and line.endswith(INSTALL_HINT)


def test_without_matplotlib_compare_fails_before_training_unless_no_plots(tmp_path):
  out = tmp_path / "out"
  completed = run_without(["matplotlib"], ["compare", *TINY, "--out", str(out)])
  assert completed.returncode == 1, completed.stderr
  # One line: no setup line and no progress bar, so no training started.
  [line] = completed.stderr.splitlines()
  assert "no module named 'matplotlib'" in line and line.endswith(INSTALL_HINT)
  assert not (out / compare.RESULTS_JSON).exists()

  completed = run_without(["matplotlib"], ["compare", *TINY, "--out", str(out), "--no-plots"])
  assert completed.returncode == 0, completed.stderr
  assert [p.name for p in out.iterdir()] == [compare.RESULTS_JSON]


def test_a_missing_module_outside_the_extra_is_not_blamed_on_it():
  completed = run_without(["jax"], ["compare", "--help"])  # a dependency: a broken install
  assert completed.returncode == 1
  assert "Traceback" in completed.stderr and INSTALL_HINT not in completed.stderr


def test_the_message_lists_the_examples_extra_of_pyproject():
  tomllib = pytest.importorskip("tomllib")
  project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
  extra = [
    requirement.split(">")[0].split("=")[0].split("<")[0].strip()
    for requirement in project["optional-dependencies"]["examples"]
  ]
  assert sorted(cli.EXAMPLES_EXTRA.values()) == sorted(extra)


def _existing_file(tmp_path):
  (tmp_path / "results").write_text("not a folder")
  return tmp_path / "results"


def _under_a_file(tmp_path):
  (tmp_path / "file").write_text("not a folder")
  return tmp_path / "file" / "out"


def _name_too_long(tmp_path):
  return tmp_path / ("x" * 300)  # past NAME_MAX (255) on Linux, macOS and Windows alike


def _sysfs(tmp_path):
  # An existing folder in which no one, root included, can create a file (sysfs refuses).
  folder = pathlib.Path("/sys")
  if not folder.is_dir():
    pytest.skip("no /sys here")
  try:
    handle, probe = tempfile.mkstemp(dir=folder)
  except OSError:
    return folder
  os.close(handle)
  os.remove(probe)
  pytest.skip("files can be created in /sys here")


def _read_only_folder(tmp_path):
  if os.geteuid() == 0:
    pytest.skip("root writes through a read-only mode (the /sys case covers it)")
  folder = tmp_path / "read-only"
  folder.mkdir(mode=0o500)
  return folder


@pytest.mark.parametrize(
  "make_out", [_existing_file, _under_a_file, _name_too_long, _sysfs, _read_only_folder]
)
def test_a_bad_out_is_one_line_and_status_2_before_training(
  make_out, tmp_path, monkeypatch, capsys
):
  out = make_out(tmp_path)

  def run(method, args, log_every):
    raise AssertionError("trained although --out cannot be written")

  monkeypatch.setattr(compare, "run", run)
  assert cli.main(["compare", *TINY, "--out", str(out)]) == 2
  captured = capsys.readouterr()
  assert captured.out == ""
  [line] = captured.err.splitlines()
  assert line.startswith(f"optax-l1 compare: error: argument --out: {str(out)!r}"), line


def test_a_failed_write_after_training_keeps_the_table_and_is_one_line(
  tmp_path, monkeypatch, capsys
):
  out = tmp_path / "out"
  train = compare.run

  def run_then_lose_the_folder(method, args, log_every):
    result = train(method, args, log_every)
    os.rmdir(out)
    out.write_text("a file now")  # results.json cannot be written under it
    return result

  monkeypatch.setattr(compare, "run", run_then_lose_the_folder)
  assert cli.main(["compare", *TINY, "--no-plots", "--out", str(out)]) == 1
  captured = capsys.readouterr()
  assert "exact zeros" in captured.out and "prox" in captured.out  # the table was printed
  line = captured.err.splitlines()[-1]  # after the setup line and the progress bar
  assert line.startswith("optax-l1 compare: error: cannot write ") and compare.RESULTS_JSON in line
