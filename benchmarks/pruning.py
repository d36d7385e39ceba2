r"""Gradual magnitude pruning (Zhu & Gupta 2017), as tfmot and jaxpruner do it, for the frontier.

The baseline users pick instead of L1, written as an optax wrapper so that it runs inside a
jitted ``lax.scan`` like every other method of :mod:`frontier`. Not part of ``optax_l1``.

:class:`PolynomialDecay` is tfmot's ``tfmot.sparsity.keras.PolynomialDecay``: at pruning step
:math:`t`,

.. math::

  s_t = s_f + (s_i - s_f)(1 - p)^3, \qquad p = \operatorname{clip}((t - b)/(e - b), 0, 1),

and the mask is recomputed when :math:`b \le t \le e` and :math:`(t - b) \bmod f = 0` (so at
``end_step`` too when ``end - begin`` is a multiple of ``frequency``). :func:`prune_low_magnitude`
is tfmot's ``prune_low_magnitude`` as an optax transformation: at a mask update, the
``round(n·(1 − s_t))`` (at least 1) largest-magnitude weights of each masked kernel are kept
(``|w| >= `` the k-th largest ``|w|``, tfmot's rule: ties at the threshold are kept) and the rest
set to exactly ``0.0``; the mask lives in the state and multiplies the weights after every
update; outside ``[begin, end]`` it does not change. ``scope="global"`` uses one threshold over
all masked kernels (jaxpruner's global magnitude pruning); ``granularity="unit"`` scores whole
output units (the last axis of a Dense ``(in, out)`` or conv ``(…, in, out)`` kernel) by the L2
norm of their incoming weights.

The order of operations is tfmot's. tfmot, at training step :math:`t` (``pruning_step`` = the
optimizer's iteration count), first updates the mask if the schedule says so, from the current
weights, then multiplies the weights by it, then runs the forward and backward pass; the
optimizer then updates every weight, the masked ones too (their gradient is not masked, so Adam's
moments keep accumulating, and a masked weight moves off zero by one step until the next
multiplication). Here, ``update`` number :math:`t` (0-based) computes the optimizer's step, and
then does what tfmot does before forward pass :math:`t + 1`: the mask update of pruning step
:math:`t + 1` on the updated weights (previously masked weights included, one step off zero, as
in tfmot), and the multiplication. The weights every forward pass sees are the same as tfmot's;
the only difference is at pruning step 0, which happens here after the first update rather
than before it (``begin_step=0`` only).

References:
  Zhu & Gupta, `To prune, or not to prune: exploring the efficacy of pruning for model
  compression <https://arxiv.org/abs/1710.01878>`_, 2017.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

GRANULARITIES = ("weight", "unit")
SCOPES = ("layer", "global")


def _should_prune_in_step(step, begin_step: int, end_step: int, frequency: int) -> jax.Array:
  """tfmot's ``PruningSchedule._should_prune_in_step`` (``end_step < 0``: prune for ever)."""
  step = jnp.asarray(step, jnp.int32)
  in_range = (step >= begin_step) & ((step <= end_step) | (end_step < 0))
  return in_range & ((step - begin_step) % frequency == 0)


class PolynomialDecay(NamedTuple):
  """tfmot's ``PolynomialDecay``: ``schedule(step)`` is ``(update the mask?, sparsity)``."""

  initial_sparsity: float
  final_sparsity: float
  begin_step: int
  end_step: int
  power: float = 3.0
  frequency: int = 100

  def sparsity(self, step) -> jax.Array:
    """The target fraction :math:`s_t` at pruning step ``step`` (float32)."""
    span = self.end_step - self.begin_step
    p = jnp.clip((jnp.asarray(step, jnp.float32) - self.begin_step) / span, 0.0, 1.0)
    decay = (1.0 - p) ** self.power
    return jnp.float32(self.final_sparsity) + (self.initial_sparsity - self.final_sparsity) * decay

  def __call__(self, step) -> tuple[jax.Array, jax.Array]:
    prune = _should_prune_in_step(step, self.begin_step, self.end_step, self.frequency)
    return prune, self.sparsity(step)


class ConstantSparsity(NamedTuple):
  """tfmot's ``ConstantSparsity``: ``target_sparsity`` at every update in ``[begin, end]``.

  With ``begin_step == end_step`` it is one-shot pruning at that step.
  """

  target_sparsity: float
  begin_step: int
  end_step: int = -1
  frequency: int = 100

  def __call__(self, step) -> tuple[jax.Array, jax.Array]:
    prune = _should_prune_in_step(step, self.begin_step, self.end_step, self.frequency)
    return prune, jnp.float32(self.target_sparsity)


def _validate(schedule: Any) -> None:
  if not isinstance(schedule, (PolynomialDecay, ConstantSparsity)):
    return  # any function of the step: the caller's to check
  final = getattr(schedule, "final_sparsity", getattr(schedule, "target_sparsity", 0.0))
  initial = getattr(schedule, "initial_sparsity", 0.0)
  if not (0.0 <= initial < 1.0 and 0.0 <= final < 1.0):
    raise ValueError(f"sparsities must lie in [0, 1), got {initial} and {final}.")
  if schedule.frequency < 1:
    raise ValueError(f"frequency must be >= 1, got {schedule.frequency}.")
  if isinstance(schedule, PolynomialDecay) and schedule.end_step <= schedule.begin_step:
    raise ValueError("PolynomialDecay needs end_step > begin_step (tfmot checks it too).")


