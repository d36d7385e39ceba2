"""What each way of writing the soft threshold costs inside one fused loop, on one leaf.

Prints a markdown table: the median time of a jitted, donated update of one float32 leaf of N
entries, written in several ways, and its ratio to the plain step it extends. Two groups:

- SGD-like, threshold a number: ``p - lr·g`` (the twin), then the same with pieces of the
  prox added one at a time, up to the whole ``v − clip(v, −t, t)`` with the ``new − p`` and
  ``+ p`` that keep removed weights at exactly 0.0.
- RMSProp-like, threshold an array ``t = lr·l1·rsqrt(ν + ε)``: ``p − lr·g·rsqrt(ν + ε)`` (the
  twin), then the soft threshold written with ``jnp.clip``, and ``optax_l1.soft_threshold``,
  which takes two compare-and-selects for an array threshold.

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

import optax_l1

LR, L1, EPS = 1e-3, 1e-4, 1e-8
T = LR * L1


def _exact_zero_update(p: jax.Array, new: jax.Array) -> jax.Array:
  """``p + (new − p)``: the update the prox returns, then ``optax.apply_updates``."""
  return p + (new - p)


def _sgd_point(p: jax.Array, g: jax.Array) -> jax.Array:
  return p - LR * g


def _rmsprop_point(p: jax.Array, g: jax.Array, nu: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The point RMSProp steps to, and the per-coordinate scale 1/d its threshold takes."""
  scale = jax.lax.rsqrt(nu + EPS)
  return p - LR * g * scale, scale


def _sgd_seven_multiplies(p, g, nu):
  v = _sgd_point(p, g)
  for factor in (1.000001, 1.000002, 1.000003, 1.000004, 1.000005, 1.000006, 1.000007):
    v = v * factor
  return _exact_zero_update(p, v)


def _sgd_soft_threshold(p, g, nu):
  v = _sgd_point(p, g)
  return _exact_zero_update(p, v - jnp.clip(v, -T, T))


def _rmsprop_jnp_clip(p, g, nu):
  v, scale = _rmsprop_point(p, g, nu)
  return _exact_zero_update(p, v - jnp.clip(v, -T * scale, T * scale))


def _rmsprop_optax_l1(p, g, nu):
  v, scale = _rmsprop_point(p, g, nu)
  return _exact_zero_update(p, optax_l1.soft_threshold(v, T * scale))


# name -> (group, step(p, g, nu) -> new p)
FORMS: dict[str, tuple[str, Callable[..., jax.Array]]] = {
  "sgd step (twin)": ("sgd", lambda p, g, nu: _sgd_point(p, g)),
  "+ new − p, + p": ("sgd", lambda p, g, nu: _exact_zero_update(p, _sgd_point(p, g))),
  "+ 7 multiplies": ("sgd", _sgd_seven_multiplies),
  "+ one max that never fires": (
    "sgd",
    lambda p, g, nu: _exact_zero_update(p, jnp.maximum(_sgd_point(p, g), -1e30)),
  ),
  "+ soft threshold (clip, number t)": ("sgd", _sgd_soft_threshold),
  "rmsprop step (twin)": ("rms", lambda p, g, nu: _rmsprop_point(p, g, nu)[0]),
  "+ soft threshold (jnp.clip, array t)": ("rms", _rmsprop_jnp_clip),
  "+ soft threshold (selects, array t)": ("rms", _rmsprop_optax_l1),
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
