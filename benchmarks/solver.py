"""The full-batch solver: ``optax_l1.fista`` against jaxopt's ``ProximalGradient`` and sklearn.

Prints markdown. For each problem (Lasso and L1-regularised logistic regression on a correlated
design), size and seed:

- the reference objective F* from scikit-learn at a tight tolerance (``Lasso``, coordinate
  descent on the Gram matrix, tol 1e-12; liblinear's L1 logistic regression, tol 1e-8), and
  the relative distance to it of ``optax_l1.fista``'s float64 objective after a long run (a
  check of the reference, and of the strength mappings);
- the time to a relative objective gap (F(w) − F*)/F* <= 1e-5 of ``optax_l1.fista``
  (backtracking, acceleration and restart, its defaults) and of
  ``jaxopt.ProximalGradient(fun, prox_lasso)`` (acceleration, backtracking, its defaults),
  both float32 and jitted, the data passed as arguments, the same start (zeros), compilation
  excluded. Each solver's K, the first iteration count at which the gap is met, is found by
  doubling then bisection on the number of iterations (each a fresh run from zeros; FISTA's
  objective is not monotone, so this finds an iteration count where the gap is met and not
  one earlier... with the same rule for both); then a run of exactly K iterations (``tol=0``,
  ``maxiter=K``: each solver's own best stopping setting for this gap) is timed, the two
  solvers interleaved, the median of ``--repeats`` (with the min–max range);
- scikit-learn's own time to the same gap (float64, its usual setting): its loosest ``tol``
  among 1e-1, 1e-2, ... 1e-12 whose solution meets the gap, the median of the repeats.

``--ablation`` adds, on the same problems, the iterations, calls of ``fun`` and time to the gap
of ``fista`` with each of its speed-ups removed or replaced (momentum restart, the growth of the
step after an accepted line search, the first step from the curvature along the gradient, a
Barzilai–Borwein step instead of the growth).

Usage::

  .venv/bin/python benchmarks/solver.py                      # both sizes, 3 seeds
  .venv/bin/python benchmarks/solver.py --sizes 2000x500 --ablation
  .venv/bin/python benchmarks/solver.py --quick              # seconds, for the tests
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from _machine import cpu_model  # benchmarks/ is on sys.path when a script runs

import optax_l1
from optax_l1 import _fista

GAP = 1e-5  # the target relative objective gap
RHO = 0.9  # the correlation of neighbouring features, corr(x_i, x_j) = RHO^|i - j|
STRENGTH_RATIO = 20  # λ = λ_max / STRENGTH_RATIO
SKLEARN_TOLS = [10.0**-k for k in range(1, 13)]

# The variants of --ablation: fista's keyword arguments and its private step-size settings.
ABLATION = {
  "fista (defaults)": ({}, {}),
  "no restart": ({"restart": False}, {}),
  "no step growth (×1)": ({}, {"_GROWTH": 1.0}),
  "step growth ×2": ({}, {"_GROWTH": 2.0}),
  "first step 1, not the probe": ({}, {"_PROBE": False}),
  "Barzilai–Borwein warm start": ({}, {"_BB": True}),
  "no acceleration (ISTA)": ({"acceleration": False}, {}),
}


class Problem(NamedTuple):
  kind: str  # "lasso" or "logistic"
  x: np.ndarray  # float64 (n, p)
  y: np.ndarray  # float64 (n,): real targets, or labels in {-1, 1}
  strength: float  # λ


def make_problem(kind: str, n: int, p: int, seed: int) -> Problem:
  """A correlated design (AR(1) columns, unit variance), 10 % true non-zeros, λ = λ_max/20."""
  rng = np.random.default_rng(seed)
  z = rng.standard_normal((n, p))
  x = np.empty((n, p))
  x[:, 0] = z[:, 0]
  for j in range(1, p):
    x[:, j] = RHO * x[:, j - 1] + np.sqrt(1 - RHO**2) * z[:, j]
  w = np.zeros(p)
  support = rng.choice(p, max(p // 10, 1), replace=False)
  w[support] = rng.standard_normal(len(support))
  if kind == "lasso":
    signal = x @ w
    y = signal + rng.standard_normal(n) * np.std(signal) / 3
    strength_max = np.abs(x.T @ y).max() / n  # the smallest λ with the solution 0
  else:
    y = np.where(x @ w + 0.5 * rng.standard_normal(n) > 0, 1.0, -1.0)
    strength_max = np.abs(x.T @ y).max() / (2 * n)
  return Problem(kind, x, y, float(strength_max / STRENGTH_RATIO))


def smooth_part(kind: str) -> Callable[..., jax.Array]:
  """fun(w, x, y): 1/(2n)‖y − xw‖² or the mean logistic loss log(1 + exp(−y·xw))."""
  if kind == "lasso":
    return lambda w, x, y: 0.5 * jnp.mean((y - x @ w) ** 2)
  return lambda w, x, y: jnp.mean(jnp.logaddexp(0.0, -y * (x @ w)))


def objective(problem: Problem, w: Any) -> float:
  """The objective in float64 NumPy: the smooth part + λ‖w‖₁."""
  w = np.asarray(w, np.float64)
  margin = problem.x @ w
  if problem.kind == "lasso":
    smooth = 0.5 * np.mean((problem.y - margin) ** 2)
  else:
    smooth = np.mean(np.logaddexp(0.0, -problem.y * margin))
  return float(smooth + problem.strength * np.abs(w).sum())


def sklearn_fit(problem: Problem, tol: float) -> np.ndarray:
  """scikit-learn's solution: ``Lasso(alpha=λ)``, or liblinear with C = 1/(nλ).

  liblinear minimises ‖w‖₁ + C·Σᵢ log(1 + exp(−yᵢxᵢw)), which is n·C times
  mean log loss + ‖w‖₁/(nC): the same minimiser as mean log loss + λ‖w‖₁ for C = 1/(nλ).
  """
  from sklearn.linear_model import Lasso, LogisticRegression

  n = len(problem.y)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # penalty= is deprecated in sklearn 1.8; convergence
    if problem.kind == "lasso":
      model = Lasso(
        alpha=problem.strength, fit_intercept=False, tol=tol, max_iter=10**6, precompute=True
      )
    else:
      model = LogisticRegression(
        penalty="l1",
        solver="liblinear",
        C=1 / (n * problem.strength),
        fit_intercept=False,
        tol=tol,
        max_iter=10**6,
        random_state=0,  # liblinear's coordinate order: the same run every time
      )
    return model.fit(problem.x, problem.y).coef_.ravel()


def first_iteration_count(
  run: Callable[[int], Any], gap: Callable[[Any], float], kmax: int = 100_000
) -> int:
  """The K found by doubling, then bisection, with ``gap(run(K)) <= GAP`` and not at K − 1."""
  low, high = 0, 1
  while gap(run(high)) > GAP:
    low, high = high, 2 * high
    if high > kmax:
      raise RuntimeError(f"the gap {GAP:g} is not met within {kmax} iterations")
  while high - low > 1:
    middle = (low + high) // 2
    if gap(run(middle)) <= GAP:
      high = middle
    else:
      low = middle
  return high


class Solver(NamedTuple):
  by_iterations: Callable[[int], Any]  # the params after k iterations (k traced: one compile)
  timed: Callable[[int], Callable[[], Any]]  # a compiled run of exactly K iterations


def ours(problem: Problem, options: dict, dtype=jnp.float32) -> Solver:
  fun = smooth_part(problem.kind)
  x, y = jnp.asarray(problem.x, dtype), jnp.asarray(problem.y, dtype)
  w0 = jnp.zeros(problem.x.shape[1], dtype)
  lam = problem.strength

  @jax.jit
  def solve(k, x, y):
    return optax_l1.fista(fun, w0, x, y, l1=lam, maxiter=k, tol=0.0, **options)

  def timed(k):
    run = jax.jit(lambda x, y: optax_l1.fista(fun, w0, x, y, l1=lam, maxiter=k, tol=0.0, **options))
    return lambda: run(x, y)

  return Solver(lambda k: solve(k, x, y)[0], timed)


def jaxopt_solver(problem: Problem, dtype=jnp.float32) -> Solver:
  from jaxopt import ProximalGradient
  from jaxopt.prox import prox_lasso

  fun = smooth_part(problem.kind)
  x, y = jnp.asarray(problem.x, dtype), jnp.asarray(problem.y, dtype)
  w0 = jnp.zeros(problem.x.shape[1], dtype)
  lam = problem.strength
  stepper = ProximalGradient(fun=fun, prox=prox_lasso, acceleration=True)

  @jax.jit
  def solve(k, x, y):
    # jaxopt's run is this loop of its update (a while_loop that stops at maxiter or tol).
    state = stepper.init_state(w0, lam, x, y)

    def body(_, carry):
      params, state = carry
      return tuple(stepper.update(params, state, lam, x, y))

    return jax.lax.fori_loop(0, k, body, (w0, state))[0]

  def timed(k):
    solver = ProximalGradient(fun=fun, prox=prox_lasso, acceleration=True, maxiter=k, tol=0.0)
    run = jax.jit(lambda x, y: solver.run(w0, lam, x, y))
    return lambda: run(x, y)

  return Solver(lambda k: solve(k, x, y), timed)


def interleaved_times(runs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, list[float]]:
  """Seconds of each run, after one untimed call each, interleaved (a, b, a, b, ...)."""
  for run in runs.values():
    jax.block_until_ready(run())
  times: dict[str, list[float]] = {name: [] for name in runs}
  for _ in range(repeats):
    for name, run in runs.items():
      start = time.perf_counter()
      jax.block_until_ready(run())
      times[name].append(time.perf_counter() - start)
  return times


def sklearn_time(problem: Problem, reference: float, repeats: int) -> tuple[float, float, float]:
  """(the loosest tol meeting the gap, the median seconds, the relative gap reached)."""
  for tol in SKLEARN_TOLS:
    w = sklearn_fit(problem, tol)
    gap = (objective(problem, w) - reference) / abs(reference)
    if gap <= GAP:
      seconds = []
      for _ in range(repeats):
        start = time.perf_counter()
        sklearn_fit(problem, tol)
        seconds.append(time.perf_counter() - start)
      return tol, statistics.median(seconds), gap
  raise RuntimeError("scikit-learn did not meet the gap at tol 1e-12")


class Row(NamedTuple):
  problem: str
  seed: int
  reference: float
  check: float  # (F(ours, float64, long run) − F*)/F*
  iterations: dict[str, int]
  evaluations: dict[str, int]
  times: dict[str, list[float]]
  sklearn: tuple[float, float, float]


def measure(
  kind: str,
  n: int,
  p: int,
  seed: int,
  repeats: int,
  ablation: bool,
  sklearn_repeats: int,
  baseline: bool = True,
) -> Row:
  """One problem's row; ``baseline=False`` leaves jaxopt out (it is also left out when it is
  not installed)."""
  problem = make_problem(kind, n, p, seed)
  reference_tol = 1e-12 if kind == "lasso" else 1e-8  # liblinear may not stop at 1e-10
  reference = objective(problem, sklearn_fit(problem, reference_tol))
  with jax.enable_x64(True):
    fun = smooth_part(kind)
    w64, _ = optax_l1.fista(
      fun,
      jnp.zeros(p, jnp.float64),
      jnp.asarray(problem.x),
      jnp.asarray(problem.y),
      l1=problem.strength,
      tol=1e-9,
      maxiter=100_000,
    )
    check = (objective(problem, w64) - reference) / abs(reference)

  def gap(w):
    return (objective(problem, w) - reference) / abs(reference)

  solvers: dict[str, Solver] = {}
  private: dict[str, dict] = {}
  if baseline and _has_jaxopt():
    solvers["jaxopt ProximalGradient"] = jaxopt_solver(problem)
  for name, (options, settings) in ABLATION.items():
    if name == "fista (defaults)" or ablation:
      solvers[name], private[name] = ours(problem, options), settings
  iterations, runs, evaluations = {}, {}, {}
  for name, solver in solvers.items():
    with _private(private.get(name, {})):  # read when fista is traced, here
      iterations[name] = first_iteration_count(solver.by_iterations, gap)
      runs[name] = solver.timed(iterations[name])
      out = jax.block_until_ready(runs[name]())  # compiled here
    w, info = (out.params, None) if name.startswith("jaxopt") else out
    if gap(w) > GAP:
      raise RuntimeError(f"{name}'s timed run does not meet the gap: {gap(w):.2e}")
    if info is not None:
      evaluations[name] = int(info.evaluations)
  times = interleaved_times(runs, repeats)
  return Row(
    f"{kind} {n}×{p}",
    seed,
    reference,
    check,
    iterations,
    evaluations,
    times,
    sklearn_time(problem, reference, sklearn_repeats),
  )


def _has_jaxopt() -> bool:
  try:
    import jaxopt  # noqa: F401
  except ImportError:
    return False
  return True


class _private:
  """Sets fista's private step-size settings for a block (they are read when it is traced)."""

  def __init__(self, settings: dict):
    self.settings = settings

  def __enter__(self):
    self.old = {name: getattr(_fista, name) for name in self.settings}
    for name, value in self.settings.items():
      setattr(_fista, name, value)

  def __exit__(self, *exc):
    for name, value in self.old.items():
      setattr(_fista, name, value)


