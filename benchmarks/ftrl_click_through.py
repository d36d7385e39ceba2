"""FTRL-Proximal on hashed click-through data: sparsity and quality, and the step time vs Keras.

Prints markdown, two tables:

1. For each method of :mod:`optax_l1.examples.click_through` (``optax_l1.ftrl`` with and
   without L1, ``optax_l1.adagrad`` with L1, ``optax.adagrad``), one pass over synthetic hashed
   logistic-regression data (2^18 features, Zipf frequencies, 300 true non-zeros) for each
   seed, its learning rate (and L1 strength) chosen for that seed on the validation split
   (``click_through.tune``, the best validation log loss over ``click_through.GRIDS``); the
   test log loss, test AUC and non-zero weights, mean ± sample std over the seeds; the
   differences from ``optax.adagrad`` on the same seed (paired: the seeds' problems differ
   more from one another than the methods do); and the hyperparameters chosen. The true
   weights' own log loss and AUC are the last row.
2. The step time of ``optax_l1.ftrl`` against ``keras.optimizers.Ftrl`` (Keras 3, JAX
   backend) on the same batches and the same model (the weights, one ``(2^18,)`` vector, no
   intercept), both jitted with their buffers donated: Keras through its stateless API,
   ``optimizer.stateless_apply(optimizer_variables, grads, trainable_variables)`` under
   ``jax.jit``. Two steps are timed: the optimizer alone, applying precomputed gradients of the
   batches, and the whole training step (gather, gradient, update). ``optax.adagrad`` and
   ``optax_l1.adagrad`` with L1 are timed beside them for scale. Timings are interleaved
   (Keras, ours, the Adagrads, Keras, ours, ...) so that drift in the machine's speed hits all
   alike, compilation excluded; medians. Before timing, the weights of both FTRLs after the same
   steps are compared: the same zeros and the same values up to rounding.

Usage::

  .venv/bin/python benchmarks/ftrl_click_through.py
  .venv/bin/python benchmarks/ftrl_click_through.py --seeds 0,1,2,3,4 --examples 500000
  .venv/bin/python benchmarks/ftrl_click_through.py --quick   # seconds, for the tests
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
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _machine import cpu_model  # benchmarks/ is on sys.path when a script runs

import optax_l1
from optax_l1.examples import click_through as ct


class Config(NamedTuple):
  """A budget: the splits' sizes, the grids of ``tune`` and the timed steps."""

  examples: int
  validation: int
  test: int
  grid_learning_rates: tuple[float, ...] | None  # None: click_through.GRIDS
  grid_l1s: dict[str, tuple[float, ...]] | None
  repeats: int
  warmup: int


FULL = Config(200_000, 20_000, 50_000, None, None, repeats=300, warmup=20)
QUICK = Config(  # the tests' size too (one compiled pass per method serves both)
  20_000,
  2_000,
  5_000,
  (0.1, 0.3),
  {"ftrl": (3.0, 10.0), "adagrad_l1": (3e-3, 1e-2)},
  repeats=5,
  warmup=2,
)


BASELINE = "adagrad"  # the differences of table 1 are against optax.adagrad, seed by seed


def grid(method: str, config: Config) -> tuple[Sequence[float], Sequence[float]]:
  """The ``(learning_rates, l1s)`` of ``tune`` for ``method`` in ``config``."""
  learning_rates, l1s = ct.GRIDS[method]
  if config.grid_learning_rates is not None:
    learning_rates = config.grid_learning_rates
  if config.grid_l1s is not None:
    l1s = config.grid_l1s.get(method, (0.0,))
  return learning_rates, l1s


def mean_std(values: Sequence[float]) -> tuple[float, float]:
  """Mean and sample standard deviation (0 for one value)."""
  a = np.asarray(values, np.float64)
  return float(a.mean()), float(a.std(ddof=1) if a.size > 1 else 0.0)


def pm(values: Sequence[float], digits: int, sign: str = "") -> str:
  """``mean ± std``, with ``digits`` decimals (``sign="+"`` for differences)."""
  mean, std = mean_std(values)
  if abs(mean) < 0.5 * 10**-digits:  # no "-0.0000"
    mean = 0.0
  return f"{mean:{sign},.{digits}f} ± {std:,.{digits}f}"


