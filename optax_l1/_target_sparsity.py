r"""Target sparsity: the penalty strength adapted, step by step, so that the exact-zero fraction
follows a schedule; then the zero set frozen and the survivors refitted without shrinkage.

Built and validated once (:class:`Target`), applied at each step of :func:`optax_l1.proximal`
by :func:`controlled_prox`. The strength in use lives in :class:`TargetSparsityState`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optax_l1 import _numerics, _penalties, _validation

PENALTIES = ("l0", "l1", "mcp")


@dataclasses.dataclass(frozen=True)
class PolynomialSparsity:
  r"""The sparsity ramp of gradual magnitude pruning; see :func:`polynomial_sparsity`.

  Calling it with a step count returns the target fraction of exact zeros at that step.
  """

  final: float
  begin_step: int
  end_step: int
  initial: float = 0.0
  power: float = 3.0

  def __call__(self, count: Any) -> jax.Array:
    span = self.end_step - self.begin_step
    progress = jnp.clip((jnp.asarray(count, jnp.float32) - self.begin_step) / span, 0.0, 1.0)
    return self.final + (self.initial - self.final) * (1.0 - progress) ** self.power


def polynomial_sparsity(
  final: float,
  *,
  begin_step: int,
  end_step: int,
  initial: float = 0.0,
  power: float = 3.0,
) -> PolynomialSparsity:
  r"""The sparsity schedule of gradual magnitude pruning (tfmot's ``PolynomialDecay``).

  .. math::

    s_t = s_f + (s_i - s_f)\left(1 - p_t\right)^{k}, \qquad
    p_t = \operatorname{clip}\!\left(\frac{t - t_0}{t_1 - t_0}, 0, 1\right),

  from ``initial`` :math:`s_i` at ``begin_step`` :math:`t_0` to ``final`` :math:`s_f` at
  ``end_step`` :math:`t_1` (cubic for ``power=3``: fast at first, slow near the end), then
  constant. Given as ``target_sparsity`` to an optimizer, it also says when the ramp ends: there
  the zero set is frozen (see :func:`optax_l1.proximal`).

  Args:
    final: the fraction of exact zeros at the end of the ramp, in [0, 1).
    begin_step: the step count at which the ramp starts (``initial`` before it).
    end_step: the step count at which it reaches ``final``; greater than ``begin_step``.
    initial: the fraction at ``begin_step``, in [0, ``final``].
    power: the exponent :math:`k > 0` of the ramp.

  Returns:
    A :class:`PolynomialSparsity`: a schedule (a callable of the step count).

  Raises:
    ValueError: for a fraction outside [0, 1), ``initial > final``, ``end_step <= begin_step``,
      a negative ``begin_step`` or a non-positive ``power``.

  Examples:
    >>> import optax_l1
    >>> ramp = optax_l1.polynomial_sparsity(0.9, begin_step=100, end_step=1100)
    >>> [round(float(ramp(t)), 4) for t in (0, 100, 600, 1100, 5000)]
    [0.0, 0.0, 0.7875, 0.9, 0.9]

  References:
    Zhu & Gupta, `To prune, or not to prune: exploring the efficacy of pruning for model
    compression <https://arxiv.org/abs/1710.01878>`_, 2017
  """
  _check_fraction(final, "final")
  _check_fraction(initial, "initial")
  if initial > final:
    raise ValueError(f"initial ({initial}) must be <= final ({final}): the ramp only rises.")
  for value, name in ((begin_step, "begin_step"), (end_step, "end_step")):
    if isinstance(value, jax.core.Tracer):
      raise TypeError(f"{name} must be an int >= 0, not a traced value: the ramp is static.")
    _validation.check_int(value, name, 0)
  if end_step <= begin_step:
    raise ValueError(
      f"end_step ({end_step}) must be greater than begin_step ({begin_step}): the ramp needs "
      "at least one step."
    )
  if not (isinstance(power, (int, float)) and math.isfinite(power) and power > 0):
    raise ValueError(f"power must be a finite number > 0, got {power!r}.")
  return PolynomialSparsity(float(final), int(begin_step), int(end_step), float(initial), power)


def _check_fraction(value: Any, name: str) -> None:
  if callable(value) or isinstance(value, jax.core.Tracer):
    return
  try:
    number = float(np.asarray(value, np.float64))
  except (TypeError, ValueError):
    raise TypeError(f"{name} must be a fraction in [0, 1) or a schedule, got {value!r}.") from None
  if not 0 <= number < 1:
    raise ValueError(
      f"{name} must be a fraction of exact zeros in [0, 1), got {value!r} (1 would remove "
      "every penalised weight)."
    )


class TargetSparsityState(NamedTuple):
  """The target-sparsity controller's state.

  Attributes:
    strength: the penalty strength in use (float32; 0 before the ramp starts): the ``l0``
      (or ``l1``, ``mcp``, ``group_l1``) that gives the target fraction of exact zeros.
    sample: the preconditioner's state on the coordinates ranked to find it (about one
      penalised coordinate in k, at most 65,536 of them, one flat array per moment), taken
      from the new state at the step before each estimate, so that the estimate never reads
      the full moments its step overwrites in place (which makes XLA copy them); None for
      groups, and where the state is not diagonal.
  """

  strength: jax.Array
  sample: Any = None


@dataclasses.dataclass(frozen=True)
class Target:
  """A validated target-sparsity request (built once by :func:`build`)."""

  schedule: Any  # a number or a schedule of the step count
  penalty: str
  groups: bool
  group_axis: Any  # a validated group_axis (``_penalties.check_group_axis``)
  freeze_step: int | None
  mcp_gamma: float = 3.0
  update_every: Any = 1  # an int, or a traced one under optax.inject_hyperparams

  def init(self, sample: Any = None) -> TargetSparsityState:
    """The initial state; ``sample``: the preconditioner's state on the ranked coordinates
    (:func:`take_sample`), None where it cannot be sampled (the points are sampled then)."""
    return TargetSparsityState(strength=jnp.zeros([], jnp.float32), sample=sample)


def build(
  target_sparsity: Any,
  *,
  penalty: str,
  groups: bool,
  group_axis: Any,
  freeze_support: bool,
  freeze_step: int | None,
  others: dict[str, Any],
  mcp_gamma: float = 3.0,
  update_every: Any = None,
) -> Target:
  """Validates a target-sparsity request; raises naming the argument and the fix."""
  _check_fraction(target_sparsity, "target_sparsity")
  given = [name for name, value in others.items() if value is not None]
  if given:
    raise ValueError(
      f"target_sparsity sets the penalty strength itself; it cannot be combined with "
      f"{', '.join(given)}. Pass target_sparsity alone (sparsity_penalty= chooses the penalty, "
      "target_groups=True removes whole groups), or the strengths without it."
    )
  if penalty not in PENALTIES:
    raise ValueError(f"sparsity_penalty must be one of {PENALTIES}, got {penalty!r}.")
  if groups and penalty == "mcp":
    raise ValueError(
      "target_groups=True removes whole groups by their norm, with sparsity_penalty='l0' (a "
      "hard threshold) or 'l1' (group L1); MCP has no group form here."
    )
  if freeze_step is not None:
    freeze_step = _validation.check_int(freeze_step, "freeze_step", 0)
  elif freeze_support and isinstance(target_sparsity, PolynomialSparsity):
    freeze_step = target_sparsity.end_step
  if not freeze_support:
    freeze_step = None
  if update_every is None:
    update_every = HARD_THRESHOLD_UPDATE_EVERY if penalty == "l0" else 1
  update_every = _validation.check_int(
    update_every, "target_update_every", 1, " (1: a new strength at every step)"
  )
  axis = _penalties.check_group_axis(group_axis)
  return Target(target_sparsity, penalty, bool(groups), axis, freeze_step, mcp_gamma, update_every)


# The default of target_update_every for the hard threshold, which does not shrink the weights
# it keeps: at a fixed strength its zero set neither grows nor thins out between estimates. The
# penalties that shrink (L1, MCP, group L1) remove more weights at each step of a fixed strength,
# so their strength is re-estimated at every step.
HARD_THRESHOLD_UPDATE_EVERY = 10


def _shrink(
  target: Target, v: jax.Array, lr: Any, scale: Any, strength: Any, layout: Any = -1
) -> jax.Array:
  """The prox of the target's penalty at ``strength``, in the optimizer's metric; ``layout``:
  the leaf's groups."""
  if target.groups and target.penalty == "l0":  # whole groups kept or removed, not shrunk
    split, axis = _penalties.split_groups(v, layout)
    axes = _numerics.group_reduction_axes(split.shape, axis)
    keep = jnp.expand_dims(_removal_strength(target, v, lr, scale, layout), axes) > strength
    return jnp.where(keep, split, jnp.zeros((), v.dtype)).reshape(v.shape)
  if target.groups:
    strengths = _penalties.Strengths(group_l1=strength, group_axis=layout)
  elif target.penalty == "l0":
    strengths = _penalties.Strengths(l0=strength)
  elif target.penalty == "mcp":
    strengths = _penalties.Strengths(mcp=strength, mcp_gamma=target.mcp_gamma)
  else:
    strengths = _penalties.Strengths(l1=strength)
  return _penalties.prox_in_metric(v, lr, scale, strengths)


