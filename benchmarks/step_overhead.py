"""Optimizer step time of each optax_l1 optimizer against its optax twin.

Prints a markdown table: for each optimizer and parameter count N, the median time of one
jitted step (``tx.update`` + ``optax.apply_updates``, params and state donated) of the optax
optimizer ("twin") and of the optax_l1 one with ``l1=1e-4`` ("ours"), their ratio, the optimizer
state size of each (ours should hold only a step count more than the twin, or nothing more where
the twin already counts steps), and the number of fusions (loops over memory) in each optimized
HLO. A second table gives the compile time of each step, split into tracing and lowering
(``jax.jit(step).lower(...)``, Python) and XLA's compilation (``.compile()``), each the median
of ``--compile-repeats`` fresh compilations, twin and ours interleaved; a third, the same for a
whole training step (forward, backward and update over the same params, at the first size).

Timings are interleaved (twin, ours, twin, ours, ...) so that drift in the machine's speed
(thermal throttling, other processes) affects both alike. It runs on JAX's default backend, so
the same command benchmarks a GPU or TPU where one is present.

Usage::

  .venv/bin/python benchmarks/step_overhead.py
  .venv/bin/python benchmarks/step_overhead.py --sizes 1e6,16e6,64e6 --repeats 300
  .venv/bin/python benchmarks/step_overhead.py --optimizers adam,adamw --hlo /tmp/hlo
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import optax
from _machine import cpu_model  # benchmarks/ is on sys.path when a script runs

import optax_l1

LEARNING_RATE = 1e-3
L1 = 1e-4
TARGET = 1.05  # the prox should cost at most 5 % of the optimizer step
COMPILE_TARGET = 1.2  # and at most 20 % of its compile time

MakeTx = Callable[[], optax.GradientTransformation]


class Row(NamedTuple):
  """One optimizer pair: the optax twin and ours, as factories (each run builds fresh ones)."""

  twin: MakeTx
  ours: MakeTx
  twin_text: str
  ours_text: str


ROWS: dict[str, Row] = {
  "sgd": Row(
    lambda: optax.sgd(LEARNING_RATE),
    lambda: optax_l1.sgd(LEARNING_RATE, l1=L1),
    "optax.sgd(lr)",
    "optax_l1.sgd(lr, l1=l1)",
  ),
  "sgd+l1_prox": Row(
    lambda: optax.sgd(LEARNING_RATE),
    lambda: optax.chain(optax.sgd(LEARNING_RATE), optax_l1.l1_prox(L1, LEARNING_RATE)),
    "optax.sgd(lr)",
    "optax.chain(optax.sgd(lr), optax_l1.l1_prox(l1, lr))",
  ),
  "sgd+minimal_prox": Row(
    lambda: optax.sgd(LEARNING_RATE),
    lambda: optax.chain(optax.sgd(LEARNING_RATE), minimal_prox(LEARNING_RATE * L1)),
    "optax.sgd(lr)",
    "optax.chain(optax.sgd(lr), minimal_prox(lr * l1))",
  ),
  "sgd+momentum": Row(
    lambda: optax.sgd(LEARNING_RATE, momentum=0.9),
    lambda: optax_l1.sgd(LEARNING_RATE, l1=L1, momentum=0.9),
    "optax.sgd(lr, momentum=0.9)",
    "optax_l1.sgd(lr, l1=l1, momentum=0.9)",
  ),
  "adam": Row(
    lambda: optax.adam(LEARNING_RATE),
    lambda: optax_l1.adam(LEARNING_RATE, l1=L1),
    "optax.adam(lr)",
    "optax_l1.adam(lr, l1=l1)",
  ),
  # The target-sparsity controller's own cost: against the same prox at a fixed strength (the
  # strength re-estimated every 10 steps, its default for l0; at every step; every 100).
  "adam+target": Row(
    lambda: optax_l1.adam(LEARNING_RATE, l0=L1),
    lambda: optax_l1.adam(LEARNING_RATE, target_sparsity=0.5),
    "optax_l1.adam(lr, l0=l1)",
    "optax_l1.adam(lr, target_sparsity=0.5)",
  ),
  "adam+target_each_step": Row(
    lambda: optax_l1.adam(LEARNING_RATE, l0=L1),
    lambda: optax_l1.adam(LEARNING_RATE, target_sparsity=0.5, target_update_every=1),
    "optax_l1.adam(lr, l0=l1)",
    "optax_l1.adam(lr, target_sparsity=0.5, target_update_every=1)",
  ),
  "adam+target_every_100": Row(
    lambda: optax_l1.adam(LEARNING_RATE, l0=L1),
    lambda: optax_l1.adam(LEARNING_RATE, target_sparsity=0.5, target_update_every=100),
    "optax_l1.adam(lr, l0=l1)",
    "optax_l1.adam(lr, target_sparsity=0.5, target_update_every=100)",
  ),
  "adamw": Row(
    lambda: optax.adamw(LEARNING_RATE),
    lambda: optax_l1.adamw(LEARNING_RATE, l1=L1),
    "optax.adamw(lr)",
    "optax_l1.adamw(lr, l1=l1)",
  ),
  "rmsprop": Row(
    lambda: optax.rmsprop(LEARNING_RATE),
    lambda: optax_l1.rmsprop(LEARNING_RATE, l1=L1),
    "optax.rmsprop(lr)",
    "optax_l1.rmsprop(lr, l1=l1)",
  ),
  "adagrad": Row(
    lambda: optax.adagrad(LEARNING_RATE),
    lambda: optax_l1.adagrad(LEARNING_RATE, l1=L1),
    "optax.adagrad(lr)",
    "optax_l1.adagrad(lr, l1=l1)",
  ),
}


def minimal_prox(threshold: float) -> optax.GradientTransformation:
  """The least an exact-zero L1 prox can add to a step: not optax_l1, a floor to compare with.

  No step count, mask, schedule, dtype handling or validation: each leaf becomes
  ``v − clip(v, −t, t)`` with ``v = params + updates``, returned as ``new − params`` so that
  ``optax.apply_updates`` lands removed weights on exactly 0.0. Its cost over the twin is the
  cost of the arithmetic itself.
  """

  def update(updates, params):
    def leaf(u, p):
      v = p + u
      return v - jnp.clip(v, -threshold, threshold) - p

    return jax.tree.map(leaf, updates, params)

  return optax.stateless(update)


def make_params(n: int, key: jax.Array) -> dict[str, Any]:
  """Float32 params of about ``n`` entries, shaped like a stack of 4 transformer MLP blocks.

  Each block has a ``(w, 4w)`` and a ``(4w, w)`` kernel, their biases and a layer-norm scale,
  about ``8 w^2`` entries, so the tree mixes large matrices with small vectors as a real
  model does (20 leaves; ``w`` is a multiple of 8).
  """
  blocks = 4
  width = max(8, 8 * round(math.sqrt(n / (8 * blocks)) / 8))
  params = {}
  for i, k in enumerate(jax.random.split(key, blocks)):
    k_up, k_down = jax.random.split(k)
    params[f"block_{i}"] = {
      "up": {
        "kernel": 0.02 * jax.random.normal(k_up, (width, 4 * width), jnp.float32),
        "bias": jnp.zeros((4 * width,), jnp.float32),
      },
      "down": {
        "kernel": 0.02 * jax.random.normal(k_down, (4 * width, width), jnp.float32),
        "bias": jnp.zeros((width,), jnp.float32),
      },
      "norm_scale": jnp.ones((width,), jnp.float32),
    }
  return params


def mlp_loss(params: dict[str, Any], x: jax.Array) -> jax.Array:
  """A residual MLP over the blocks of :func:`make_params`, for whole-training-step compiles."""
  h = x
  for block in params.values():
    z = jax.nn.gelu(h @ block["up"]["kernel"] + block["up"]["bias"])
    h = h + (z @ block["down"]["kernel"] + block["down"]["bias"]) * block["norm_scale"]
  return jnp.mean(h**2)


def tree_nbytes(tree: Any) -> int:
  """Bytes held by a pytree's array leaves (read from their shapes; nothing is copied)."""
  return sum(int(np.dtype(x.dtype).itemsize) * int(np.size(x)) for x in jax.tree.leaves(tree))