def _ms(seconds: Sequence[float]) -> str:
  return (
    f"{1e3 * statistics.median(seconds):,.1f} ({1e3 * min(seconds):,.1f}–{1e3 * max(seconds):,.1f})"
  )


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(
    description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--sizes", default="2000x500,20000x2000", help="n×p, comma-separated")
  parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
  parser.add_argument("--large-seeds", default=None, help="seeds for sizes over 1e7 entries")
  parser.add_argument("--problems", default="lasso,logistic")
  parser.add_argument("--repeats", type=int, default=7, help="timed runs of each solver")
  parser.add_argument("--ablation", action="store_true", help="time fista's variants too")
  parser.add_argument("--quick", action="store_true", help="a tiny budget, for the tests")
  args = parser.parse_args(argv)
  if args.quick:
    args.sizes, args.seeds, args.repeats = "200x50", "0", 2
  sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes.split(",")]
  seeds = [int(s) for s in args.seeds.split(",")]
  large_seeds = seeds if args.large_seeds is None else [int(s) for s in args.large_seeds.split(",")]
  command = " ".join(["benchmarks/solver.py", *(sys.argv[1:] if argv is None else argv)])

  print(f"## Full-batch solver{' (--quick)' if args.quick else ''}")
  print()
  print(f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
  print(
    f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} "
    f"{platform.release()}, Python {platform.python_version()}; backend "
    f"{jax.default_backend()}; load average at start: {_load_average()}"
  )
  print(f"- versions: {_versions()}")
  print(f"- command: `.venv/bin/python {command}`")
  if not _has_jaxopt():
    print('- jaxopt is not installed (`pip install -e ".[benchmarks]"`): its rows are missing')
  print()
  rows = []
  for kind in args.problems.split(","):
    for n, p in sizes:
      for seed in large_seeds if n * p > 10**7 else seeds:
        row = measure(kind, n, p, seed, args.repeats, args.ablation, 1 if n * p > 10**7 else 3)
        rows.append(row)
        print(_row_lines(row), flush=True)
  print()
  print(_summary(rows))
  print()
  print(f"load average at end: {_load_average()}")


