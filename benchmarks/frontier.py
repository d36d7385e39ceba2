"""Accuracy at a given sparsity: optax_l1's target sparsity against the pruning baselines.

Prints markdown tables of test accuracy (mean ± std over seeds) at 80/90/95/98 % exact zeros
over the kernels, and, for the structured methods, at 50/80/90/95 % of the hidden units (or
channels) removed, with the sparsity actually measured after training (mean over seeds) beside
each accuracy. Tasks (:mod:`frontier_models`): the digits MLP 64-256-10, the MNIST-1D MLP
40-256-10 and the MNIST-1D CNN. Every method trains with Adam (lr 1e-3), batch 128 (drawn with
replacement), 3000 steps, He-initialised kernels, the sparsity ramping from 0 at step 300 to
the level at step 2000 (cubic), then held while the rest trains on.

Methods (:data:`REGISTRY`):

- ``dense``: ``optax.adam``, the reference (shown in every column).
- ``gmp``, ``gmp_global``, ``gmp_units``: gradual magnitude pruning (:mod:`pruning`; tfmot's
  ``prune_low_magnitude`` + ``PolynomialDecay(0, level, 300, 2000, power=3, frequency=100)``),
  per kernel, with one global threshold, or whole hidden units by their incoming L2 norm.
- ``penalty_prune_finetune``: ``optax.adam`` with λ·Σ|w| in the loss until step 2000, one-shot
  magnitude pruning of each kernel to the level there, then the mask fixed and no penalty for
  the last 1000 steps; λ tuned over 1e-5, 3e-5, …, 1e-2, the best λ per level (by mean test
  accuracy over the seeds, which favours this baseline) reported.
- ``ours_l1``, ``ours_mcp``, ``ours_l0``, ``ours_group``: ``optax_l1.adam(1e-3,
  target_sparsity=optax_l1.polynomial_sparsity(level, begin_step=300, end_step=2000))`` with
  ``sparsity_penalty`` ``"l1"``, ``"mcp"``, ``"l0"``, or ``target_groups=True``; skipped, with a
  note, where this version of optax_l1 does not have them.

Usage::

  .venv/bin/python benchmarks/frontier.py                      # everything (long on a CPU)
  .venv/bin/python benchmarks/frontier.py --datasets digits --levels 90,95,98 \\
      --methods dense,gmp,gmp_global,penalty_prune_finetune
  .venv/bin/python benchmarks/frontier.py --quick              # a few steps: a smoke test
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import frontier_models as fm
import pruning
from _machine import cpu_model

import optax_l1


@dataclasses.dataclass(frozen=True)
class Config:
  """The training budget: steps, the sparsity ramp ``[begin, end]``, GMP's mask frequency."""

  steps: int = 3000
  begin: int = 300
  end: int = 2000
  frequency: int = 100
  batch_size: int = 128
  learning_rate: float = 1e-3


FULL = Config()
QUICK = Config(steps=30, begin=4, end=20, frequency=4)
LAMBDAS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2)  # the best at 98 % on digits: 3e-3
LEVELS = (0.8, 0.9, 0.95, 0.98)
UNIT_LEVELS = (0.5, 0.8, 0.9, 0.95)

Builder = Callable[[float, fm.Task, Config], optax.GradientTransformation]


@dataclasses.dataclass(frozen=True)
class Method:
  """One way to reach a sparsity level.

  Attributes:
    summary: one line for the notes under the tables.
    kind: ``"weights"`` (exact zeros over the kernels), ``"units"`` (hidden units removed) or
      ``"dense"`` (no sparsity: the reference row of both tables).
    optimizer: ``optimizer(level, task, config)`` returns the optax transformation.
    penalty_grid: if not empty, λ·Σ|w| over the kernels is in the loss until ``config.end``,
      and λ is tuned over these values (``--lambdas`` replaces them).
    optional: an API this version of optax_l1 may lack: if building it raises, the method is
      skipped with a note instead of stopping the run.
  """

  summary: str
  kind: str
  optimizer: Builder
  penalty_grid: tuple[float, ...] = ()
  optional: bool = False


