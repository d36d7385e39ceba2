"""How cheap can an exact group prox after Adam be under XLA on a CPU? (#14)

``optax_l1.adam(group_l1=…)`` costs 2–3 Adam steps on a CPU at 16M parameters (see
``group_layouts_overhead.py``). This script writes Adam followed by the group prox by hand in
several ways, each a ``GradientTransformation`` on the same conv kernels (NNX ``(3, c, c)``,
one group per input channel), and times them side by side with ``optax.adam`` and the
library:

- ``Adam alone``: the hand-written step without a prox (checks the hand code is as fast as
  optax's).
- ``+ one reduction``: the group norms of the new point and a block soft threshold with one
  step size for all groups. Not the library's prox (no mean metric, no overflow fallback): a
  floor for any prox that needs the norms of the point it shrinks.
- ``+ mean metric``: the library's prox (each group's step size from its mean metric),
  plainly written: two reductions.
- ``+ mean metric, one fused reduction, point recomputed``: both reductions in one variadic
  ``lax.reduce``, and the point recomputed from the moments after an
  ``optimization_barrier`` instead of kept in memory.
- ``+ mean metric, chunked loop``: a ``fori_loop`` over blocks of 64 groups, so that each
  block's moments, point, norms and shrink could stay in cache.

The last three compute what ``optax_l1.adam`` computes (``tests/benchmarks_test.py`` checks
them against it). One step is ``tx.update`` + ``optax.apply_updates``, jitted, params and state
donated, fixed random gradients; all variants interleaved, the median over ``--steps`` steps
after 5 warm-up steps, per repeat.

Usage::

  flock /tmp/optax_l1_timing.lock .venv/bin/python benchmarks/group_prox_floor.py
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import sys
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from group_layouts_overhead import interleaved_medians, print_report

import optax_l1

B1, B2, EPS = 0.9, 0.999, 1e-8
GROUP_AXIS = 1  # an NNX conv kernel (width, in, out), grouped by input channel
_AXES = (0, 2)  # the axes each group spans
CHUNK = 64


class _Step:
  """One leaf's Adam step and the pieces of its group prox, at learning rate ``lr``."""

  def __init__(self, lr: float, group_l1: float, count: jax.Array):
    self.lr, self.group_l1 = lr, group_l1
    t = count.astype(jnp.float32)
    self.c1, self.c2 = 1 - B1**t, 1 - B2**t

  def moments(self, g, mu, nu):
    return B1 * mu + (1 - B1) * g, B2 * nu + (1 - B2) * g * g

  def point(self, p, mu, nu):
    """The point Adam steps to and its metric (floored where nu is 0, as the library's)."""
    metric = jnp.where(nu == 0, math.sqrt(EPS), jnp.sqrt(nu / self.c2) + EPS)
    return p - self.lr * (mu / self.c1) / metric, metric

  def shrink(self, v, squares, mean_metric):
    """Block soft threshold of ``v`` given its groups' sums of squares and mean metrics."""
    size = v.size // v.shape[GROUP_AXIS]
    threshold = self.lr * self.group_l1 * math.sqrt(size) / mean_metric
    norm = jnp.sqrt(squares)
    return jnp.where(norm <= threshold, 0.0, v * (1 - threshold / norm))


def adam_alone(step: _Step, g, mu, nu, p):
  mu, nu = step.moments(g, mu, nu)
  return mu, nu, step.point(p, mu, nu)[0]


def one_reduction(step: _Step, g, mu, nu, p):
  mu, nu = step.moments(g, mu, nu)
  v, _ = step.point(p, mu, nu)
  return mu, nu, step.shrink(v, jnp.sum(v * v, _AXES, keepdims=True), 1.0)


def mean_metric(step: _Step, g, mu, nu, p):
  mu, nu = step.moments(g, mu, nu)
  v, metric = step.point(p, mu, nu)
  squares = jnp.sum(v * v, _AXES, keepdims=True)
  return mu, nu, step.shrink(v, squares, jnp.mean(metric, _AXES, keepdims=True))


