"""Sparsity against accuracy on the digits MLP, over λ, for the three ways to add L1 to Adam.

Prints a markdown table: for each L1 strength λ and method (``penalty``: λ·Σ|w| in the loss,
as ``keras.regularizers.l1``; ``naive``: ``chain(optax.adam, optax_l1.l1_prox)``; ``prox``:
``optax_l1.adam``), and once for the dense baseline, the test accuracy, the percentage of kernel
entries that are exactly zero, the percentage below 1e-3 in magnitude (zeros included), the
kernel entries left, and the seconds spent training and compiling. The setup is
:func:`optax_l1.examples.digits.train`'s: MLP 64-256-10, Adam 1e-3, batch 128, 3000 steps, L1
on the kernels only, 30 % of the images held out.

Usage::

  .venv/bin/python benchmarks/sparsity_accuracy.py
  .venv/bin/python benchmarks/sparsity_accuracy.py --l1 1e-4,1e-3 --steps 1000 --seed 1
"""

from __future__ import annotations

import argparse
import datetime
import platform

import flax
import jax
import optax

from optax_l1.examples import digits

METHODS = ("penalty", "naive", "prox")


def _row(result: digits.TrainResult) -> str:
  l1 = "—" if result.method == "dense" else f"{result.l1:g}"
  return (
    f"| {result.method} | {l1} | {100 * result.test_accuracy:.2f} "
    f"| {100 * result.exact_zero_fraction:.2f} | {100 * result.small_fraction:.2f} "
    f"| {result.nonzero_params:,} | {result.seconds:.2f} | {result.compile_seconds:.2f} |"
  )


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--l1", default="1e-4,3e-4,1e-3,3e-3", help="comma-separated λ values")
  parser.add_argument("--steps", type=int, default=3000)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  strengths = [float(value) for value in args.l1.split(",")]

  print(
    f"digits MLP 64-256-10, Adam lr 1e-3, batch 128, {args.steps} steps, seed {args.seed}; "
    f"jax {jax.__version__}, optax {optax.__version__}, flax {flax.__version__}, "
    f"{jax.default_backend()}, {platform.machine()}, "
    f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
  )
  print()
  print(
    "| method | λ | test acc % | exact zeros % | \\|w\\| < 1e-3 % | nonzero kernel entries "
    "| train s | compile s |"
  )
  print("|---|---|---:|---:|---:|---:|---:|---:|")
  print(_row(digits.train("dense", steps=args.steps, seed=args.seed)), flush=True)
  for l1 in strengths:
    for method in METHODS:
      print(_row(digits.train(method, l1=l1, steps=args.steps, seed=args.seed)), flush=True)


if __name__ == "__main__":
  main()
