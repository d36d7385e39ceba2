"""``benchmarks/solver.py`` measures what it says: the iteration count it times is the first
found at which the objective gap is met, its problems' strengths map to scikit-learn's, and one
problem runs end to end. The numbers it prints are in ``benchmarks/RESULTS.md``, not checked
here."""

import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import solver  # noqa: E402


def test_first_iteration_count_finds_where_the_gap_is_first_met():
  calls = []

  def run(k):
    calls.append(k)
    return k

  for first in (1, 2, 37, 64, 65):
    calls.clear()
    gap = lambda k, first=first: 2 * solver.GAP if k < first else 0.5 * solver.GAP  # noqa: E731
    assert solver.first_iteration_count(run, gap) == first
    assert len(calls) <= 2 * int(np.log2(first) + 2)  # doubling, then bisection


def test_one_problem_end_to_end():
  # fista's float64 objective agrees with liblinear's at its tight tolerance (the reference F*,
  # and the mapping of λ to liblinear's C), and the timed run meets the gap (measure raises
  # otherwise). jaxopt is left out: it is not a test dependency.
  row = solver.measure(
    "logistic", 120, 15, seed=0, repeats=1, ablation=False, sklearn_repeats=1, baseline=False
  )
  assert abs(row.check) < 1e-8
  assert list(row.times) == ["fista (defaults)"] and len(row.times["fista (defaults)"]) == 1
  assert row.evaluations["fista (defaults)"] > row.iterations["fista (defaults)"] >= 1
  tol, seconds, gap = row.sklearn
  assert tol in solver.SKLEARN_TOLS and seconds > 0 and gap <= solver.GAP