def comparison(seeds: Sequence[int], config: Config) -> str:
  """Table 1: each method tuned and trained for each seed; mean ± std over the seeds."""
  chosen: dict[str, list[ct.TrainResult]] = {method: [] for method in ct.METHODS}
  truth: list[ct.Metrics] = []
  seconds: dict[str, list[float]] = {method: [] for method in ct.METHODS}
  for seed in seeds:
    data = ct.make_data(config.examples, config.validation, config.test, seed=seed)
    truth.append(ct.true_metrics(data))
    for method in ct.METHODS:
      start = time.perf_counter()
      best, runs = ct.tune(method, data, grid=grid(method, config))
      chosen[method].append(best)
      seconds[method].append(time.perf_counter() - start)
      print(
        f"# seed {seed} {method}: lr {best.learning_rate:g}, l1 {best.l1:g} of {len(runs)} "
        f"runs; test log loss {best.test_log_loss:.4f}, AUC {best.test_auc:.4f}, "
        f"{best.nonzero_weights:,} non-zeros ({seconds[method][-1]:.1f} s)",
        file=sys.stderr,
        flush=True,
      )
  baseline = chosen[BASELINE]
  lines = [
    "| method | optimizer | test log loss | test AUC | non-zero weights | Δ log loss vs "
    f"{BASELINE} | Δ AUC vs {BASELINE} | lr, λ₁ chosen (per seed) | pass s |",
    "|---|---|---:|---:|---:|---:|---:|---|---:|",
  ]
  for method, results in chosen.items():
    picks = ", ".join(
      f"{r.learning_rate:g}" + (f"/{r.l1:g}" if ct.METHODS[method].uses_l1 else "") for r in results
    )
    pairs = list(zip(results, baseline, strict=True))  # the same seed: paired differences
    lines.append(
      f"| {method} | `{ct.METHODS[method].summary}` | "
      f"{pm([r.test_log_loss for r in results], 4)} | {pm([r.test_auc for r in results], 4)} | "
      f"{pm([r.nonzero_weights for r in results], 0)} | "
      f"{pm([r.test_log_loss - b.test_log_loss for r, b in pairs], 4, '+')} | "
      f"{pm([r.test_auc - b.test_auc for r, b in pairs], 4, '+')} | {picks} | "
      f"{statistics.median(r.seconds for r in results):.2f} |"
    )
  lines.append(
    f"| (true weights) | the labels' own | {pm([m.log_loss for m in truth], 4)} | "
    f"{pm([m.auc for m in truth], 4)} | 300 | "
    f"{pm([m.log_loss - b.test_log_loss for m, b in zip(truth, baseline, strict=True)], 4, '+')} | "
    f"{pm([m.auc - b.test_auc for m, b in zip(truth, baseline, strict=True)], 4, '+')} | | |"
  )
  return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Step time against Keras
# --------------------------------------------------------------------------------------------


def import_keras() -> Any:
  """Keras 3 on its JAX backend (chosen by KERAS_BACKEND at its first import)."""
  os.environ["KERAS_BACKEND"] = "jax"
  import keras

  if keras.backend.backend() != "jax":
    raise RuntimeError(f"keras was imported with the {keras.backend.backend()} backend")
  return keras


def weights_loss(w: jax.Array, ids: jax.Array, labels: jax.Array) -> jax.Array:
  """The timing model: ``click_through.loss_fn`` without the intercept (one variable)."""
  return ct.loss_fn({"w": w, "b": jnp.zeros([], w.dtype)}, ids, labels)


class Stepper(NamedTuple):
  """A jitted step and its (donated) state: ``step(state, data) -> state``; ``weights(state)``
  reads the weights back."""

  step: Callable[[Any, Any], Any]
  state: Any
  weights: Callable[[Any], jax.Array]


def optax_stepper(tx: optax.GradientTransformation, num_features: int, *, train: bool) -> Stepper:
  """``tx`` on the weights: from gradients, or with ``train`` from a batch ``(ids, labels)``."""

  def step(state, data):
    w, opt_state = state
    grads = jax.grad(weights_loss)(w, *data) if train else data
    updates, opt_state = tx.update(grads, opt_state, w)
    return optax.apply_updates(w, updates), opt_state

  w = jnp.zeros(num_features, jnp.float32)
  return Stepper(jax.jit(step, donate_argnums=0), (w, tx.init(w)), lambda state: state[0])


