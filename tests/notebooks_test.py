"""The notebooks: paired with their text, committed executed and clean, and each runs end to end.

Each notebook is a jupytext pair, ``NN_name.md`` (MyST markdown, the source) beside
``NN_name.ipynb`` (committed executed); ``notebooks/README.md`` has the command that syncs and
re-executes them. The runs here use the small budget (``OPTAX_L1_NOTEBOOK_BUDGET=small``: fewer
steps and λ values) in a fresh ``python3`` kernel. jupyter_client starts that kernelspec
(``python -m ipykernel_launcher``) with ``sys.executable``, so the notebooks run in this test's
environment; ``test_kernel_runs_this_python`` checks it.
"""

import pathlib
import subprocess
import sys

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
TEXT_NOTEBOOKS = sorted(path for path in NOTEBOOK_DIR.glob("*.md") if path.name != "README.md")
RERUN = "see notebooks/README.md to sync and re-execute"
CELL_TIMEOUT_S = 120


def _ids(path):
  return path.stem


def _execute(nb):
  client = NotebookClient(
    nb,
    timeout=CELL_TIMEOUT_S,
    kernel_name="python3",
    resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
  )
  client.execute()  # raises CellExecutionError, with the cell and its traceback, on a failure
  return nb


def _errors(nb):
  return [
    f"cell {i}: {output.ename}: {output.evalue}"
    for i, cell in enumerate(nb.cells)
    if cell.cell_type == "code"
    for output in cell.outputs
    if output.output_type == "error"
  ]


def _cells(nb):
  return [(cell.cell_type, cell.source) for cell in nb.cells]


def _plots(nb):
  return any("plt." in cell.source for cell in nb.cells if cell.cell_type == "code")


def _images(nb):
  return [
    output
    for cell in nb.cells
    if cell.cell_type == "code"
    for output in cell.outputs
    if "image/png" in output.get("data", {})
  ]


def test_there_are_notebooks():
  assert len(NOTEBOOKS) >= 3, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_is_in_sync_with_its_text(path):
  text = path.with_suffix(".md")
  assert text.is_file(), f"{path.name} has no jupytext pair {text.name}"
  paired = jupytext.read(text)
  assert paired.metadata["jupytext"]["formats"] == "ipynb,md:myst"
  committed = nbformat.read(path, as_version=4)
  assert _cells(paired) == _cells(committed), f"{text.name} and {path.name} differ; {RERUN}"


@pytest.mark.parametrize("path", TEXT_NOTEBOOKS, ids=_ids)
def test_text_notebook_has_its_ipynb(path):
  assert path.with_suffix(".ipynb").is_file(), f"{path.name} has no .ipynb; {RERUN}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_committed_notebook_is_executed(path):
  nb = nbformat.read(path, as_version=4)
  nbformat.validate(nb)
  code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
  assert code_cells
  unexecuted = [
    i
    for i, cell in enumerate(nb.cells)
    if cell.cell_type == "code" and cell.execution_count is None
  ]
  assert not unexecuted, f"code cells never executed: {unexecuted}; {RERUN}"
  counts = [cell.execution_count for cell in code_cells]
  assert counts == list(range(1, len(counts) + 1)), f"not run top to bottom once: {counts}; {RERUN}"
  assert not _errors(nb)
  if _plots(nb):
    assert _images(nb), "a notebook that plots must be committed with its image/png outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_opens_with_title_and_constants(path):
  nb = nbformat.read(path, as_version=4)
  first, imports, constants = nb.cells[:3]
  assert first.cell_type == "markdown" and first.source.startswith("# ")
  assert imports.cell_type == "code" and "import " in imports.source
  assert constants.cell_type == "code" and "OPTAX_L1_NOTEBOOK_BUDGET" in constants.source


def test_kernel_runs_this_python():
  nb = nbformat.v4.new_notebook(
    cells=[nbformat.v4.new_code_cell("import sys\nimport optax_l1\nprint(sys.executable)")]
  )
  _execute(nb)
  printed = nb.cells[0].outputs[0].text.strip()
  assert pathlib.Path(printed).resolve() == pathlib.Path(sys.executable).resolve()


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_notebook_runs_with_small_budget(path, monkeypatch):
  monkeypatch.setenv("OPTAX_L1_NOTEBOOK_BUDGET", "small")  # the kernel inherits the environment
  nb = _execute(nbformat.read(path, as_version=4))
  assert not _errors(nb)
  if _plots(nb):
    assert _images(nb)


def test_notebooks_are_lint_clean():
  # ruff lints and formats the notebooks' code cells.
  for command in (["check"], ["format", "--check"]):
    result = subprocess.run(
      [sys.executable, "-m", "ruff", *command, "notebooks"],
      cwd=ROOT,
      capture_output=True,
      text=True,
      check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
