"""Step time of group L1 on conv channels and attention heads against ``optax.adam`` (#14).

The params: NNX-style 1-D conv kernels ``(3, c, c)`` with groups on their input channels
(``group_axis=-2``: the previous layer's channels by their outgoing weights), and attention
layers in both layouts: NNX's ``out.kernel`` ``(heads, head_dim, d)`` with one group per head
(axis 0) and Equinox's ``output_proj.weight`` ``(d, heads·head_dim)`` with
``GroupAxis(1, head_dim)``; q/k/v kernels unpenalised. One optimizer, ``group_axis`` a function
of the params; for comparison the same leaves with the last axis as every group axis, and with
elementwise L1. One step is ``tx.update`` + ``optax.apply_updates``, jitted, params and state
donated, fixed random gradients; ours and the twin interleaved, the median over ``--steps``
steps after 10 warm-up steps, per repeat.

Usage::

  flock /tmp/optax_l1_timing.lock nice -n 19 .venv/bin/python benchmarks/group_layouts_overhead.py
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _machine import cpu_model

import optax_l1


def make_params(channels: int, d: int, heads: int, key: jax.Array) -> dict[str, Any]:
  """Four convs and two attention layers of each layout (about 16M floats by default)."""
  head_dim = d // heads
  keys = iter(jax.random.split(key, 32))
  normal = lambda shape: 0.02 * jax.random.normal(next(keys), shape)  # noqa: E731
  params: dict[str, Any] = {}
  for i in range(4):
    params[f"conv{i}"] = {"kernel": normal((3, channels, channels)), "bias": jnp.zeros(channels)}
  for i in range(2):
    params[f"nnx_attention{i}"] = {
      **{name: {"kernel": normal((d, heads, head_dim))} for name in ("query", "key", "value")},
      "out": {"kernel": normal((heads, head_dim, d))},
    }
    params[f"eqx_attention{i}"] = {
      **{name: {"weight": normal((d, d))} for name in ("query_proj", "key_proj", "value_proj")},
      "output_proj": {"weight": normal((d, d))},
    }
  return params


def layouts(head_dim: int):
  """``group_axis`` and ``mask`` as functions of the params."""

  def axis(path, _):
    name = jax.tree_util.keystr(path)
    if name.startswith("['conv"):
      return -2
    if "output_proj" in name:
      return optax_l1.GroupAxis(1, head_dim)
    return 0  # NNX out.kernel: heads first (other leaves are not penalised)

  def penalised(path, _):
    name = jax.tree_util.keystr(path)
    return (
      (name.startswith("['conv") and "kernel" in name) or "'out'" in name or "output_proj" in name
    )

  return (
    lambda params: jax.tree_util.tree_map_with_path(axis, params),
    lambda params: jax.tree_util.tree_map_with_path(penalised, params),
  )


def compile_step(tx: optax.GradientTransformation, params: Any, grads: Any):
  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  params = jax.tree.map(jnp.copy, params)
  state = tx.init(params)
  return jax.jit(step, donate_argnums=(0, 1)).lower(params, state, grads).compile(), params, state


def interleaved_medians(
  txs: dict[str, optax.GradientTransformation],
  params: Any,
  grads: Any,
  *,
  warmup: int,
  steps: int,
  repeats: int,
) -> dict[str, list[float]]:
  """Per optimizer, per repeat, the median seconds of ``steps`` steps after ``warmup``; the
  optimizers take turns step by step, so that drift in the machine's load hits them alike."""
  compiled = {name: compile_step(tx, params, grads) for name, tx in txs.items()}
  medians: dict[str, list[float]] = {name: [] for name in txs}
  for _ in range(repeats):
    times: dict[str, list[float]] = {name: [] for name in txs}
    for i in range(warmup + steps):
      for name, (step, p, s) in compiled.items():
        start = time.perf_counter()
        p, s = jax.block_until_ready(step(p, s, grads))
        if i >= warmup:
          times[name].append(time.perf_counter() - start)
        compiled[name] = (step, p, s)
    for name in txs:
      medians[name].append(statistics.median(times[name]))
  return medians


def print_report(title: str, params: str, medians: dict[str, list[float]]) -> None:
  """Prints ``title``, the machine, date, command and ``params`` lines, and a table of each
  optimizer's ms per step and its ratio to the first one's (the twin), repeat by repeat."""
  print(title)
  print()
  print(
    f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs (shared), {platform.system()} "
    f"{platform.release()}; backend {jax.default_backend()}, jax {jax.__version__}; load "
    f"average {os.getloadavg()[0]:.2f}"
  )
  print(f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
  print(f"- command: `benchmarks/{os.path.basename(sys.argv[0])} {' '.join(sys.argv[1:])}`")
  print(f"- params: {params}")
  print()
  first = next(iter(medians))
  print(f"| optimizer | ms per step | / {first} |")
  print("|---|---:|---:|")
  twin = np.asarray(medians[first])
  for i, (name, times) in enumerate(medians.items()):
    ours = np.asarray(times)
    ratio = ours / twin
    ratio_cell = "" if i == 0 else f"{ratio.mean():.3f} ± {ratio.std(ddof=1):.3f}"
    print(f"| {name} | {1e3 * ours.mean():.2f} ± {1e3 * ours.std(ddof=1):.2f} | {ratio_cell} |")


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--channels", type=int, default=768)
  parser.add_argument("--d", type=int, default=768)
  parser.add_argument("--heads", type=int, default=12)
  parser.add_argument("--steps", type=int, default=60)
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args(argv)
  params = make_params(args.channels, args.d, args.heads, jax.random.key(0))
  n = sum(x.size for x in jax.tree.leaves(params))
  grads = jax.tree.map(lambda x: 1e-3 * jax.random.normal(jax.random.key(1), x.shape), params)
  group_axis, mask = layouts(args.d // args.heads)
  txs = {
    "optax.adam": optax.adam(1e-3),
    "optax_l1.adam(group_l1, per-leaf groups)": optax_l1.adam(
      1e-3, group_l1=1e-4, group_axis=group_axis, mask=mask
    ),
    # The same leaves with one group axis for all (the last), and with elementwise L1: what the
    # per-leaf layouts cost, and what the group prox costs.
    "optax_l1.adam(group_l1, last axis everywhere)": optax_l1.adam(1e-3, group_l1=1e-4, mask=mask),
    "optax_l1.adam(l1)": optax_l1.adam(1e-3, l1=1e-4, mask=mask),
  }
  medians = interleaved_medians(
    txs, params, grads, warmup=10, steps=args.steps, repeats=args.repeats
  )
  print_report(
    "## Step overhead of group L1 on conv channels and attention heads (#14)",
    f"{n / 1e6:.1f}M floats; per repeat the median of {args.steps} interleaved steps after 10; "
    f"{args.repeats} repeats (mean ± sample std)",
    medians,
  )


if __name__ == "__main__":
  main()