def _row_lines(row: Row) -> str:
  lines = [
    f"### {row.problem}, seed {row.seed}",
    "",
    f"F* = {row.reference:.10g} (scikit-learn); fista float64, tol 1e-9: relative "
    f"difference {row.check:+.1e}. sklearn's time to the gap: {1e3 * row.sklearn[1]:,.1f} ms "
    f"(tol {row.sklearn[0]:g}, gap {row.sklearn[2]:.1e}).",
    "",
    "| solver | iterations K | calls of fun | time to gap, ms: median (min–max) | / jaxopt |",
    "|---|---:|---:|---:|---:|",
  ]
  base = row.times.get("jaxopt ProximalGradient")
  for name, seconds in row.times.items():
    ratio = "" if base is None else f"{statistics.median(seconds) / statistics.median(base):.2f}"
    calls = row.evaluations.get(name, "")
    lines.append(f"| {name} | {row.iterations[name]} | {calls} | {_ms(seconds)} | {ratio} |")
  return "\n".join([*lines, ""])


def _summary(rows: list[Row]) -> str:
  lines = [
    "Summary: median time to the gap, ms, over the seeds (each seed's median of the repeats)",
    "",
    "| problem | seeds | jaxopt | fista | fista / jaxopt (per seed) | ≤ 0.8? | scikit-learn |",
    "|---|---:|---:|---:|---|:---:|---:|",
  ]
  for problem in dict.fromkeys(row.problem for row in rows):
    group = [row for row in rows if row.problem == problem]
    ours_ms = [1e3 * statistics.median(row.times["fista (defaults)"]) for row in group]
    sk_ms = [1e3 * row.sklearn[1] for row in group]
    if "jaxopt ProximalGradient" in group[0].times:
      theirs_ms = [1e3 * statistics.median(row.times["jaxopt ProximalGradient"]) for row in group]
      ratios = [o / t for o, t in zip(ours_ms, theirs_ms, strict=True)]
      ratio = ", ".join(f"{r:.2f}" for r in ratios)
      met = "yes" if max(ratios) <= 0.8 else "**no**"
      theirs = f"{statistics.median(theirs_ms):,.1f}"
    else:
      ratio, met, theirs = "", "", "–"
    lines.append(
      f"| {problem} | {len(group)} | {theirs} | {statistics.median(ours_ms):,.1f} | {ratio} | "
      f"{met} | {statistics.median(sk_ms):,.1f} |"
    )
  return "\n".join(lines)


def _versions() -> str:
  found = []
  for name in ("jax", "jaxlib", "jaxopt", "optax", "numpy", "scikit-learn"):
    try:
      found.append(f"{name} {importlib.metadata.version(name)}")
    except importlib.metadata.PackageNotFoundError:
      continue
  return ", ".join([*found, f"optax_l1 {optax_l1.__version__}"])


def _load_average() -> str:
  try:
    return f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
  except OSError:
    return "unknown"


if __name__ == "__main__":
  main()