def count_fusions(hlo_text: str) -> int:
  """Number of fusion instructions in the optimized HLO (one loop over memory each)."""
  return len(re.findall(r"=\s*\S+\s+fusion\(", hlo_text))


class Compiled(NamedTuple):
  step: Any  # the compiled executable: step(params, state, grads) -> (params, state)
  params: Any
  state: Any
  lower_s: float  # tracing and lowering to StableHLO (Python)
  xla_s: float  # XLA's optimisation and code generation
  state_bytes: int
  fusions: int
  hlo: str


def compile_step(
  tx: optax.GradientTransformation, params: Any, data: Any, *, whole_train_step: bool = False
) -> Compiled:
  """Jits ``update + apply_updates`` with params and state donated; times lower and compile.

  ``data`` is the gradients, or with ``whole_train_step`` a batch for :func:`mlp_loss`, whose
  gradient the step then computes (forward, backward, update: what a training loop compiles).
  """

  def step(params, state, data):
    grads = jax.grad(mlp_loss)(params, data) if whole_train_step else data
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  params = jax.tree.map(jnp.copy, params)  # each optimizer owns (and donates) its own copy
  state = tx.init(params)
  jax.block_until_ready((params, state))
  start = time.perf_counter()
  lowered = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, data)
  lowered_at = time.perf_counter()
  compiled = lowered.compile()
  lower_s, xla_s = lowered_at - start, time.perf_counter() - lowered_at
  hlo = compiled.as_text()
  return Compiled(
    compiled, params, state, lower_s, xla_s, tree_nbytes(state), count_fusions(hlo), hlo
  )