def keras_stepper(
  keras: Any, learning_rate: float, l1: float, num_features: int, *, train: bool
) -> Stepper:
  """``keras.optimizers.Ftrl`` on a ``keras.Variable``, by its stateless API under ``jax.jit``."""
  optimizer = keras.optimizers.Ftrl(learning_rate=learning_rate, l1_regularization_strength=l1)
  variable = keras.Variable(np.zeros(num_features, np.float32))
  optimizer.build([variable])

  def step(state, data):
    w, optimizer_variables = state
    grads = jax.grad(weights_loss)(w, *data) if train else data
    (w,), optimizer_variables = optimizer.stateless_apply(optimizer_variables, [grads], [w])
    return w, optimizer_variables

  state = (variable.value, [v.value for v in optimizer.variables])
  return Stepper(jax.jit(step, donate_argnums=0), state, lambda state: state[0])


def time_steps(
  steppers: dict[str, Stepper], data: Sequence[Any], repeats: int, warmup: int
) -> dict[str, float]:
  """Median ms of a step of each stepper, interleaved, cycling through ``data``; compiled
  (and warmed up) before timing."""
  states = {name: s.state for name, s in steppers.items()}
  times: dict[str, list[float]] = {name: [] for name in steppers}
  for i in range(warmup + repeats):
    item = data[i % len(data)]
    for name, s in steppers.items():
      start = time.perf_counter()
      states[name] = jax.block_until_ready(s.step(states[name], item))
      if i >= warmup:
        times[name].append(time.perf_counter() - start)
  return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def agreement(ours: Stepper, theirs: Stepper, batches: Sequence[Any]) -> str:
  """Both FTRLs' training steps on the same batches from zero: do their weights agree?

  The steps run on copies of the steppers' states (the steps donate their buffers)."""
  ours_state, theirs_state = (jax.tree.map(jnp.copy, s.state) for s in (ours, theirs))
  for batch in batches:
    ours_state = ours.step(ours_state, batch)
    theirs_state = theirs.step(theirs_state, batch)
  a, b = np.asarray(ours.weights(ours_state)), np.asarray(theirs.weights(theirs_state))
  same_zeros = np.array_equal(a == 0, b == 0)
  return (
    f"{np.count_nonzero(a):,} non-zero weights in ours, {np.count_nonzero(b):,} in Keras', "
    f"the same zero set: {'yes' if same_zeros else '**no**'}, max |Δw| = "
    f"{np.max(np.abs(a - b)):.2g} (max |w| = {np.max(np.abs(b)):.2g})"
  )


def step_times(config: Config) -> str:
  """Table 2: ms per step of Keras' Ftrl, ours, and the two Adagrads, on seed 0's batches."""
  keras = import_keras()
  learning_rate, l1 = ct.DEFAULTS["ftrl"]
  adagrad_lr, adagrad_l1 = ct.DEFAULTS["adagrad_l1"]
  data = ct.make_data(config.examples, 1, 1, seed=0)
  ids, labels = ct.batches(data.train_ids, data.train_labels, ct.BATCH_SIZE)
  batches = [(jnp.asarray(i), jnp.asarray(y)) for i, y in zip(ids, labels, strict=True)][:64]
  # The optimizer alone: each batch's gradient at zero weights (their cost is the same at any
  # weights: the update is dense over the 2^18 weights either way).
  zeros = jnp.zeros(ct.NUM_FEATURES, jnp.float32)
  grad = jax.jit(jax.grad(weights_loss))
  grads = [grad(zeros, *batch) for batch in batches]
  rows, check = {}, ""
  for kind, train, items in (("optimizer step", False, grads), ("training step", True, batches)):
    steppers = {
      "keras": keras_stepper(keras, learning_rate, l1, ct.NUM_FEATURES, train=train),
      "ours": optax_stepper(optax_l1.ftrl(learning_rate, l1=l1), ct.NUM_FEATURES, train=train),
      "adagrad": optax_stepper(optax.adagrad(learning_rate), ct.NUM_FEATURES, train=train),
      "adagrad_l1": optax_stepper(
        optax_l1.adagrad(adagrad_lr, l1=adagrad_l1), ct.NUM_FEATURES, train=train
      ),
    }
    if train:
      check = agreement(steppers["ours"], steppers["keras"], batches)
    rows[kind] = time_steps(steppers, items, config.repeats, config.warmup)
  lines = [
    "| step | keras Ftrl ms | optax_l1.ftrl ms | ours/keras | optax.adagrad ms "
    "| optax_l1.adagrad(l1) ms |",
    "|---|---:|---:|---:|---:|---:|",
  ]
  for kind, ms in rows.items():
    lines.append(
      f"| {kind} | {ms['keras']:.3f} | {ms['ours']:.3f} | {ms['ours'] / ms['keras']:.2f} | "
      f"{ms['adagrad']:.3f} | {ms['adagrad_l1']:.3f} |"
    )
  return "\n".join(lines) + (
    f"\n\nThe two FTRLs after the same {len(batches)} training steps from zero: {check}"
  )


