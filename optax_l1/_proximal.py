"""The proximal optimizer: a diagonal step, then the prox of the penalties in the step's metric."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optax_l1 import _numerics, _penalties, _target_sparsity, _validation, preconditioners


class ProximalState(NamedTuple):
  """State of :func:`l1_prox`, :func:`group_l1_prox` and :func:`proximal` (and the aliases).

  Attributes:
    count: the number of steps taken (int32), for schedules and bias correction.
    preconditioner: the optimizer's own state (moments); ``optax.EmptyState()`` for the
      last-stage transformations.
    target: with ``target_sparsity``, the controller's
      :class:`~optax_l1.TargetSparsityState` (the strength in use); otherwise
      ``optax.EmptyState()``.
  """

  count: jax.Array  # type: ignore[assignment]  # optax's name for it, shadowing tuple.count
  preconditioner: Any
  target: Any = optax.EmptyState()


def proximal(
  preconditioner: preconditioners.Preconditioner,
  learning_rate: optax.ScalarOrSchedule,
  *,
  l1: optax.ScalarOrSchedule | None = None,
  l2: optax.ScalarOrSchedule | None = None,
  group_l1: optax.ScalarOrSchedule | None = None,
  group_axis: _penalties.GroupAxes | None = None,
  l0: optax.ScalarOrSchedule | None = None,
  mcp: optax.ScalarOrSchedule | None = None,
  mcp_gamma: float = 3.0,
  scad: optax.ScalarOrSchedule | None = None,
  scad_a: float = 3.7,
  weight_decay: optax.ScalarOrSchedule | None = None,
  mask: _numerics.Mask | None = None,
  target_sparsity: optax.ScalarOrSchedule | None = None,
  sparsity_penalty: str = "l0",
  target_groups: bool = False,
  freeze_support: bool = True,
  freeze_step: int | None = None,
  target_update_every: int | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""A full proximal optimizer: a diagonal step, then the prox in the step's own metric.

  With the preconditioner's direction :math:`p` and per-coordinate metric :math:`d`
  (:math:`d = 1` for SGD, :math:`\sqrt{\hat v} + \epsilon` for Adam, …):

  .. math::

    v = w - \eta_t\,(p + \mu w), \qquad
    w \leftarrow \frac{\operatorname{soft}(v,\ \eta_t\lambda_1/d)}{1 + \eta_t\lambda_2/d}
    = \operatorname*{argmin}_y \tfrac{1}{2\eta_t}\|y - v\|_d^2
      + \lambda_1\|y\|_1 + \tfrac{\lambda_2}{2}\|y\|_2^2,

  where :math:`\|z\|_d^2 = \sum_i d_i z_i^2` and :math:`\mu` is decoupled weight decay. This
  is ProxGen's preconditioned proximal step: the threshold lives in the metric of the step,
  so adaptive optimizers reach exact zeros (see the warning in :func:`l1_prox`). Under ``jax.jit`` the
  metric is computed once per coordinate and the step reads and writes each leaf and moment
  no more often than the optax optimizer it extends. It minimises
  :math:`f(w) + \lambda_1\|w\|_1 + \tfrac{\lambda_2}{2}\|w\|_2^2` over the masked leaves
  (the same :math:`\lambda_1` as ``keras.regularizers.l1``); leaves outside ``mask`` take the
  plain optimizer step, with neither penalty nor weight decay.

  Chain it after gradient stages (``optax.clip_by_global_norm``, …); wrap it in
  ``optax.MultiSteps``, ``optax.inject_hyperparams``, ``optax.apply_if_finite`` as any optax
  optimizer. Traced hyperparameters (injected, or from schedules) are used as given, without
  checks (a negative ``l1`` grows weights; see :func:`l1_prox`). With
  ``optax.inject_hyperparams`` and a callable ``mask``, pass ``static_args="mask"`` (as for
  ``optax.adamw``): otherwise optax takes the callable for a schedule of the step count.

  Args:
    preconditioner: the optimizer step, e.g. ``optax_l1.preconditioners.adam()``.
    learning_rate: :math:`\eta_t`, a float or a schedule of the step count.
    l1: the L1 strength :math:`\lambda_1 \ge 0`, or a schedule.
    l2: the L2 strength :math:`\lambda_2 \ge 0` (elastic net), or a schedule.
    group_l1: the group-lasso strength :math:`\lambda_G \ge 0` (penalty
      :math:`\lambda_G\sum_G\sqrt{|G|}\,\|w_G\|_2`, groups indexed by ``group_axis`` as in
      :func:`group_l1_prox`), or a schedule. With ``l1`` too, the sparse group lasso. Each
      group is thresholded with the step size of its *mean metric*,
      :math:`\bar\eta_G = \eta_t / \operatorname{mean}_{i\in G} d_i` (per-coordinate step
      sizes leave no closed form). The arithmetic mean of the step sizes :math:`\eta_t/d_i`, or
      their maximum, would be dominated by coordinates that never had a gradient
      (:math:`d_i` at its floor: a constant input, a dead unit upstream) and remove every group at
      once (the docs' guide "Structured sparsity and compaction" says more).
    group_axis: the axis whose indices are the groups; ``None`` (default) is the last
      axis, the output units of Dense and conv kernels. ``None`` rather than ``-1`` so that
      ``optax.inject_hyperparams``, which injects every number, leaves it alone. Or an
      :class:`optax_l1.GroupAxis` (groups of ``size`` consecutive indices along its axis);
      or, to give each leaf its own, a pytree of ints, ``GroupAxis`` and ``None`` (the last
      axis) with the params' structure or a prefix of it, or a function of the params
      returning one (as ``mask``; with ``optax.inject_hyperparams``, pass
      ``static_args="group_axis"`` for a function). E.g. conv channels by their outgoing
      weights (``-2`` on the next NNX kernel ``(*window, in, out)``, ``1`` on Equinox's
      ``(out, in, *window)``), attention heads by their rows of the output kernel (``0`` on
      NNX's ``(heads, head_dim, out)``, ``GroupAxis(1, head_dim)`` on Equinox's
      ``(out, heads * head_dim)``). Each penalised leaf must have the axis (and a multiple of
      the size along it): ``init`` raises naming the leaf otherwise.
    l0: the L0 strength :math:`\lambda_0 \ge 0`, or a schedule: keep :math:`w_i` only where
      :math:`|v_i| > \sqrt{2\eta_t\lambda_0/d_i}` (ProxGen's AdamL0). Non-convex: the result
      depends on initialisation and step size, kept weights are not shrunk, and weights near
      the threshold can flip between zero and non-zero; it cannot be combined with the other
      penalties.
    mcp: the MCP strength :math:`\lambda \ge 0` (minimax concave penalty: L1 near zero, no
      shrinkage beyond :math:`\gamma\lambda`), or a schedule; non-convex, alone; its prox is
      :func:`optax_l1.prox.mcp` with the per-coordinate step :math:`\eta_t/d_i`.
    mcp_gamma: MCP's :math:`\gamma > 0`.
    scad: the SCAD strength :math:`\lambda \ge 0`, or a schedule; non-convex, alone; its
      prox is :func:`optax_l1.prox.scad` with the per-coordinate step.
    scad_a: SCAD's :math:`a > 2`.
    weight_decay: decoupled weight decay :math:`\mu \ge 0` (AdamW), or a schedule.
    mask: which leaves are penalised (and decayed), resolved as ``optax.masked`` does (see
      :func:`optax_l1.adam`).
    target_sparsity: instead of a strength, the fraction of exact zeros wanted over the
      penalised leaves (a number in [0, 1) or a schedule, e.g.
      :func:`optax_l1.polynomial_sparsity`). At each step the strength of
      ``sparsity_penalty`` is the quantile of the coordinates' removal strengths (in the
      metric :math:`d`) that removes that fraction, kept in the state's ``target``
      (:func:`optax_l1.target_strength`); exact for at most 65,536 penalised coordinates, on
      an evenly spread sample of them above. Not with ``l1``, ``group_l1``, ``l0``,
      ``mcp`` or ``scad``.
    sparsity_penalty: ``"l0"`` (default: a hard threshold, kept weights not shrunk), ``"l1"``
      or ``"mcp"`` (with ``mcp_gamma``).
    target_groups: remove whole groups along ``group_axis`` instead of coordinates; with
      ``"l0"`` they are ranked by the norm of their weights after the step, in the identity
      metric (weighting them by :math:`d` ranked units worse in the frontier benchmark).
    freeze_support: freeze the zero set at ``freeze_step`` and train the rest without
      shrinkage after it (the end of a pruning schedule, a relaxed-lasso refit).
    freeze_step: the step count at which to freeze; default: the ``end_step`` of a
      :class:`~optax_l1.PolynomialSparsity` (none for other schedules). Under
      ``optax.inject_hyperparams``, pass ``static_args="target_sparsity"`` or this.
    target_update_every: re-estimate the strength every this many steps (and at
      ``freeze_step``), as gradual magnitude pruning updates its masks every ``frequency``
      steps; in between, the prox uses the last strength. Default: 10 for ``"l0"``, whose
      hard threshold keeps the zero fraction where it is at a fixed strength; 1 for
      ``"l1"``, ``"mcp"`` and group L1, which shrink, so remove more at each step.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` requires ``params``. Keep
    it last in a chain: a stage after it (``optax.scale``, lookahead, schedule-free,
    ``optax.contrib.reduce_on_plateau``) rescales or mixes its update and loses the exact zeros.

  Raises:
    ValueError: at construction, for a negative or non-finite hyperparameter given as a
      number; in ``update``, if ``params`` is missing or ``mask`` does not match them.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import optax_l1
    >>> tx = optax.chain(
    ...     optax.clip_by_global_norm(1.0),
    ...     optax_l1.proximal(optax_l1.preconditioners.adam(), 0.1, l1=0.01))
    >>> params = jnp.array([0.05, 1.0])
    >>> state = tx.init(params)
    >>> updates, state = tx.update(jnp.array([0.0, 0.1]), state, params)
    >>> optax.apply_updates(params, updates).round(4)
    Array([0.  , 0.89], dtype=float32)

  References:
    Yun, Lozano & Yang, `Adaptive Proximal Gradient Methods for Structured Neural Networks
    <https://proceedings.neurips.cc/paper/2021/hash/cc3f5463bc4d26bc38eadc8bcffbc654-Abstract.html>`_,
    NeurIPS 2021

  .. seealso:: :func:`l1_prox`, :mod:`optax_l1.preconditioners`
  """
  if not isinstance(preconditioner, preconditioners.Preconditioner):
    raise TypeError(
      "preconditioner must be an optax_l1.preconditioners.Preconditioner, which reports the "
      "per-coordinate step size the threshold needs; got "
      f"{type(preconditioner).__name__}. An optax optimizer hides that step size: use "
      "optax_l1.adam/adamw/rmsprop/adagrad/sgd, optax_l1.preconditioners.adam() etc., or "
      "write a Preconditioner for your optimizer."
    )
  _validation.check_hyperparameter(learning_rate, "learning_rate")
  if weight_decay is None:
    weight_decay = 0
  _validation.check_hyperparameter(weight_decay, "weight_decay")
  target = None
  if target_sparsity is not None:
    target = _target_sparsity.build(
      target_sparsity,
      penalty=sparsity_penalty,
      groups=target_groups,
      group_axis=group_axis,
      freeze_support=freeze_support,
      freeze_step=freeze_step,
      update_every=target_update_every,
      others={"l1": l1, "group_l1": group_l1, "l0": l0, "mcp": mcp, "scad": scad},
      mcp_gamma=mcp_gamma,
    )
  group_axis = _penalties.check_group_axis(group_axis)
  uniform = group_axis is None or isinstance(group_axis, (int, _penalties.GroupAxis))
  penalty = _penalties.Strengths.create(
    l1=l1,
    l2=l2,
    group_l1=group_l1,
    group_axis=group_axis if uniform else None,
    l0=l0,
    mcp=mcp,
    mcp_gamma=mcp_gamma,
    scad=scad,
    scad_a=scad_a,
  )

  if target is not None and mask is not None and not _numerics.is_mask_function(mask):
    if not any(jax.tree.leaves(mask)):
      raise ValueError(_NOTHING_MASKED)

  grouped = not _numerics.is_static_zero(penalty.group_l1) or (target is not None and target.groups)

  def layouts_of(params, penalised):
    """Per leaf, its groups (checked against the penalised leaves); None without groups."""
    if not grouped:
      return jax.tree.map(lambda _: None, params)
    return _penalties.leaf_layouts(group_axis, params, penalised)

  def init_fn(params):
    inner = preconditioner.init(params)
    penalised = _numerics.resolve_mask(mask, params)
    layouts_of(params, penalised)  # a group_axis that does not fit raises here, not at update
    if target is None:
      return ProximalState(count=jnp.zeros([], jnp.int32), preconditioner=inner)
    if not any(
      on and _numerics.is_inexact_leaf(p)
      for on, p in zip(jax.tree.leaves(penalised), jax.tree.leaves(params), strict=True)
    ):
      raise ValueError(_NOTHING_MASKED)
    sample = None
    if not target.groups:
      stride = _target_sparsity.sample_stride(params, penalised)
      sample = _target_sparsity.take_sample(inner, params, penalised, stride)
    return ProximalState(
      count=jnp.zeros([], jnp.int32), preconditioner=inner, target=target.init(sample)
    )

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    _validation.check_params(params, "optax_l1.proximal")
    count = optax.safe_increment(state.count)
    lr = _numerics.value_at(learning_rate, state.count)
    decay = _numerics.value_at(weight_decay, state.count)
    strengths = penalty.at(state.count)
    penalised = _numerics.resolve_mask(mask, params)
    layouts = layouts_of(params, penalised)

    def point(p, step, on):
      """The point the optimizer steps to, in the compute dtype; None where unpenalised."""
      if not (on and _numerics.is_inexact_leaf(p)):
        return None
      pc = p.astype(_numerics.compute_dtype(p.dtype))
      return pc - lr * step if _numerics.is_static_zero(decay) else pc - lr * (step + decay * pc)

    direction, scale, inner = preconditioner.update(updates, state.preconditioner, count)
    if scale is None:
      scale = jax.tree.map(lambda _: 1.0, params)
    else:  # a number or array per leaf, or one for several leaves (a prefix)
      scale = _numerics.broadcast_like(scale, params, name="the scale of preconditioner.update")
    points = jax.tree.map(point, params, direction, penalised)
    sample, next_sample = None, None
    if target is not None and state.target.sample is not None:
      take = functools.partial(
        _target_sparsity.take_sample,
        params=params,
        penalised=penalised,
        stride=_target_sparsity.sample_stride(params, penalised),
      )
      sample = functools.partial(
        _sampled_points, preconditioner, point, take, updates, state.target.sample, params, count
      )
      due_next = _target_sparsity.is_due(target, state.count + 1)
      next_sample = _target_sparsity.when(due_next, lambda: take(inner), state.target.sample)
    if target is None:
      new_values = jax.tree.map(
        lambda v, s, layout: None if v is None else _prox(v, lr, s, strengths, layout),
        points,
        scale,
        layouts,
        is_leaf=lambda x: x is None,
      )
      target_state = state.target
    else:
      new_values, strength = _controlled(
        target, state.target, state.count, points, params, lr, scale, strengths, sample, layouts
      )
      target_state = _target_sparsity.TargetSparsityState(strength, next_sample)

    def update(p, step, new):
      if p is None:
        return None
      if not _numerics.is_inexact_leaf(p):
        return jnp.zeros_like(p)
      if new is None:  # not penalised
        return (-lr * step).astype(p.dtype)
      return (new - p.astype(new.dtype)).astype(p.dtype)

    new_updates = jax.tree.map(update, params, direction, new_values, is_leaf=lambda x: x is None)
    return new_updates, ProximalState(count=count, preconditioner=inner, target=target_state)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _sampled_points(preconditioner, point, take, grads, sample_state, params, count):
  """The points and scales of the coordinates the target-sparsity controller ranks (one flat
  array each): the diagonal step on the sampled gradients and on the sample of the state kept
  at the step before (see ``_target_sparsity.take_sample``)."""
  direction, scale, _ = preconditioner.update(take(grads), sample_state, count)
  return [point(take(params), direction, True)], [1.0 if scale is None else scale]