def _removal_strength(
  target: Target, v: jax.Array, lr: Any, scale: Any, layout: Any = -1
) -> jax.Array:
  """Per coordinate (or group: ``layout``, the leaf's groups), the smallest strength at which
  the prox removes it."""
  step = lr * jnp.asarray(scale, _numerics.real_dtype(v.dtype))
  if target.groups:
    step, _ = _penalties.split_groups(jnp.broadcast_to(step, v.shape), layout)
    v, axis = _penalties.split_groups(v, layout)
    axes = _numerics.group_reduction_axes(v.shape, axis)
    size = math.prod(v.shape[i] for i in axes)
    squares = jnp.sum(_numerics.abs_sq(v), axis=axes)
    if target.penalty == "l0":
      # Penalty λ·|G| per group kept, in the identity metric: removed iff ‖v‖² <= 2ηλ|G|, so
      # groups are ranked by the norm of their weights after the step. Weighting them by Adam's
      # metric ranked units worse on both MLPs of benchmarks/frontier.py (0.1–0.8 pp at 80–95 %
      # of units removed); it helps coordinates, not groups.
      return squares / (2 * lr * size)
    group_step = 1 / jnp.mean(1 / step, axis=axes)
    return jnp.sqrt(squares) / (group_step * math.sqrt(size))
  if target.penalty == "l0":  # removed iff |v| <= sqrt(2 · step · λ)
    return _numerics.abs_sq(v) / (2 * step)
  if target.penalty == "mcp":  # firm threshold below γ, hard threshold λ·sqrt(step·γ) above
    gamma = target.mcp_gamma
    return jnp.where(step < gamma, jnp.abs(v) / step, jnp.abs(v) / jnp.sqrt(step * gamma))
  return jnp.abs(v) / step  # l1: removed iff |v| <= step · λ