class CompileTimes(NamedTuple):
  lower_s: float
  xla_s: float

  @property
  def total_s(self) -> float:
    return self.lower_s + self.xla_s


def compile_times(
  row: Row, params: Any, data: Any, repeats: int, *, whole_train_step: bool = False
) -> tuple[CompileTimes, CompileTimes]:
  """Twin's and ours: medians over ``repeats`` interleaved compilations of fresh optimizers
  (so no tracing cache is hit, and drift in the machine's speed hits both alike). Only the
  times are kept: each compilation's copy of the params and state is freed before the next."""
  times: dict[str, list[CompileTimes]] = {"twin": [], "ours": []}
  for _ in range(repeats):
    for key, make in (("twin", row.twin), ("ours", row.ours)):
      c = compile_step(make(), params, data, whole_train_step=whole_train_step)
      times[key].append(CompileTimes(c.lower_s, c.xla_s))
      del c
  twin, ours = (
    CompileTimes(
      statistics.median(t.lower_s for t in times[k]), statistics.median(t.xla_s for t in times[k])
    )
    for k in ("twin", "ours")
  )
  return twin, ours


class Result(NamedTuple):
  name: str
  n: int
  twin_ms: float
  ours_ms: float
  twin_compile: CompileTimes
  ours_compile: CompileTimes
  twin_state_bytes: int
  ours_state_bytes: int
  twin_fusions: int
  ours_fusions: int

  @property
  def ratio(self) -> float:
    return self.ours_ms / self.twin_ms


def benchmark(
  name: str, row: Row, params: Any, grads: Any, repeats: int, warmup: int, compile_repeats: int
) -> Result:
  twin_compile, ours_compile = compile_times(row, params, grads, compile_repeats)
  twin = compile_step(row.twin(), params, grads)
  ours = compile_step(row.ours(), params, grads)
  times: dict[str, list[float]] = {"twin": [], "ours": []}
  runs = {"twin": twin, "ours": ours}
  for i in range(warmup + repeats):
    for key in ("twin", "ours"):  # interleaved, so drift hits both alike
      c = runs[key]
      start = time.perf_counter()
      new_params, new_state = jax.block_until_ready(c.step(c.params, c.state, grads))
      elapsed = time.perf_counter() - start
      runs[key] = c._replace(params=new_params, state=new_state)
      if i >= warmup:
        times[key].append(elapsed)
  return Result(
    name=name,
    n=sum(x.size for x in jax.tree.leaves(params)),
    twin_ms=1e3 * statistics.median(times["twin"]),
    ours_ms=1e3 * statistics.median(times["ours"]),
    twin_compile=twin_compile,
    ours_compile=ours_compile,
    twin_state_bytes=twin.state_bytes,
    ours_state_bytes=ours.state_bytes,
    twin_fusions=twin.fusions,
    ours_fusions=ours.fusions,
  )