_NOTHING_MASKED = (
  "target_sparsity needs penalised weights, but mask selects no floating-point leaf: pass a "
  "mask that is True on the kernels, e.g. `lambda p: jax.tree.map(lambda x: x.ndim > 1, p)`."
)


def _prox(v, lr, scale, strengths, layout):
  """``prox_in_metric`` with the leaf's own groups (``layout``; None: no group penalty)."""
  if layout is not None:
    strengths = strengths._replace(group_axis=layout)
  return _penalties.prox_in_metric(v, lr, scale, strengths)


def _controlled(target, state, count, points, params, lr, scale, strengths, sample, layouts):
  """The target-sparsity prox over the penalised leaves (see ``_target_sparsity``); the other
  strengths (``l2``) apply after it."""
  flat_points, treedef_ = jax.tree.flatten(points, is_leaf=lambda x: x is None)
  treedef: Any = treedef_
  penalised = [i for i, v in enumerate(flat_points) if v is not None]
  flat_params = treedef.flatten_up_to(params)
  flat_scale = treedef.flatten_up_to(scale)
  flat_layouts = treedef.flatten_up_to(layouts)
  new, strength = _target_sparsity.controlled_prox(
    target,
    state,
    count,
    [flat_points[i] for i in penalised],
    [flat_params[i] for i in penalised],
    lr,
    [flat_scale[i] for i in penalised],
    sample,
    layouts=[flat_layouts[i] for i in penalised] if target.groups else None,
  )
  flat_new = list(flat_points)
  for i, value in zip(penalised, new, strict=True):
    flat_new[i] = _prox(value, lr, flat_scale[i], strengths, flat_layouts[i])
  return treedef.unflatten(flat_new), strength