# The strength is the target quantile of the coordinates' removal strengths, computed on at
# most this many of them (about one in k of each leaf, in runs of RUN neighbours): exactly, for
# models with this many penalised coordinates (or groups) or fewer; above, its standard error
# is at most 0.2 pp of sparsity where neighbours are independent, and at most 0.8 pp (4,096
# runs) where a run's neighbours are alike.
SAMPLE = 65_536


def sample_stride(params: Any, penalised: Any) -> int:
  """The k of "every k-th coordinate": 1 (all of them) up to ``SAMPLE`` penalised ones."""
  return _stride(
    [
      jnp.size(p)
      for p, on in zip(jax.tree.leaves(params), jax.tree.leaves(penalised), strict=True)
      if on and _numerics.is_inexact_leaf(p)
    ]
  )


def _stride(sizes: list[int]) -> int:
  return max(1, -(-sum(sizes) // SAMPLE))


# Sampled coordinates are read in runs of this many consecutive ones (a 64-byte cache line of
# float32): one coordinate out of each line read would cost 3× more on a CPU.
RUN = 16


def _every(x: jax.Array, stride: int) -> jax.Array:
  """About one coordinate in ``stride`` of ``x``: the first ``RUN`` of every ``RUN * stride``,
  and the first ``RUN`` of the remainder (so that every leaf is sampled)."""
  flat = jnp.ravel(x)
  if stride == 1:
    return flat
  period = RUN * stride
  whole = flat.size // period
  runs = flat[: whole * period].reshape(whole, period)[:, :RUN]
  return jnp.concatenate([jnp.ravel(runs), flat[whole * period :][:RUN]])


def take_sample(tree: Any, params: Any, penalised: Any, stride: int) -> Any | None:
  """``tree`` with each subtree shaped like ``params`` (the gradients, a diagonal optimizer's
  moments) replaced by one flat array: every ``stride``-th coordinate (see :func:`_every`) of
  each penalised leaf, concatenated (in their promoted dtype); scalars kept. None if ``tree``
  holds another array (a state that is not diagonal).

  Why: the controller runs the diagonal step on the sampled gradients and on a sample of the
  state kept from the step before, so that ranking the coordinates neither makes XLA store the
  whole points to slice them nor read the moments the step overwrites in place; one array
  instead of a tree keeps that a handful of operations, whatever the number of leaves.
  """
  structure: Any = jax.tree.structure(params)
  shapes = [jnp.shape(p) for p in jax.tree.leaves(params)]
  ranked = [
    on and _numerics.is_inexact_leaf(p)
    for p, on in zip(jax.tree.leaves(params), jax.tree.leaves(penalised), strict=True)
  ]

  def params_like(x: Any) -> bool:
    return (
      jax.tree.structure(x) == structure and [jnp.shape(y) for y in jax.tree.leaves(x)] == shapes
    )

  def sample(x: Any) -> Any:
    if params_like(x):
      leaves = jax.tree.leaves(x)
      return jnp.concatenate(
        [_every(y, stride) for y, on in zip(leaves, ranked, strict=True) if on]
      )
    if jnp.size(x) > 1:
      raise _NotDiagonal
    return x

  try:
    return jax.tree.map(sample, tree, is_leaf=params_like)
  except _NotDiagonal:
    return None


class _NotDiagonal(Exception):
  pass


def _kth_smallest(values: jax.Array, k: jax.Array) -> jax.Array:
  """The k-th smallest (1-based) of non-negative float32 ``values``, exactly, without a sort:
  a bisection over their bit patterns, which order non-negative floats as integers (31 passes
  of a comparison and a count, where a sort is n log n and not vectorised on CPUs)."""
  bits = jax.lax.bitcast_convert_type(values, jnp.int32)

  def halve(_, bounds):  # the smallest pattern b with count(bits <= b) >= k lies in [lo, hi]
    lo, hi = bounds
    mid = lo + (hi - lo) // 2
    enough = jnp.sum(bits <= mid) >= k
    return jnp.where(enough, lo, mid + 1), jnp.where(enough, mid, hi)

  lo, _ = jax.lax.fori_loop(0, 31, halve, (jnp.int32(0), jnp.int32(0x7F800000)))  # 0 .. inf
  return jax.lax.bitcast_convert_type(lo, jnp.float32)


def _quantile(ranks: list[jax.Array], wanted: jax.Array) -> jax.Array:
  """A strength that removes the fraction ``wanted`` of the coordinates ranked: halfway between
  the k-th smallest removal strength and the next larger one, so that the prox's own rounding of
  the threshold can neither keep the k-th nor remove the next."""
  flat = jnp.concatenate([jnp.ravel(r) for r in ranks]).astype(jnp.float32)
  n = flat.size
  k = jnp.clip(jnp.round(wanted * n).astype(jnp.int32), 0, n)
  below = jnp.where(k > 0, _kth_smallest(flat, jnp.maximum(k, 1)), 0.0)
  above = jnp.min(jnp.where(flat > below, flat, jnp.inf))
  return jnp.where(jnp.isfinite(above), (below + above) / 2, 2 * below)


def is_due(target: Target, count: Any) -> Any:
  """Whether the step after ``count`` steps re-estimates the strength: every ``update_every``
  steps and at the freeze step, never once frozen. True (a Python bool) when it always does."""
  if isinstance(target.update_every, int) and target.update_every == 1:
    if target.freeze_step is None:
      return True
  due = count % target.update_every == 0
  if target.freeze_step is not None:
    due = (due | (count == target.freeze_step)) & (count <= target.freeze_step)
  return due


def when(due: Any, compute: Callable[[], Any], otherwise: Any) -> Any:
  """``compute()`` where ``due``, else ``otherwise``; computed only when due."""
  if due is True:
    return compute()
  return jax.lax.cond(due, compute, lambda: otherwise)


def controlled_prox(
  target: Target,
  state: TargetSparsityState,
  count: jax.Array,
  points: list[jax.Array],
  params: list[jax.Array],
  lr: Any,
  scales: list[Any],
  sample: Callable[[], tuple[list[jax.Array], list[Any]]] | None = None,
  layouts: list[Any] | None = None,
) -> tuple[list[jax.Array], jax.Array]:
  """The new values of the penalised leaves, and the strength that gave them.

  ``points`` are the values the optimizer steps to (``v``), ``params`` the current ones,
  ``scales`` the metric's per-coordinate factors, one per penalised leaf; ``count`` is the
  number of steps taken before this one (the schedules' argument). ``sample``, called only at
  the steps that re-estimate the strength, returns the points and scales of the coordinates
  to rank (see :func:`take_sample`); without it, a sample of ``points`` is ranked. ``layouts``:
  with groups, each leaf's (``_penalties.leaf_layouts``); default: the last axis of each.
  """
  if layouts is None:
    layouts = [-1] * len(points)
  wanted = jnp.asarray(_numerics.value_at(target.schedule, count), jnp.float32)
  frozen = jnp.asarray(False) if target.freeze_step is None else count > target.freeze_step

  def estimate() -> jax.Array:
    if target.groups:  # one rank per group: few enough to rank them all
      ranks = [
        _removal_strength(target, v, lr, s, layout)
        for v, s, layout in zip(points, scales, layouts, strict=True)
      ]
    elif sample is not None:
      ranks = [_removal_strength(target, v, lr, s) for v, s in zip(*sample(), strict=True)]
    else:  # every stride-th coordinate of the points
      stride = _stride([v.size for v in points])
      ranks = [
        _removal_strength(
          target, _every(v, stride), lr, s if jnp.ndim(s) == 0 else _every(s, stride)
        )
        for v, s in zip(points, scales, strict=True)
      ]
    return jnp.where(wanted > 0, _quantile(ranks, wanted), 0.0).astype(jnp.float32)

  strength = when(is_due(target, count), estimate, state.strength)
  shrunk = [
    _shrink(target, v, lr, s, strength, layout)
    for v, s, layout in zip(points, scales, layouts, strict=True)
  ]
  # Frozen: zeros stay zero, the rest train without shrinkage.
  new = [
    jnp.where(frozen, jnp.where(p == 0, jnp.zeros((), v.dtype), v), out)
    for v, p, out in zip(points, params, shrunk, strict=True)
  ]
  return new, strength


def target_strength(opt_state: Any) -> jax.Array:
  """The penalty strength a ``target_sparsity`` optimizer uses now, for logging.

  Finds the controller's state anywhere in ``opt_state`` (inside ``optax.chain``,
  ``optax.inject_hyperparams``, ``optax.MultiSteps``, …; an ``nnx.Optimizer``'s
  ``opt_state`` too).

  Args:
    opt_state: the state of an optimizer built with ``target_sparsity``.

  Returns:
    The strength (a float32 scalar; 0 before the ramp starts).

  Raises:
    ValueError: if ``opt_state`` holds no target-sparsity state, or more than one.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_l1
    >>> tx = optax_l1.adam(0.1, target_sparsity=0.5)
    >>> params = jnp.array([0.1, -0.2, 0.3, -0.4])
    >>> updates, state = tx.update(jnp.zeros(4), tx.init(params), params)
    >>> float(optax_l1.target_strength(state)) > 0
    True
  """
  found = [
    leaf.strength
    for leaf in jax.tree.leaves(opt_state, is_leaf=lambda x: isinstance(x, TargetSparsityState))
    if isinstance(leaf, TargetSparsityState)
  ]
  if len(found) != 1:
    raise ValueError(
      f"opt_state holds {len(found)} target-sparsity states; pass the state of one optimizer "
      "built with target_sparsity=."
    )
  strength = found[0]
  return jnp.asarray(getattr(strength, "value", strength))  # an nnx.Optimizer wraps leaves