def header() -> str:
  now = datetime.datetime.now(datetime.timezone.utc).astimezone()
  devices = jax.devices()
  return "\n".join(
    [
      f"- date: {now:%Y-%m-%d %H:%M %Z}",
      f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} "
      f"{platform.release()}, Python {platform.python_version()}",
      f"- jax {jax.__version__}, jaxlib {jaxlib.__version__}, optax {optax.__version__}, "
      f"optax_l1 {optax_l1.__version__}",
      f"- backend: {jax.default_backend()}; jax.devices(): {devices} ({devices[0].device_kind})",
      f"- lr = {LEARNING_RATE:g}, l1 = {L1:g}; step = tx.update + optax.apply_updates, jitted, "
      "params and state donated; grads fixed random",
      f"- load average at start: {load_average()}",
    ]
  )


def load_average() -> str:
  """The 1-minute load average and CPU count: other processes skew CPU timings."""
  try:
    return f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
  except OSError:
    return "unknown"


def format_n(n: int) -> str:
  return f"{n / 1e6:.1f}M" if n >= 1e5 else str(n)


def meets(ratio: float, target: float) -> str:
  return "yes" if ratio <= target else "**no**"


def table(results: list[Result], target: float) -> str:
  lines = [
    f"| optimizer | N | twin ms | ours ms | ours/twin | ≤ {target:g}? | state twin B "
    "| state ours B | fusions twin | fusions ours |",
    "|---|---:|---:|---:|---:|:---:|---:|---:|---:|---:|",
  ]
  for r in results:
    lines.append(
      f"| {r.name} | {format_n(r.n)} | {r.twin_ms:.3f} | {r.ours_ms:.3f} | {r.ratio:.3f} | "
      f"{meets(r.ratio, target)} | {r.twin_state_bytes:,} | {r.ours_state_bytes:,} | "
      f"{r.twin_fusions} | {r.ours_fusions} |"
    )
  return "\n".join(lines)


def compile_table(rows: list[tuple[str, int, CompileTimes, CompileTimes]], target: float) -> str:
  """Rows of (optimizer, N, twin's times, ours)."""
  lines = [
    f"| optimizer | N | twin ms | ours ms | ours/twin | ≤ {target:g}? | trace+lower twin ms "
    "| trace+lower ours ms | XLA twin ms | XLA ours ms |",
    "|---|---:|---:|---:|---:|:---:|---:|---:|---:|---:|",
  ]
  for name, n, twin, ours in rows:
    ratio = ours.total_s / twin.total_s
    lines.append(
      f"| {name} | {format_n(n)} | {1e3 * twin.total_s:.0f} | {1e3 * ours.total_s:.0f} | "
      f"{ratio:.2f} | {meets(ratio, target)} | {1e3 * twin.lower_s:.0f} | "
      f"{1e3 * ours.lower_s:.0f} | {1e3 * twin.xla_s:.0f} | {1e3 * ours.xla_s:.0f} |"
    )
  return "\n".join(lines)


def parse_sizes(text: str) -> list[int]:
  try:
    sizes = [int(float(s)) for s in text.split(",") if s.strip()]
  except ValueError:
    raise argparse.ArgumentTypeError(f"--sizes takes numbers like 1e6,16e6, got {text!r}") from None
  if not sizes or min(sizes) <= 0:
    raise argparse.ArgumentTypeError(f"--sizes must be positive, got {text!r}")
  return sizes


