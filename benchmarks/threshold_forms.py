"""What each way of writing the soft threshold costs inside one fused loop, on one leaf.

Prints a markdown table: the median time of a jitted, donated update of one float32 leaf of N
entries, written in several ways, and its ratio to the plain step it extends. Two groups:

- SGD-like, threshold a number: ``p - lr·g`` (the twin), then the same with pieces of the
  prox added one at a time, up to the whole ``v − clip(v, −t, t)`` with the ``new − p`` and
  ``+ p`` that keep removed weights at exactly 0.0.
- RMSProp-like, threshold an array ``t = lr·l1·rsqrt(ν + ε)``: ``p − lr·g·rsqrt(ν + ε)`` (the
  twin), then the soft threshold written with ``jnp.clip`` and with two compare-and-selects
  (what ``optax_l1`` does for array thresholds).

Timings are interleaved (every form once per round) so drift hits all alike. This is the
evidence behind the "Why" paragraph of ``benchmarks/RESULTS.md``.

Usage::

  .venv/bin/python benchmarks/threshold_forms.py
  .venv/bin/python benchmarks/threshold_forms.py --size 1e6 --repeats 1000
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
from _machine import cpu_model  # benchmarks/ is on sys.path when a script runs

LR, L1, EPS = 1e-3, 1e-4, 1e-8
T = LR * L1


def _exact_zero_update(p: jax.Array, new: jax.Array) -> jax.Array:
  """``p + (new − p)``: the update the prox returns, then ``optax.apply_updates``."""
  return p + (new - p)


def _rms_scale(nu: jax.Array) -> jax.Array:
  return jax.lax.rsqrt(nu + EPS)


def _select_clip(v: jax.Array, t: jax.Array) -> jax.Array:
  at_least = jax.lax.select(v >= -t, v, -t)
  return jax.lax.select(at_least <= t, at_least, t)


# name -> (group, step(p, g, nu) -> new p)
FORMS: dict[str, tuple[str, Callable[..., jax.Array]]] = {
  "sgd step (twin)": ("sgd", lambda p, g, nu: p - LR * g),
  "+ new − p, + p": ("sgd", lambda p, g, nu: _exact_zero_update(p, p - LR * g)),
  "+ 8 multiplies": (
    "sgd",
    lambda p, g, nu: _exact_zero_update(
      p, (p - LR * g) * 1.000001 * 1.000002 * 1.000003 * 1.000004 * 1.000005 * 1.000006 * 1.000007
    ),
  ),
  "+ one max that never fires": (
    "sgd",
    lambda p, g, nu: _exact_zero_update(p, jnp.maximum(p - LR * g, -1e30)),
  ),
  "+ soft threshold (clip, number t)": (
    "sgd",
    lambda p, g, nu: _exact_zero_update(p, (v := p - LR * g) - jnp.clip(v, -T, T)),
  ),
  "rmsprop step (twin)": ("rms", lambda p, g, nu: p - LR * g * _rms_scale(nu)),
  "+ soft threshold (jnp.clip, array t)": (
    "rms",
    lambda p, g, nu: _exact_zero_update(
      p,
      (v := p - LR * g * (s := _rms_scale(nu))) - jnp.clip(v, -T * s, T * s),
    ),
  ),
  "+ soft threshold (selects, array t)": (
    "rms",
    lambda p, g, nu: _exact_zero_update(
      p, (v := p - LR * g * (s := _rms_scale(nu))) - _select_clip(v, T * s)
    ),
  ),
}


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--size", type=float, default=16e6, help="entries in the leaf (16e6)")
  parser.add_argument("--repeats", type=int, default=100, help="timed rounds (default: 100)")
  args = parser.parse_args(argv)
  n = int(args.size)

  keys = jax.random.split(jax.random.key(0), 3)
  g = jax.random.normal(keys[0], (n,))
  nu = jax.random.uniform(keys[1], (n,))
  steps = {name: jax.jit(fn, donate_argnums=0) for name, (_, fn) in FORMS.items()}
  params = {name: 1e-3 * jax.random.normal(keys[2], (n,)) for name in FORMS}
  for name, step in steps.items():  # compile and warm up
    for _ in range(3):
      params[name] = step(params[name], g, nu)
    params[name].block_until_ready()

  times: dict[str, list[float]] = {name: [] for name in FORMS}
  for _ in range(args.repeats):
    for name, step in steps.items():
      start = time.perf_counter()
      params[name] = step(params[name], g, nu).block_until_ready()
      times[name].append(time.perf_counter() - start)

  print(f"- machine: {cpu_model()}; jax {jax.__version__}, backend {jax.default_backend()}")
  print(f"- one float32 leaf of {n:,} entries, median of {args.repeats} interleaved rounds")
  print()
  print("| form | ms | ratio to its twin |")
  print("|---|---:|---:|")
  twins = {"sgd": "sgd step (twin)", "rms": "rmsprop step (twin)"}
  for name, (group, _) in FORMS.items():
    ms = 1e3 * statistics.median(times[name])
    twin_ms = 1e3 * statistics.median(times[twins[group]])
    print(f"| {name} | {ms:.3f} | {ms / twin_ms:.3f} |")


if __name__ == "__main__":
  main()