def _adam(config: Config) -> optax.GradientTransformation:
  return optax.adam(config.learning_rate)


def _gmp(scope: str, granularity: str) -> Builder:
  def build(level, task, config):
    schedule = pruning.PolynomialDecay(0.0, level, config.begin, config.end, 3, config.frequency)
    mask = fm.kernel_mask if granularity == "weight" else fm.hidden_kernel_mask(task)
    return pruning.prune_low_magnitude(
      _adam(config), schedule, mask, scope=scope, granularity=granularity
    )

  return build


def _prune_once(level, task, config):
  del task
  schedule = pruning.ConstantSparsity(level, config.end, config.end, frequency=1)
  return pruning.prune_low_magnitude(_adam(config), schedule, fm.kernel_mask)


def _ours(**kwargs) -> Builder:
  def build(level, task, config):
    if not hasattr(optax_l1, "polynomial_sparsity"):
      raise NotImplementedError("optax_l1.polynomial_sparsity is not in this version")
    schedule = optax_l1.polynomial_sparsity(
      level, begin_step=config.begin, end_step=config.end, initial=0.0, power=3
    )
    mask = fm.hidden_kernel_mask(task) if kwargs.get("target_groups") else fm.kernel_mask
    return optax_l1.adam(config.learning_rate, target_sparsity=schedule, mask=mask, **kwargs)

  return build


# The methods, in the order of the tables. Adding one is adding an entry here.
REGISTRY: dict[str, Method] = {
  "dense": Method("optax.adam, no sparsity", "dense", lambda level, task, config: _adam(config)),
  "gmp": Method(
    "gradual magnitude pruning, per kernel (tfmot's default)", "weights", _gmp("layer", "weight")
  ),
  "gmp_global": Method(
    "gradual magnitude pruning, one threshold over all kernels (jaxpruner)",
    "weights",
    _gmp("global", "weight"),
  ),
  "penalty_prune_finetune": Method(
    "λ·Σ|w| in the loss, one-shot prune per kernel at the ramp's end, finetune",
    "weights",
    _prune_once,
    LAMBDAS,
  ),
  "ours_l1": Method(
    "optax_l1.adam(target_sparsity=…, sparsity_penalty='l1')",
    "weights",
    _ours(sparsity_penalty="l1"),
    optional=True,
  ),
  "ours_mcp": Method(
    "optax_l1.adam(target_sparsity=…, sparsity_penalty='mcp')",
    "weights",
    _ours(sparsity_penalty="mcp"),
    optional=True,
  ),
  "ours_l0": Method(
    "optax_l1.adam(target_sparsity=…, sparsity_penalty='l0')",
    "weights",
    _ours(sparsity_penalty="l0"),
    optional=True,
  ),
  "ours_l0_each_step": Method(
    "ours_l0 with the strength re-estimated at every step (target_update_every=1)",
    "weights",
    _ours(sparsity_penalty="l0", target_update_every=1),
    optional=True,
  ),
  "ours_l0_every_100": Method(
    "ours_l0 with the strength re-estimated every 100 steps, GMP's mask frequency",
    "weights",
    _ours(sparsity_penalty="l0", target_update_every=100),
    optional=True,
  ),
  "gmp_units": Method(
    "gradual magnitude pruning of hidden units by incoming L2 norm, per layer",
    "units",
    _gmp("layer", "unit"),
  ),
  "ours_group": Method(
    "optax_l1.adam(target_sparsity=…, target_groups=True) on the hidden kernels",
    "units",
    _ours(target_groups=True),
    optional=True,
  ),
}
METHODS = tuple(REGISTRY)


@dataclasses.dataclass(frozen=True)
class Run:
  """One trained model.

  Attributes:
    accuracy: test accuracy.
    zeros: the fraction of kernel entries exactly ``0.0``.
    units: the fraction of hidden units (channels) removed.
    strength: ``optax_l1.target_strength`` at the end (ours only), else ``None``.
    seconds: training time, compilation excluded.
  """

  task: str
  method: str
  level: float
  seed: int
  penalty: float
  accuracy: float
  zeros: float
  units: float
  strength: float | None
  seconds: float


