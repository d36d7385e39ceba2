"""Savings from sparsity on the digits MLP: compaction after group L1, and BCOO export.

Part 1, compaction. The MLP 64-256-10 of :mod:`optax_l1.examples.digits` is trained with its
``"group"`` method, ``optax_l1.adam(1e-3, group_l1=λ, mask=...)``, the mask selecting
``linear1.kernel`` only: its columns (the default group axis, the last) are the hidden units'
incoming weights, so a unit whose column reaches exactly zero outputs the constant
``relu(bias)``. :func:`optax_l1.compact_mlp` folds those constants into ``linear2``'s bias and
removes the units. Per λ the table gives the hidden units removed, the test accuracy (before and
after compaction), parameters and FLOPs per example before and after, and the inference time
of a batch of 1024 (jitted, median over ``--repeats`` calls, dense and compacted interleaved)
with the largest output difference on that batch and on the test images. The training is
:func:`optax_l1.examples.digits.train`'s (Adam 1e-3, batch 128, 3000 steps, seed 0, 30 % of
the images held out).

Part 2, export. The elementwise-L1 model (``digits.train("prox", l1=1e-3)``, i.e.
``optax_l1.adam(1e-3, l1=1e-3, mask=kernels)``, ~95 % zeros) is exported with
:func:`optax_l1.to_bcoo`, and ``x @ kernel`` (and the whole forward pass) on the BCOO kernels is
timed against the dense ones, interleaved, batch 1024.

Usage::

  .venv/bin/python benchmarks/compaction.py
  .venv/bin/python benchmarks/compaction.py --group-l1 1e-3,1e-2 --repeats 300 --output ''
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import optax
from _machine import cpu_model  # benchmarks/ is on sys.path when a script runs
from flax import nnx

import optax_l1
from optax_l1.examples import digits

BATCH = 1024
TARGET_REMOVED = 0.85  # of the hidden units…
AIM_REMOVED = 0.90
TARGET_ACCURACY = 0.968  # …at this test accuracy (dense: 98.15 %)
TARGET_SPEEDUP = 3.0  # compacted inference against dense
ATOL = 1e-5


Layers = list[tuple[Any, Any]]


def forward(layers: Layers, x: jax.Array) -> jax.Array:
  """The MLP as a function of its ``(kernel, bias)`` pairs (dense arrays or BCOO kernels)."""
  for k, (kernel, bias) in enumerate(layers):
    if k:
      x = jax.nn.relu(x)
    x = x @ kernel + bias
  return x


def arrays(linears: Sequence[nnx.Linear]) -> Layers:
  return [(layer.kernel[...], layer.bias[...]) for layer in linears]


def model_from(params: Any, hidden: int) -> digits.MLP:
  model = digits.MLP(hidden, rngs=nnx.Rngs(0))
  nnx.update(model, params)
  return model


Call = tuple[Callable[..., jax.Array], tuple[Any, ...]]


def interleaved_medians(calls: Sequence[Call], repeats: int, warmup: int = 20) -> list[float]:
  """Median seconds of each ``fn(*args)``, timed in turn (a, b, a, b, …): drift hits all alike."""
  for fn, fn_args in calls:
    for _ in range(warmup):
      jax.block_until_ready(fn(*fn_args))
  times: list[list[float]] = [[] for _ in calls]
  for _ in range(repeats):
    for (fn, fn_args), record in zip(calls, times, strict=True):
      start = time.perf_counter()
      jax.block_until_ready(fn(*fn_args))
      record.append(time.perf_counter() - start)
  return [statistics.median(record) for record in times]


def header(args: argparse.Namespace) -> str:
  now = datetime.datetime.now(datetime.timezone.utc).astimezone()
  try:
    load = f"{os.getloadavg()[0]:.2f}"
  except OSError:
    load = "unknown"
  return "\n".join(
    [
      f"- date: {now:%Y-%m-%d %H:%M %Z}",
      f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} "
      f"{platform.release()}, Python {platform.python_version()}; load average at start {load}",
      f"- jax {jax.__version__}, jaxlib {jaxlib.__version__}, optax {optax.__version__}, "
      f"flax {flax.__version__}, optax_l1 {optax_l1.__version__}; backend "
      f"{jax.default_backend()}",
      f"- training: `digits.train`, MLP 64-{args.hidden}-10, Adam lr 1e-3, batch 128, "
      f'{args.steps} steps, seed {args.seed}; group rows: `digits.train("group", l1=λ)` = '
      '`optax_l1.adam(1e-3, group_l1=λ, mask=linear1.kernel only)`; elementwise: `digits.train("prox", l1=1e-3)` '
      "= `optax_l1.adam(1e-3, l1=1e-3, mask=kernels)`; dense: `optax.adam(1e-3)`",
      f"- timing: batch {BATCH} of standard normal inputs, `jax.jit` of the same forward "
      f"function on each model's arrays, median of {args.repeats} calls after 20 warm-up "
      "calls, interleaved",
    ]
  )


def compaction_rows(args: argparse.Namespace, x: jax.Array) -> list[dict[str, Any]]:
  data = digits.load_digits_split(args.seed)
  x_test, y_test = jnp.asarray(data.x_test), np.asarray(data.y_test)
  runs = [("dense (no penalty)", "dense", 0.0)]
  runs += [(f"group λ={strength:g}", "group", strength) for strength in args.group_l1]
  runs += [("elementwise λ=1e-3", "prox", 1e-3)]
  run_forward = jax.jit(forward)
  rows = []
  for label, name, strength in runs:
    result = digits.train(name, l1=strength, steps=args.steps, hidden=args.hidden, seed=args.seed)
    model = model_from(result.params, args.hidden)
    small, report = optax_l1.compact_mlp([model.linear1, model.linear2], jax.nn.relu)
    dense_layers, small_layers = arrays([model.linear1, model.linear2]), arrays(small.layers[::2])
    difference = max(
      float(jnp.max(jnp.abs(run_forward(small_layers, inputs) - run_forward(dense_layers, inputs))))
      for inputs in (x, x_test)
    )
    small_accuracy = float(np.mean(np.argmax(run_forward(small_layers, x_test), -1) == y_test))
    dense_s, small_s = interleaved_medians(
      [(run_forward, (dense_layers, x)), (run_forward, (small_layers, x))], args.repeats
    )
    rows.append(
      {
        "label": label,
        "group": name == "group",
        "accuracy": result.test_accuracy,
        "compacted_accuracy": small_accuracy,
        "report": report,
        "difference": difference,
        "dense_ms": 1e3 * dense_s,
        "small_ms": 1e3 * small_s,
      }
    )
    print(f"  {label}: {report.units_after[0]} units left, {difference:.1e}", flush=True)
    if name == "prox":
      rows[-1]["params"] = result.params
  return rows


def compaction_table(rows: list[dict[str, Any]]) -> str:
  lines = [
    "| model | hidden units kept | removed % | test acc % | compacted acc % "
    "| params before → after | FLOPs/example before → after | dense ms | compacted ms "
    "| speed-up | max \\|Δ output\\| |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for row in rows:
    report = row["report"]
    lines.append(
      f"| {row['label']} | {report.units_after[0]}/{report.units_before[0]} "
      f"| {100 * report.units_removed_fraction:.1f} | {100 * row['accuracy']:.2f} "
      f"| {100 * row['compacted_accuracy']:.2f} "
      f"| {report.params_before:,} → {report.params_after:,} "
      f"| {report.flops_before:,} → {report.flops_after:,} "
      f"| {row['dense_ms']:.3f} | {row['small_ms']:.3f} "
      f"| {row['dense_ms'] / row['small_ms']:.2f}× | {row['difference']:.1e} |"
    )
  return "\n".join(lines)


def targets(rows: list[dict[str, Any]]) -> str:
  accurate = [row for row in rows if row["group"] and row["accuracy"] >= TARGET_ACCURACY]
  best = max(accurate, key=lambda row: row["report"].units_removed_fraction, default=None)
  goal = (
    f"≥ {100 * TARGET_REMOVED:.0f} % of hidden units removed at ≥ "
    f"{100 * TARGET_ACCURACY:.1f} % test accuracy (aim ≥ {100 * AIM_REMOVED:.0f} %)"
  )
  if best is None:
    return f"- {goal}: **not met**, no λ kept the accuracy"
  removed = best["report"].units_removed_fraction
  verdict = (
    "met, and the aim too"
    if removed >= AIM_REMOVED
    else "met"
    if removed >= TARGET_REMOVED
    else "**not met**"
  )
  lines = [
    f"- {goal}: {verdict}; best {best['label']}: {100 * removed:.1f} % removed at "
    f"{100 * best['accuracy']:.2f} %"
  ]
  for row in accurate:
    speedup = row["dense_ms"] / row["small_ms"]
    met = "met" if speedup >= TARGET_SPEEDUP and row["difference"] <= ATOL else "**not met**"
    lines.append(
      f"  - {row['label']}: compacted inference ≥ {TARGET_SPEEDUP:g}× faster, outputs equal "
      f"within {ATOL:g}: {met} ({speedup:.2f}×, max difference {row['difference']:.1e})"
    )
  return "\n".join(lines)


def export_table(params: Any, x: jax.Array, repeats: int) -> str:
  dense = [(params[name]["kernel"], params[name]["bias"]) for name in ("linear1", "linear2")]
  exported = optax_l1.to_bcoo(params)
  sparse_layers = [
    (exported[name]["kernel"], exported[name]["bias"]) for name in ("linear1", "linear2")
  ]
  matmul, run_forward = jax.jit(lambda x, w: x @ w), jax.jit(forward)
  cases = [
    (
      f"x @ linear1.kernel {tuple(dense[0][0].shape)}",
      (matmul, (x, dense[0][0])),
      (matmul, (x, sparse_layers[0][0])),
      [exported["linear1"]["kernel"]],
    ),
    (
      "forward pass (both kernels)",
      (run_forward, (dense, x)),
      (run_forward, (sparse_layers, x)),
      [exported["linear1"]["kernel"], exported["linear2"]["kernel"]],
    ),
  ]
  lines = [
    "| product | kernel non-zeros | zeros % | dense ms | BCOO ms | BCOO/dense | max \\|Δ\\| |",
    "|---|---:|---:|---:|---:|---:|---:|",
  ]
  for label, dense_call, sparse_call, kernels in cases:
    nnz = sum(kernel.nse for kernel in kernels)
    size = sum(int(np.prod(kernel.shape)) for kernel in kernels)
    difference = float(
      jnp.max(jnp.abs(sparse_call[0](*sparse_call[1]) - dense_call[0](*dense_call[1])))
    )
    dense_s, sparse_s = interleaved_medians([dense_call, sparse_call], repeats)
    lines.append(
      f"| {label} | {nnz:,} / {size:,} | {100 * (1 - nnz / size):.1f} | {1e3 * dense_s:.3f} "
      f"| {1e3 * sparse_s:.3f} | {sparse_s / dense_s:.2f} | {difference:.1e} |"
    )
  return "\n".join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--group-l1", default="3e-4,1e-3,3e-3,1e-2,3e-2", help="comma-separated λ")
  parser.add_argument("--steps", type=int, default=3000)
  parser.add_argument("--hidden", type=int, default=256)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--repeats", type=int, default=1000)
  parser.add_argument("--output", default="", help="also write the tables to this file")
  args = parser.parse_args()
  args.group_l1 = [float(value) for value in args.group_l1.split(",")]

  head = header(args)
  print(head, flush=True)
  x = jax.random.normal(jax.random.key(1), (BATCH, 64))
  rows = compaction_rows(args, x)
  compaction = compaction_table(rows)
  verdicts = targets(rows)
  prox = next(row for row in rows if row["label"].startswith("elementwise"))
  export = export_table(prox["params"], x, args.repeats)
  try:
    head += f"\n- load average at the end: {os.getloadavg()[0]:.2f} (timings are noisy above ~1)"
  except OSError:
    pass
  text = "\n\n".join(
    [
      "## Compaction and export (issue #5)",
      head,
      "### Compaction after group L1 on the hidden units",
      compaction,
      verdicts,
      "### BCOO export of the elementwise-L1 model",
      export,
    ]
  )
  print()
  print(text)
  if args.output:
    with open(args.output, "w") as f:
      f.write(text + "\n")


if __name__ == "__main__":
  main()