class PruningState(NamedTuple):
  """State of :func:`prune_low_magnitude`.

  Attributes:
    count: the number of updates done (int32); pruning step ``count`` is the next forward pass.
    masks: per leaf, a bool array of its shape (``False``: held at zero), or a scalar ``True``
      for the leaves that are not pruned.
    inner_state: the wrapped optimizer's state.
  """

  count: jax.Array
  masks: Any
  inner_state: optax.OptState


def _resolve_mask(mask: Any, params: Any) -> Any:
  return mask(params) if callable(mask) else mask


def _scores(leaf: jax.Array, granularity: str) -> jax.Array:
  """What is ranked: ``|w|`` per weight, or per output unit the L2 norm of its incoming weights."""
  x = jnp.abs(leaf.astype(jnp.promote_types(leaf.dtype, jnp.float32)))
  if granularity == "weight":
    return x
  return jnp.sqrt(jnp.sum(jnp.square(x), axis=tuple(range(leaf.ndim - 1))))


def _keep_threshold(scores: jax.Array, sparsity: jax.Array) -> jax.Array:
  """tfmot's threshold: the k-th largest score, ``k = max(round(n·(1 − s)), 1)``."""
  flat = scores.reshape(-1)
  k = jnp.maximum(jnp.round(flat.size * (1.0 - sparsity)), 1).astype(jnp.int32)
  return jnp.sort(flat)[::-1][k - 1]


def masks_at(params: Any, mask: Any, sparsity, *, scope="layer", granularity="weight") -> Any:
  """The pruning masks of ``params`` at target ``sparsity`` (the leaves where ``mask`` is True).

  Args:
    params: the weights.
    mask: a pytree of bools (or a function of the params returning one): the leaves to prune.
    sparsity: the fraction of weights (or, with ``granularity="unit"``, of output units) to set
      to zero, per leaf (``scope="layer"``) or over all masked leaves together (``"global"``).
    scope: ``"layer"`` or ``"global"``.
    granularity: ``"weight"`` or ``"unit"``.

  Returns:
    The masks, as in :class:`PruningState`: bool arrays of each pruned leaf's shape, scalar
    ``True`` elsewhere.
  """
  if scope not in SCOPES or granularity not in GRANULARITIES:
    raise ValueError(f"scope in {SCOPES}, granularity in {GRANULARITIES}: {scope}, {granularity}")
  on = jax.tree.leaves(_resolve_mask(mask, params))
  leaves, treedef = jax.tree.flatten(params)
  if len(on) != len(leaves):
    raise ValueError("mask must have the structure of params.")
  scores = [_scores(x, granularity) if m else None for x, m in zip(leaves, on, strict=True)]
  sparsity = jnp.asarray(sparsity, jnp.float32)
  if scope == "global":
    pooled = jnp.concatenate([s.reshape(-1) for s in scores if s is not None])
    thresholds = [_keep_threshold(pooled, sparsity)] * len(scores)
  else:
    thresholds = [None if s is None else _keep_threshold(s, sparsity) for s in scores]
  out = []
  for x, s, t in zip(leaves, scores, thresholds, strict=True):
    if s is None:
      out.append(jnp.ones((), bool))
    else:
      out.append(jnp.broadcast_to(s >= t, x.shape))  # a unit's score broadcasts down its column
  return jax.tree.unflatten(treedef, out)


def prune_low_magnitude(
  inner: optax.GradientTransformation,
  schedule: Callable[[jax.Array], tuple[jax.Array, jax.Array]],
  mask: Any,
  *,
  scope: str = "layer",
  granularity: str = "weight",
) -> optax.GradientTransformationExtraArgs:
  """Wraps ``inner`` so that the masked leaves are magnitude-pruned on ``schedule``.

  Args:
    inner: the optimizer, e.g. ``optax.adam(1e-3)``.
    schedule: :class:`PolynomialDecay` or :class:`ConstantSparsity` (any function of the pruning
      step returning ``(update the mask?, sparsity)``).
    mask: the leaves to prune: a pytree of bools or a function of the params returning one.
    scope: ``"layer"`` (tfmot: every kernel to ``s_t``) or ``"global"`` (one threshold).
    granularity: ``"weight"`` or ``"unit"`` (whole output units by their incoming L2 norm).

  Returns:
    A transformation whose ``update`` requires ``params``; after ``optax.apply_updates`` the
    pruned weights are exactly ``0.0``.
  """
  _validate(schedule)
  if scope not in SCOPES or granularity not in GRANULARITIES:
    raise ValueError(f"scope in {SCOPES}, granularity in {GRANULARITIES}: {scope}, {granularity}")

  def init_fn(params):
    on = _resolve_mask(mask, params)
    # Nothing is pruned before the first mask update.
    masks = jax.tree.map(lambda x, m: jnp.ones(x.shape if m else (), bool), params, on)
    return PruningState(jnp.zeros([], jnp.int32), masks, inner.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    if params is None:
      raise ValueError("prune_low_magnitude needs params in update.")
    del extra_args
    updates, inner_state = inner.update(updates, state.inner_state, params)
    new_params = optax.apply_updates(params, updates)
    step = state.count + 1  # the pruning step of the next forward pass
    prune, target = schedule(step)
    masks = jax.lax.cond(
      prune,
      lambda: masks_at(new_params, mask, target, scope=scope, granularity=granularity),
      lambda: state.masks,
    )
    # A kept weight gets the optimizer's update; a pruned one -w, so that w + (-w) = 0 exactly.
    updates = jax.tree.map(lambda u, w, m: jnp.where(m, u, -w), updates, params, masks)
    return updates, PruningState(step, masks, inner_state)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