def _loss(graphdef, params, x, y, penalty=None):
  """Mean cross-entropy, plus ``penalty * sum(|kernel|)`` (``keras.regularizers.l1``) if given."""
  logits = nnx.merge(graphdef, params)(x)
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
  if penalty is None:
    return loss
  return loss + penalty * sum(jnp.abs(k).sum() for k in fm.kernels(params))


def _strength(opt_state: Any) -> float | None:
  if not hasattr(optax_l1, "target_strength"):
    return None
  try:
    return float(np.mean(np.asarray(optax_l1.target_strength(opt_state))))
  except (ValueError, TypeError, AttributeError):
    return None


class Trainer:
  """``trainer(seed, penalty)`` trains one model; compiled once for all seeds and penalties."""

  def __init__(self, task_name: str, method: str, level: float, config: Config):
    self.task_name, self.method, self.level = task_name, method, level
    self.task = fm.TASKS[task_name]
    spec = REGISTRY[method]
    tx = spec.optimizer(level, self.task, config)
    self.graphdef, _ = nnx.split(self.task.model(nnx.Rngs(0)))
    graphdef, steps, end, batch_size = self.graphdef, config.steps, config.end, config.batch_size
    with_penalty = bool(spec.penalty_grid)

    def train(params, keys, x, y, penalty):
      def body(carry, inputs):
        params, opt_state = carry
        key, step = inputs
        batch = jax.random.randint(key, (batch_size,), 0, x.shape[0])  # with replacement
        strength = jnp.where(step < end, penalty, 0.0) if with_penalty else None
        grads = jax.grad(_loss, argnums=1)(graphdef, params, x[batch], y[batch], strength)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

      carry = (params, tx.init(params))
      return jax.lax.scan(body, carry, (keys, jnp.arange(steps)))[0]

    self._train = jax.jit(train)
    self._steps = steps
    self._compiled: Any = None
    self.compile_seconds = 0.0

  def _inputs(self, seed: int):
    data = self.task.data(seed)
    params = nnx.as_pure(nnx.state(self.task.model(nnx.Rngs(seed)), nnx.Param))
    keys = jax.random.split(jax.random.key(seed), self._steps)
    return data, params, keys

  def __call__(self, seed: int, penalty: float = 0.0) -> Run:
    data, params, keys = self._inputs(seed)
    args = (params, keys, jnp.asarray(data.x_train), jnp.asarray(data.y_train), penalty)
    if self._compiled is None:
      start = time.perf_counter()
      self._compiled = self._train.lower(*args).compile()
      self.compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    params, opt_state = jax.block_until_ready(self._compiled(*args))
    seconds = time.perf_counter() - start
    logits = nnx.merge(self.graphdef, params)(jnp.asarray(data.x_test))
    accuracy = float(jnp.mean(jnp.argmax(logits, axis=-1) == jnp.asarray(data.y_test)))
    removed, total = fm.units_removed(self.task, params)
    return Run(
      self.task_name,
      self.method,
      self.level,
      seed,
      penalty,
      accuracy,
      fm.zero_fraction(params),
      removed / total,
      _strength(opt_state),
      seconds,
    )


@dataclasses.dataclass
class Cell:
  """The runs of one (task, method, level), the λ chosen, and the times."""

  runs: list[Run]
  penalty: float | None = None
  compile_seconds: float = 0.0
  seconds: float = 0.0  # all the training of this cell, every λ of the grid included
  grid: dict[float, list[Run]] = dataclasses.field(default_factory=dict)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
  a = np.asarray(values, np.float64)
  return float(a.mean()), float(a.std(ddof=1) if a.size > 1 else 0.0)


