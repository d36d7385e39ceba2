"""The transformer benchmark runs: each method's row, with the fractions compaction removes."""

import pathlib
import sys

ROOT = pathlib.Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import transformer  # noqa: E402


def test_quick_run_prints_dense_and_target_with_the_removed_fractions(capsys):
  transformer.main(["--seeds", "0", "--levels", "0.5:0.25", "--steps", "60"])
  rows = {}
  for line in capsys.readouterr().out.splitlines():
    cells = [c.strip() for c in line.split("|")[1:-1]]
    if cells and cells[0] in ("dense", "target 0.5:0.25"):
      rows[cells[0]] = cells
  assert set(rows) == {"dense", "target 0.5:0.25"}
  assert rows["dense"][2:4] == ["0.00 ± 0.00", "0.00 ± 0.00"]
  # Half of the heads and a quarter of the neurons, as compacted; the logits unchanged.
  assert rows["target 0.5:0.25"][2:4] == ["50.00 ± 0.00", "25.00 ± 0.00"]
  assert float(rows["target 0.5:0.25"][4]) <= 1e-5