def fused_reduction(step: _Step, g, mu, nu, p):
  mu, nu = step.moments(g, mu, nu)
  v, metric = step.point(p, mu, nu)
  zero = np.float32(0)
  squares, metrics = jax.lax.reduce(
    (v * v, metric), (zero, zero), lambda a, b: (a[0] + b[0], a[1] + b[1]), _AXES
  )
  size = v.size // v.shape[GROUP_AXIS]
  squares, metrics = (jnp.expand_dims(x, _AXES) for x in (squares, metrics / size))
  # The barrier keeps XLA from reusing `v`, so it is not written to memory and read back.
  p, mu_again, nu_again = jax.lax.optimization_barrier((p, mu, nu))
  return mu, nu, step.shrink(step.point(p, mu_again, nu_again)[0], squares, metrics)


def chunked_loop(step: _Step, g, mu, nu, p):
  def body(i, carry):
    mu_out, nu_out, new_out = carry
    block = lambda x: jax.lax.dynamic_slice_in_dim(x, i * CHUNK, CHUNK, GROUP_AXIS)  # noqa: E731
    m, n, new = mean_metric(step, block(g), block(mu), block(nu), block(p))
    put = lambda x, y: jax.lax.dynamic_update_slice_in_dim(x, y, i * CHUNK, GROUP_AXIS)  # noqa: E731
    return put(mu_out, m), put(nu_out, n), put(new_out, new)

  blocks, rest = divmod(p.shape[GROUP_AXIS], CHUNK)
  if rest:
    raise ValueError(f"--channels must be a multiple of {CHUNK} (blocks of the chunked loop)")
  return jax.lax.fori_loop(0, blocks, body, (mu, nu, jnp.zeros_like(p)))


VARIANTS: dict[str, Callable] = {
  "Adam alone (hand-written)": adam_alone,
  "+ one reduction (a floor, not the library's prox)": one_reduction,
  "+ mean metric": mean_metric,
  "+ mean metric, one fused reduction, point recomputed": fused_reduction,
  "+ mean metric, chunked loop": chunked_loop,
}


def by_hand(fn: Callable, lr: float, group_l1: float) -> optax.GradientTransformation:
  """Adam with ``fn`` as each leaf's step: ``fn(step, g, mu, nu, p) -> (mu, nu, new p)``."""

  def init(params):
    zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731
    return jnp.zeros([], jnp.int32), zeros(), zeros()

  def update(grads, state, params):
    count, mu, nu = state
    count = count + 1
    step = _Step(lr, group_l1, count)
    out = jax.tree.map(functools.partial(fn, step), grads, mu, nu, params)
    pick = lambda i: jax.tree.map(lambda _, o: o[i], params, out)  # noqa: E731
    updates = jax.tree.map(lambda new, p: new - p, pick(2), params)
    return updates, (count, pick(0), pick(1))

  return optax.GradientTransformation(init, update)


def make_params(channels: int, leaves: int) -> dict[str, jax.Array]:
  keys = jax.random.split(jax.random.key(0), leaves)
  return {
    f"conv{i}": 0.02 * jax.random.normal(k, (3, channels, channels)) for i, k in enumerate(keys)
  }


def optimizers(lr: float, group_l1: float) -> dict[str, optax.GradientTransformation]:
  txs = {
    "optax.adam": optax.adam(lr, b1=B1, b2=B2, eps=EPS),
    "optax_l1.adam(group_l1, group_axis=1)": optax_l1.adam(
      lr, b1=B1, b2=B2, eps=EPS, group_l1=group_l1, group_axis=GROUP_AXIS
    ),
  }
  return txs | {name: by_hand(fn, lr, group_l1) for name, fn in VARIANTS.items()}


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--channels", type=int, default=768)
  parser.add_argument("--leaves", type=int, default=9)
  parser.add_argument("--steps", type=int, default=30)
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args(argv)
  params = make_params(args.channels, args.leaves)
  n = sum(x.size for x in jax.tree.leaves(params))
  grads = jax.tree.map(lambda x: 1e-3 * jax.random.normal(jax.random.key(1), x.shape), params)
  txs = optimizers(1e-3, 1e-4)
  medians = interleaved_medians(
    txs, params, grads, warmup=5, steps=args.steps, repeats=args.repeats
  )
  print_report(
    "### How cheap can the group prox be? (#14)",
    f"{args.leaves} kernels (3, {args.channels}, {args.channels}), {n / 1e6:.1f}M floats; per "
    f"repeat the median of {args.steps} interleaved steps after 5; {args.repeats} repeats "
    "(mean ± sample std)",
    medians,
  )


if __name__ == "__main__":
  main()