def run_cell(
  task: str,
  method: str,
  level: float,
  seeds: Sequence[int],
  config: Config,
  grid: Sequence[float] | None = None,
) -> Cell:
  """Trains ``method`` at ``level`` for every seed and every λ of ``grid`` (or of the method's
  ``penalty_grid``), and keeps the λ of the best mean test accuracy."""
  trainer = Trainer(task, method, level, config)
  tuned = bool(REGISTRY[method].penalty_grid)
  grid = (grid or REGISTRY[method].penalty_grid) if tuned else (0.0,)
  by_penalty = {}
  for penalty in grid:
    by_penalty[penalty] = [trainer(seed, penalty) for seed in seeds]
    for run in by_penalty[penalty]:
      print(
        f"  {task} {method} level={level:g} λ={penalty:g} seed={run.seed}: "
        f"acc {run.accuracy:.4f}, zeros {run.zeros:.4f}, units {run.units:.4f}, "
        f"{run.seconds:.2f} s",
        file=sys.stderr,
        flush=True,
      )
  best = max(grid, key=lambda p: np.mean([r.accuracy for r in by_penalty[p]]))
  return Cell(
    runs=by_penalty[best],
    penalty=best if tuned else None,
    compile_seconds=trainer.compile_seconds,
    seconds=sum(r.seconds for runs in by_penalty.values() for r in runs),
    grid=by_penalty if tuned else {},
  )


def _accuracy(runs: Sequence[Run]) -> str:
  acc, std = _mean_std([100 * r.accuracy for r in runs])
  return f"{acc:.2f} ± {std:.2f}"


def _entry(cell: Cell, measure: str) -> str:
  achieved = 100 * float(np.mean([getattr(r, measure) for r in cell.runs]))
  extra = f", λ {cell.penalty:g}" if cell.penalty is not None else ""
  return f"{_accuracy(cell.runs)} ({achieved:.1f}{extra})"


def _table(
  title: str, levels: Sequence[float], rows: dict[str, dict[float, Cell]], measure: str
) -> list[str]:
  lines = [
    f"#### {title}",
    "",
    "| method | " + " | ".join(f"{100 * lv:g} %" for lv in levels) + " |",
  ]
  lines.append("|---|" + "---:|" * len(levels))
  for method, cells in rows.items():
    lines.append(f"| {method} | " + " | ".join(_entry(cells[lv], measure) for lv in levels) + " |")
  return [*lines, ""]


def _versions() -> str:
  names = ("jax", "jaxlib", "optax", "flax", "optax_l1", "mnist1d")
  found = []
  for name in names:
    try:
      version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      continue
    if name == "optax_l1":
      version = optax_l1.__version__
    found.append(f"{name} {version}")
  return ", ".join(found)


