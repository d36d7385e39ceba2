"""Heads and MLP neurons removed from a small MNIST-1D transformer, compacted and timed (#14).

The model and the methods are :mod:`optax_l1.examples.transformer`'s (a conv-embedded
sequence of 40 tokens, one pre-LayerNorm block of 8 heads of 4 and an MLP of 128 GELU neurons,
mean pool, linear head; Adam with warm-up and cosine decay, peak 3e-3, batch 100, 1000 steps).
For each seed: ``dense``, and ``target`` with each ``--levels`` pair ``heads:neurons`` (the
fraction of heads and of MLP neurons removed per block), its model compacted with
``transformer.compact`` and its logits on the 1000 test signals compared with the original's.
With ``--time`` the forward passes at batch 1024 of the dense model and of each compacted one
(the first seed's) are timed, holding ``/tmp/optax_l1_timing.lock``.

  nice -n 19 .venv/bin/python benchmarks/transformer.py --seeds 0 1 2 \
    --levels 0.25:0.5 0.25:0.75 0.375:0.75 0.5:0.5 --time
"""

import argparse
import datetime
import fcntl
import os
import sys
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _machine import cpu_model

from optax_l1.examples import mnist1d_data, transformer

TIMING_LOCK = "/tmp/optax_l1_timing.lock"


def _mean_std(values: Sequence[float]) -> str:
  a = np.asarray(values, np.float64)
  return f"{a.mean():.2f} ± {a.std(ddof=1) if a.size > 1 else 0.0:.2f}"


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
  parser.add_argument("--levels", nargs="+", default=["0.375:0.75"])
  parser.add_argument("--steps", type=int, default=transformer.Config.steps)
  parser.add_argument("--time", action="store_true")
  args = parser.parse_args(argv)
  x_test = jnp.asarray(mnist1d_data.load()[2])
  print(f"{datetime.date.today()}, {cpu_model()}, {os.cpu_count()} CPUs (shared)", flush=True)
  print()
  print("| method | test accuracy % | heads removed % | neurons removed % | max logit error | s |")
  print("|---|---:|---:|---:|---:|---:|")
  timed = {}
  configs = {"dense": transformer.Config(steps=args.steps)}
  for level in args.levels:
    heads, neurons = map(float, level.split(":"))
    configs[f"target {level}"] = transformer.Config(
      steps=args.steps, head_sparsity=heads, neuron_sparsity=neurons
    )
  for label, config in configs.items():
    rows = []
    for seed in args.seeds:
      result = transformer.train("dense" if label == "dense" else "target", config, seed=seed)
      small, reports = transformer.compact(result.model)
      big = result.model(x_test)
      error = float(jnp.max(jnp.abs(small(x_test) - big)) / jnp.max(jnp.abs(big)))
      heads = 1 - sum(r.units_after[0] for r in reports[::2]) / (config.heads * config.blocks)
      neurons = 1 - sum(r.units_after[0] for r in reports[1::2]) / (config.hidden * config.blocks)
      rows.append((100 * result.test_accuracy, 100 * heads, 100 * neurons, error, result.seconds))
      if seed == args.seeds[0]:
        timed[label] = result.model if label == "dense" else small
    acc, heads, neurons, error, seconds = zip(*rows, strict=True)
    print(
      f"| {label} | {_mean_std(acc)} | {_mean_std(heads)} | {_mean_std(neurons)} "
      f"| {max(error):.1e} | {np.mean(seconds):.1f} |",
      flush=True,
    )
  print("\n(max logit error: relative to the largest logit; s: training seconds, mean)")
  if args.time:
    x = jnp.tile(x_test, (2, 1))[:1024]
    with open(TIMING_LOCK, "a") as lock:  # never two timing runs at once on this machine
      fcntl.flock(lock, fcntl.LOCK_EX)
      times = transformer.forward_seconds(timed, x, repeats=7)
      load = os.getloadavg()[0]
    base = np.asarray(times["dense"])
    print(
      f"\nForward pass at batch 1024 (jitted; per repeat the median of 10 calls, the models "
      f"interleaved; 7 repeats, mean ± std; seed {args.seeds[0]}; load average {load:.2f}):\n"
    )
    print("| model | ms | dense / this |")
    print("|---|---:|---:|")
    for label, t in times.items():
      t = np.asarray(t)
      ratio = base / t
      print(f"| {label} | {1e3 * t.mean():.2f} ± {1e3 * t.std(ddof=1):.2f} | {_mean_std(ratio)} |")


if __name__ == "__main__":
  main()
