"""The penalties a proximal step applies: their strengths, and their prox in a diagonal metric.

Built and validated once (:class:`Strengths`), evaluated at each step (:meth:`Strengths.at`),
applied to one leaf by :func:`prox_in_metric`, which serves every optimizer: the optimizer
supplies the learning rate and its per-coordinate scale (1 for SGD, 1/d for Adam, …); the
penalty decides how to shrink given those step sizes, with the operators of
:mod:`optax_l1.prox`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optax_l1 import _numerics, _validation, prox
from optax_l1._groups import GroupAxis, Layout, as_layout, check_layout, split_groups

# A ``group_axis`` argument: an int, a GroupAxis, a pytree of them (None: the last axis) with the
# params' structure or a prefix of it, or a function of the params returning one.
GroupAxes = Any


def check_group_axis(group_axis: Any, name: str = "group_axis") -> Any:
  """Validates a ``group_axis`` argument at construction, without the params; returns it with
  ints as Python ints. Accepted: None (the last axis), an int, a :class:`GroupAxis`, a pytree of
  them (None leaves: the last axis) with the params' structure or a prefix of it, or a function
  of the params returning one (by ``optax.masked``'s rule: every leaf callable)."""
  if group_axis is None or isinstance(group_axis, GroupAxis):
    return group_axis
  if _numerics.is_mask_function(group_axis):
    return group_axis
  if jax.tree_util.treedef_is_leaf(jax.tree.structure(group_axis)):  # a number (or not one)
    return _validation.check_axis(group_axis, name)

  def leaf(path, value):
    if value is None or isinstance(value, GroupAxis):
      return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
      raise TypeError(
        f"{name}{jax.tree_util.keystr(path)} must be an int, None (the last axis) or an "
        f"optax_l1.GroupAxis, got {value!r}."
      )
    return int(value)

  return jax.tree_util.tree_map_with_path(leaf, group_axis, is_leaf=_is_layout_leaf)


def _is_layout_leaf(x: Any) -> bool:
  return x is None or isinstance(x, GroupAxis)


def leaf_layouts(group_axis: Any, params: Any, penalised: Any, name: str = "group_axis") -> Any:
  """Per leaf of ``params``, its :data:`Layout` (the structure of ``params``); checked to fit
  each penalised floating-point leaf, naming the leaf's path otherwise."""
  if _numerics.is_mask_function(group_axis):
    group_axis = check_group_axis(group_axis(params), name)
  if group_axis is None or isinstance(group_axis, (int, GroupAxis)):
    layouts = jax.tree.map(lambda _: -1 if group_axis is None else group_axis, params)
  else:
    try:
      layouts = jax.tree.map(
        lambda value, sub: jax.tree.map(lambda _: -1 if value is None else value, sub),
        group_axis,
        params,
        is_leaf=_is_layout_leaf,
      )
    except (ValueError, TypeError) as error:
      raise ValueError(
        f"{name} must be an int, an optax_l1.GroupAxis, or a pytree of them with the structure "
        "of the params (or a prefix of it), or a function of the params returning one.\n"
        f"  {name}: {jax.tree.structure(group_axis, is_leaf=_is_layout_leaf)}\n"
        f"  params: {jax.tree.structure(params)}\n({error})"
      ) from None
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  for (path, leaf), layout, on in zip(
    flat, jax.tree.leaves(layouts), jax.tree.leaves(penalised), strict=True
  ):
    if on and _numerics.is_inexact_leaf(leaf):
      check_layout(
        layout,
        jnp.shape(leaf),
        argument=name,
        where="params" + jax.tree_util.keystr(path),
        fix=" for this leaf (a pytree of axes, or a function of the params returning one, gives "
        "each leaf its own), or leave this leaf out with `mask`",
      )
  return layouts


class Strengths(NamedTuple):
  """Strengths of the penalties (Python numbers, schedules, or their values at one step).

  The objective is :math:`l_1\\|w\\|_1 + \\tfrac{l_2}{2}\\|w\\|_2^2
  + \\text{group\\_l1}\\sum_G \\sqrt{|G|}\\,\\|w_G\\|_2`, or one of the non-convex penalties
  alone: :math:`l_0\\|w\\|_0`, MCP or SCAD.
  """

  l1: Any = 0
  l2: Any = 0
  group_l1: Any = 0
  group_axis: Layout = -1  # one leaf's groups; the last axis: output units
  l0: Any = 0
  mcp: Any = 0
  mcp_gamma: float = 3.0
  scad: Any = 0
  scad_a: float = 3.7

  @classmethod
  def create(
    cls,
    *,
    l1: Any = None,
    l2: Any = None,
    group_l1: Any = None,
    group_axis: Layout | None = None,
    l0: Any = None,
    mcp: Any = None,
    mcp_gamma: float = 3.0,
    scad: Any = None,
    scad_a: float = 3.7,
  ) -> Strengths:
    """Validated strengths; ``None`` (a penalty not asked for) becomes the static zero.

    Raises ValueError naming the argument for a negative or non-finite number (or concrete
    array), and for a non-convex penalty combined with another penalty.
    """
    given = {"l1": l1, "l2": l2, "group_l1": group_l1, "l0": l0, "mcp": mcp, "scad": scad}
    for name, value in given.items():
      if value is not None:
        _validation.check_hyperparameter(value, name)
    axis = -1 if group_axis is None else as_layout(group_axis, "group_axis")
    _validation.check_greater_than(mcp_gamma, "mcp_gamma", 0)
    _validation.check_greater_than(scad_a, "scad_a", 2)
    # Only concrete values can be checked; traced ones (injected) are applied one after the other.
    on = [name for name, value in given.items() if _known_nonzero(value)]
    for name in ("l0", "mcp", "scad"):
      if name in on and len(on) > 1:
        others = ", ".join(other for other in on if other != name)
        raise ValueError(
          f"{name} cannot be combined with {others}: its closed-form prox is that of the "
          f"{name} penalty alone. Use {name} alone, or the convex penalties."
        )
    zero = lambda value: 0 if value is None else value  # noqa: E731
    return cls(
      zero(l1), zero(l2), zero(group_l1), axis, zero(l0), zero(mcp), mcp_gamma, zero(scad), scad_a
    )

  def at(self, count: jax.Array) -> Strengths:
    """The strengths at step ``count`` (schedules evaluated, numbers kept as they are)."""
    return self._replace(
      l1=_numerics.value_at(self.l1, count),
      l2=_numerics.value_at(self.l2, count),
      group_l1=_numerics.value_at(self.group_l1, count),
      l0=_numerics.value_at(self.l0, count),
      mcp=_numerics.value_at(self.mcp, count),
      scad=_numerics.value_at(self.scad, count),
    )


def _known_nonzero(value: Any) -> bool:
  """Whether a penalty is known to be on: a schedule, or a concrete value that is not zero
  (a traced value is not known)."""
  if value is None or isinstance(value, jax.core.Tracer):
    return False
  return callable(value) or bool(np.any(np.asarray(value) != 0))


def prox_in_metric(v: jax.Array, lr: Any, scale: Any, penalty: Strengths) -> jax.Array:
  r"""The prox of ``penalty`` at ``v`` for per-coordinate step sizes :math:`\eta_i = lr \cdot s_i`.

  .. math::

    \operatorname*{argmin}_y \sum_i \frac{(y_i - v_i)^2}{2\eta_i} + \text{penalty}(y)

  Elementwise penalties have closed forms: soft-thresholding by :math:`\eta_i l_1`, then
  division by :math:`1 + \eta_i l_2`, hard-thresholding at :math:`\sqrt{2\eta_i l_0}`, or the
  firm thresholds of MCP and SCAD with step :math:`\eta_i` (:func:`optax_l1.prox.mcp`). For a
  group, per-coordinate step sizes leave no closed form: the group takes one step size, that
  of its mean metric, :math:`\bar\eta_G = lr / \operatorname{mean}_{i\in G}(1/s_i)` (the
  harmonic mean of the :math:`\eta_i`), and is block soft-thresholded by
  :math:`\bar\eta_G\,\text{group\_l1}\sqrt{|G|}` after the elementwise soft threshold (the
  exact prox of the sparse group lasso when the step sizes are equal). Why the harmonic mean:
  a coordinate that never had a gradient (a constant input pixel, a dead ReLU upstream) has
  Adam step size :math:`lr/\epsilon`, which dominates an arithmetic mean or a maximum and would
  remove every group on the first step; the mean metric weighs it as one coordinate among many.

  Args:
    v: the point the optimizer steps to, in its compute dtype (at least float32).
    lr: the learning rate at this step (number or scalar array).
    scale: the per-coordinate factor :math:`s_i` (an array like ``v``, or a number).
    penalty: the strengths at this step.

  Returns:
    The new value of the leaf, in ``v``'s dtype.
  """
  out = v
  l1_step = _numerics.product(lr, penalty.l1)
  if not _numerics.is_static_zero(l1_step):
    out = prox._soft_threshold_leaf(out, _numerics.product(l1_step, scale))
  group_step = _numerics.product(lr, penalty.group_l1)
  if not _numerics.is_static_zero(group_step):
    split, axis = split_groups(out, penalty.group_axis)
    axes = _numerics.group_reduction_axes(split.shape, axis)
    group_size = math.prod(split.shape[i] for i in axes)
    group_scale = scale
    if jnp.ndim(scale):
      split_scale, _ = split_groups(jnp.broadcast_to(scale, v.shape), penalty.group_axis)
      group_scale = 1 / jnp.mean(1 / split_scale, axis=axes, keepdims=True)
    threshold = _numerics.product(group_step * math.sqrt(group_size), group_scale)
    out = prox._block_soft_threshold_leaf(split, threshold, axis).reshape(v.shape)
  l0_step = _numerics.product(lr, penalty.l0)
  if not _numerics.is_static_zero(l0_step):
    out = prox._hard_threshold_leaf(out, jnp.sqrt(2 * _numerics.product(l0_step, scale)))
  if not _numerics.is_static_zero(penalty.mcp):
    out = prox._mcp_leaf(out, penalty.mcp, _numerics.product(lr, scale), penalty.mcp_gamma)
  if not _numerics.is_static_zero(penalty.scad):
    out = prox._scad_leaf(out, penalty.scad, _numerics.product(lr, scale), penalty.scad_a)
  l2_step = _numerics.product(lr, penalty.l2)
  if not _numerics.is_static_zero(l2_step):
    out = out / (1 + _numerics.product(l2_step, scale))
  return out