def parse_optimizers(text: str) -> list[str]:
  names = [s.strip() for s in text.split(",") if s.strip()]
  unknown = [s for s in names if s not in ROWS]
  if unknown or not names:
    raise argparse.ArgumentTypeError(f"unknown optimizer(s) {unknown}; choose from {list(ROWS)}")
  return names


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(
    description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument(
    "--sizes",
    type=parse_sizes,
    default=[1_000_000, 16_000_000],
    help="comma-separated parameter counts N (default: 1e6,16e6)",
  )
  parser.add_argument(
    "--repeats",
    type=int,
    default=None,
    help="timed steps per optimizer (default: 400 for N ≤ 4M, else 150)",
  )
  parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (default: 10)")
  parser.add_argument(
    "--compile-repeats",
    type=int,
    default=7,
    help="compilations timed per optimizer, median reported (default: 7)",
  )
  parser.add_argument(
    "--optimizers",
    type=parse_optimizers,
    default=list(ROWS),
    help=f"comma-separated subset of {','.join(ROWS)} (default: all)",
  )
  parser.add_argument(
    "--target", type=float, default=TARGET, help=f"ratio to meet (default: {TARGET})"
  )
  parser.add_argument(
    "--hlo",
    metavar="DIR",
    default=None,
    help="also write each compiled step's optimized HLO to DIR/<optimizer>_<N>_<twin|ours>.txt",
  )
  args = parser.parse_args(argv)

  print(header())
  print()
  # A throwaway compile, so that one-time backend start-up is not charged to the first row.
  jax.jit(lambda x: x + 1).lower(jnp.zeros(8)).compile()

  results = []
  train_step_compiles = []
  key = jax.random.key(0)
  for n in args.sizes:
    k_params, k_grads = jax.random.split(jax.random.fold_in(key, n))
    params = make_params(n, k_params)
    grads = jax.tree.map(
      lambda p, k: jax.random.normal(k, p.shape, p.dtype),
      params,
      jax.tree.unflatten(
        jax.tree.structure(params), jax.random.split(k_grads, len(jax.tree.leaves(params)))
      ),
    )
    repeats = args.repeats or (400 if n <= 4_000_000 else 150)
    for name in args.optimizers:
      start = time.perf_counter()
      result = benchmark(
        name, ROWS[name], params, grads, repeats, args.warmup, args.compile_repeats
      )
      results.append(result)
      print(
        f"# {name} N={format_n(result.n)}: {result.twin_ms:.3f} ms vs {result.ours_ms:.3f} ms "
        f"(×{result.ratio:.3f}), {time.perf_counter() - start:.1f} s",
        file=sys.stderr,
        flush=True,
      )
      if args.hlo:
        dump_hlo(args.hlo, name, result.n, ROWS[name], params, grads)
    if n == args.sizes[0]:  # compile time hardly depends on N: one size is enough
      batch = jax.random.normal(k_grads, (8, params["block_0"]["norm_scale"].shape[0]))
      for name in args.optimizers:
        times = compile_times(
          ROWS[name], params, batch, args.compile_repeats, whole_train_step=True
        )
        train_step_compiles.append((name, result.n, *times))
    del params, grads

  print(table(results, args.target))
  print()
  print("Compile time of the optimizer step (median of fresh compilations):")
  print()
  steps = [(r.name, r.n, r.twin_compile, r.ours_compile) for r in results]
  print(compile_table(steps, COMPILE_TARGET))
  print()
  print(
    "Compile time of a whole training step (gradient of a residual MLP over the same params "
    "on a batch of 8, then the update):"
  )
  print()
  print(compile_table(train_step_compiles, COMPILE_TARGET))
  print()
  print(f"load average at end: {load_average()}")
  print()
  print(f"twin / ours (lr = {LEARNING_RATE:g}, l1 = {L1:g}):")
  print()
  for name in args.optimizers:
    row = ROWS[name]
    print(f"- {name}: `{row.twin_text}` / `{row.ours_text}`")


def dump_hlo(directory: str, name: str, n: int, row: Row, params: Any, grads: Any) -> None:
  os.makedirs(directory, exist_ok=True)
  for which, make in (("twin", row.twin), ("ours", row.ours)):
    c = compile_step(make(), params, grads)
    path = os.path.join(directory, f"{name}_{format_n(n)}_{which}.txt")
    with open(path, "w") as f:
      f.write(c.hlo)


if __name__ == "__main__":
  main()