def _parse_levels(text: str) -> tuple[float, ...]:
  values = tuple(float(v) / 100 for v in text.split(","))
  if not all(0 <= v < 1 for v in values):
    raise argparse.ArgumentTypeError(f"levels are percentages in [0, 100): {text}")
  return values


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true", help=f"a tiny budget: {QUICK}")
  parser.add_argument("--datasets", default=",".join(fm.TASKS), help="comma-separated")
  parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
  parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
  parser.add_argument("--levels", type=_parse_levels, default=LEVELS, help="%% exact zeros")
  parser.add_argument("--unit-levels", type=_parse_levels, default=UNIT_LEVELS, help="%% units")
  parser.add_argument("--lambdas", default=",".join(f"{v:g}" for v in LAMBDAS), help="λ grid")
  args = parser.parse_args(argv)
  config = QUICK if args.quick else FULL
  tasks = args.datasets.split(",")
  seeds = [int(s) for s in args.seeds.split(",")]
  methods = args.methods.split(",")
  for name, known in (*((t, fm.TASKS) for t in tasks), *((m, REGISTRY) for m in methods)):
    if name not in known:
      parser.error(f"{name!r} is not one of {', '.join(known)}")
  grid = tuple(float(v) for v in args.lambdas.split(","))

  print(f"## Frontier: accuracy at a sparsity level{' (--quick)' if args.quick else ''}")
  print()
  print(
    f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} "
    f"{platform.release()}, Python {platform.python_version()}; backend {jax.default_backend()}"
  )
  print(f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
  print(f"- versions: {_versions()}")
  print(f"- command: `benchmarks/frontier.py {' '.join(sys.argv[1:] if argv is None else argv)}`")
  print(
    f"- budget: Adam lr {config.learning_rate:g}, batch {config.batch_size}, {config.steps} "
    f"steps, ramp {config.begin}→{config.end} (cubic), GMP mask every {config.frequency} steps; "
    f"seeds {','.join(map(str, seeds))} (mean ± sample std; the measured sparsity, mean, in "
    "parentheses)"
  )
  print()

  notes: list[str] = []
  timings: list[str] = []
  for task in tasks:
    weight_rows: dict[str, dict[float, Cell]] = {}
    unit_rows: dict[str, dict[float, Cell]] = {}
    grids: list[str] = []
    strengths: list[str] = []
    for method in methods:
      spec = REGISTRY[method]
      levels = {"weights": args.levels, "units": args.unit_levels, "dense": (0.0,)}[spec.kind]
      cells: dict[float, Cell] = {}
      try:
        for level in levels:
          cells[level] = run_cell(task, method, level, seeds, config, grid)
      except Exception as error:  # an API that may be missing or unfinished: note it, go on
        if not spec.optional:
          raise
        notes.append(f"- {method} skipped on {task}: {type(error).__name__}: {error}")
        continue
      for level, cell in cells.items():
        per_run = cell.seconds / ((len(cell.grid) or 1) * len(seeds))
        timings.append(
          f"| {task} | {method} | {100 * level:g} | {cell.compile_seconds:.2f} | {per_run:.2f} "
          f"| {len(cell.grid) or 1}×{len(seeds)} | {cell.compile_seconds + cell.seconds:.1f} |"
        )
        for penalty, runs in cell.grid.items():
          grids.append(
            f"| {100 * level:g} | {penalty:g} | "
            f"{_accuracy(runs)} "
            f"| {100 * np.mean([r.zeros for r in runs]):.1f} |"
          )
        ours = [r.strength for r in cell.runs if r.strength is not None]
        if ours:
          strengths.append(f"- {method} at {100 * level:g} %: final strength {np.mean(ours):.3g}")
      if spec.kind == "dense":
        weight_rows[method] = dict.fromkeys(args.levels, cells[0.0])
        unit_rows[method] = dict.fromkeys(args.unit_levels, cells[0.0])
      else:
        (weight_rows if spec.kind == "weights" else unit_rows)[method] = cells
    summary = fm.TASKS[task].summary
    print(f"### {summary}")
    print()
    kinds = {REGISTRY[m].kind for m in weight_rows}
    if "weights" in kinds or not any(REGISTRY[m].kind == "units" for m in unit_rows):
      title = "test accuracy % at a fraction of exact zeros over the kernels (measured %)"
      print("\n".join(_table(title, args.levels, weight_rows, "zeros")))
    if any(REGISTRY[m].kind == "units" for m in unit_rows):
      title = "test accuracy % at a fraction of hidden units removed (measured %)"
      print("\n".join(_table(title, args.unit_levels, unit_rows, "units")))
    if grids:
      print("penalty_prune_finetune over its λ grid (test accuracy %, exact zeros %):")
      print()
      print("| level % | λ | test acc % | zeros % |")
      print("|---:|---:|---:|---:|")
      print("\n".join(grids))
      print()
    if strengths:
      print("\n".join(strengths))
      print()

  print("### Time")
  print()
  print("| task | method | level % | compile s | train s per run | runs (λ×seeds) | total s |")
  print("|---|---|---:|---:|---:|---:|---:|")
  print("\n".join(timings))
  print()
  print("### Methods")
  print()
  for method in methods:
    print(f"- {method}: {REGISTRY[method].summary}")
  print("\n".join(notes))


if __name__ == "__main__":
  main()