def versions() -> str:
  found = []
  for name in ("jax", "jaxlib", "optax", "keras", "numpy", "scikit-learn"):
    try:
      found.append(f"{name} {importlib.metadata.version(name)}")
    except importlib.metadata.PackageNotFoundError:
      continue
  return ", ".join([*found, f"optax_l1 {optax_l1.__version__}"])


def load_average() -> str:
  try:
    return f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
  except OSError:
    return "unknown"


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(
    description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--quick", action="store_true", help="a tiny budget, for the tests")
  parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default: 0,1,2)")
  parser.add_argument("--examples", type=int, default=None, help="training examples per seed")
  parser.add_argument("--repeats", type=int, default=None, help="timed steps (default: 300)")
  args = parser.parse_args(argv)
  config = QUICK if args.quick else FULL
  if args.examples is not None:
    config = config._replace(examples=args.examples)
  if args.repeats is not None:
    config = config._replace(repeats=args.repeats)
  seeds = [int(s) for s in args.seeds.split(",")]
  command = " ".join(
    ["benchmarks/ftrl_click_through.py", *(sys.argv[1:] if argv is None else argv)]
  )

  print(f"## FTRL on sparse features{' (--quick)' if args.quick else ''}")
  print()
  print(f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
  print(
    f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} "
    f"{platform.release()}, Python {platform.python_version()}; backend "
    f"{jax.default_backend()}; load average at start: {load_average()}"
  )
  print(f"- versions: {versions()}")
  print(f"- command: `.venv/bin/python {command}`")
  print(
    f"- data (`click_through.make_data`): {ct.NUM_FEATURES:,} hashed ids, {ct.ACTIVE} "
    f"active per example (Zipf, s = 1.1), 300 true non-zeros among the 2,000 most frequent; "
    f"{config.examples:,} training, {config.validation:,} validation, {config.test:,} test "
    f"examples per seed; one pass in batches of {ct.BATCH_SIZE}, summed log loss, from zero"
  )
  print(
    f"- seeds {','.join(map(str, seeds))}: mean ± sample std; each method's lr (and λ₁) "
    "chosen per seed by validation log loss over "
    + (
      "`click_through.GRIDS` (lr 0.03, 0.1, 0.3, 1; ftrl λ₁ 1, 3, 10, 30; adagrad_l1 λ₁ "
      "1e-3, 3e-3, 1e-2, 3e-2)"
      if config.grid_learning_rates is None
      else f"lr {config.grid_learning_rates}, λ₁ {config.grid_l1s}"
    )
  )
  print()
  print(comparison(seeds, config))
  print()
  print(
    f"Step time, ms (median of {config.repeats} interleaved steps after {config.warmup}; "
    f"jitted, donated; the weights only, {ct.NUM_FEATURES:,} float32; batches of "
    f"{ct.BATCH_SIZE} from seed 0; FTRL lr {ct.DEFAULTS['ftrl'].learning_rate:g}, "
    f"λ₁ {ct.DEFAULTS['ftrl'].l1:g}; Keras via `stateless_apply`):"
  )
  print()
  print(step_times(config))
  print()
  print(f"load average at end: {load_average()}")


if __name__ == "__main__":
  main()
