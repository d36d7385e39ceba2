r"""``optax_l1.prox``: proximal operators, on arrays and pytrees.

Pure functions with no optimizer state, in two families:

- one per penalty, with one signature, ``prox.<penalty>(x, <strengths>, scaling=1.0)``:
  the minimiser of :math:`\tfrac12\|y - x\|_2^2 + s\cdot\text{penalty}(y)` (as jaxopt's
  ``prox_lasso(x, l1reg, scaling)``), with the strengths meaning what they mean in the
  optimizers (:func:`l1`, :func:`elastic_net`, :func:`group_l1`, :func:`l0`);
- the thresholding forms they are built from, taking the threshold itself
  (:func:`soft_threshold`, :func:`block_soft_threshold`, :func:`hard_threshold`).

Each is the exact minimiser of its objective, so entries the penalty removes come out as
exactly ``0.0``. Floating-point leaves are computed in at least float32 and cast back;
integer and boolean leaves are returned unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optax_l1 import _numerics, _validation

# A threshold: a number, an array broadcastable to each leaf, or a pytree of those
# with the structure of the input.
Threshold = Any


def _soft_threshold_leaf(x: jax.Array, threshold: Any) -> jax.Array:
  """Soft-thresholds one floating-point array; see :func:`soft_threshold`."""
  dtype = _numerics.compute_dtype(x.dtype)
  xc = x.astype(dtype)
  # x − clip(x, −t, t): a removed entry is x − x = +0.0 exactly (never −0.0).
  if isinstance(threshold, (int, float)):
    # A number is a constant in the compiled loop: max and min are one instruction each.
    # (lax, not jnp.clip: no nested jit to trace and lower for every leaf.)
    number = float(threshold)  # weakly typed: takes the leaf's dtype
    clipped = jax.lax.min(jax.lax.max(xc, -number), number)
    return (xc - clipped).astype(x.dtype)
  # An array (per-coordinate thresholds of adaptive optimizers, or a traced schedule value):
  # XLA's NaN-propagating max/min then compile to ~4 instructions each on x86 CPUs, while a
  # compare-and-select is one each: 6-9 % off an RMSProp step (benchmarks/threshold_forms.py).
  # The selects give the same result as jnp.clip, NaN included: a NaN in x reaches the result
  # through the subtraction, a NaN threshold through the selects, which pick it.
  t = jnp.broadcast_to(jnp.asarray(threshold).astype(dtype), xc.shape)
  neg_t = -t
  at_least = jax.lax.select(xc >= neg_t, xc, neg_t)
  clipped = jax.lax.select(at_least <= t, at_least, t)
  return (xc - clipped).astype(x.dtype)


def _block_soft_threshold_leaf(x: jax.Array, threshold: Any, axis: int) -> jax.Array:
  """Block soft-thresholds one floating-point array; see :func:`block_soft_threshold`."""
  dtype = _numerics.compute_dtype(x.dtype)
  xc = x.astype(dtype)
  t = jnp.asarray(threshold).astype(dtype)
  axes = _numerics.group_reduction_axes(x.shape, axis)
  # The norm, scaled by the group's largest |x| so that squares neither overflow nor
  # underflow. An all-zero group takes no division (no NaN value or gradient) and is kept only
  # by a zero threshold; a NaN in a group makes the whole group NaN rather than hiding it.
  largest = jnp.max(jnp.abs(xc), axis=axes, keepdims=True, initial=0)
  zero = largest == 0
  unit = jnp.where(zero, 1, largest)
  scaled = jnp.sum(jnp.square(xc * (1 / unit)), axis=axes, keepdims=True)  # >= 1 unless zero
  norm = unit * jnp.sqrt(jnp.where(zero, 1, scaled))
  # `norm <= t` rather than max(1 - t/norm, 0): no inf/inf, and a NaN norm stays NaN.
  shrink = jnp.where(norm <= t, jnp.zeros((), dtype), 1 - t / norm)
  factor = jnp.where(zero, (t <= 0).astype(dtype), shrink)
  return jnp.where(factor == 0, jnp.zeros((), dtype), xc * factor).astype(x.dtype)


def _hard_threshold_leaf(x: jax.Array, threshold: Any) -> jax.Array:
  """Hard-thresholds one floating-point array; see :func:`hard_threshold`."""
  dtype = _numerics.compute_dtype(x.dtype)
  xc = x.astype(dtype)
  keep = jnp.abs(xc) > jnp.asarray(threshold).astype(dtype)
  return jnp.where(keep, xc, jnp.zeros((), dtype)).astype(x.dtype)


def _is_broadcastable(threshold: Any) -> bool:
  return isinstance(threshold, (int, float, np.ndarray, np.generic, jax.Array))


def _map_with_threshold(fn, x: Any, *thresholds: Threshold, names=("threshold",)) -> Any:
  """Maps ``fn(leaf, *leaf_thresholds)`` over float leaves; other leaves pass unchanged."""

  def leaf_fn(leaf, *ts):
    leaf = jnp.asarray(leaf)
    if not _numerics.is_float_leaf(leaf):
      return leaf
    for t, name in zip(ts, names, strict=True):
      _validation.check_broadcasts(t, leaf.shape, name)
    return fn(leaf, *ts)

  trees = []
  for t, name in zip(thresholds, names, strict=True):
    if _is_broadcastable(t):
      trees.append(jax.tree.map(lambda _, t=t: t, x))
    else:
      trees.append(_numerics.broadcast_like(t, x, name=name))
  return jax.tree.map(leaf_fn, x, *trees)


def soft_threshold(x: Any, threshold: Threshold) -> Any:
  r"""Soft-thresholding: the proximal operator of the L1 norm.

  Computes, for each entry,

  .. math::

    \operatorname{soft}(x, t) = \operatorname{sign}(x)\,\max(|x| - t, 0)
    = \operatorname*{argmin}_y \tfrac12 (x - y)^2 + t\,|y|,

  the prox of :math:`t\,\|\cdot\|_1` (jaxopt's ``prox_lasso`` with ``l1reg * scaling = t``).
  Entries with :math:`|x| \le t` become exactly ``0.0`` (``+0.0``); NaN stays NaN, and a NaN
  threshold gives NaN, not zeros. It is computed as :math:`x - \operatorname{clip}(x, -t, t)`,
  so a negative threshold :math:`-c`, which has no meaning here and is not checked when
  traced, adds :math:`c` to every entry.

  Floating-point leaves are computed in at least float32 and cast back, so bfloat16 and
  float16 inputs land on exact zeros too. Integer and boolean leaves are returned unchanged.

  Args:
    x: an array or a pytree of arrays.
    threshold: the non-negative threshold :math:`t`: a number, an array broadcastable to
      every leaf of ``x``, or a pytree with the structure of ``x`` (one threshold per leaf).

  Returns:
    The soft-thresholded ``x``, with the structure, shapes and dtypes of ``x``.

  Raises:
    ValueError: if ``threshold`` is a pytree whose structure does not match ``x``, or an
      array that does not broadcast to a leaf.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_l1
    >>> optax_l1.soft_threshold(jnp.array([-2.0, -0.5, 0.25, 3.0]), 1.0)
    Array([-1.,  0.,  0.,  2.], dtype=float32)

  References:
    Donoho, `De-noising by soft-thresholding
    <https://doi.org/10.1109/18.382009>`_, 1995

  .. seealso:: :func:`prox_elastic_net`, :func:`l1_prox`
  """
  return _map_with_threshold(_soft_threshold_leaf, x, threshold)


def elastic_net(x: Any, l1: Threshold, l2: Threshold = 0.0, scaling: Threshold = 1.0) -> Any:
  r"""Proximal operator of the elastic-net penalty.

  .. math::

    \operatorname*{argmin}_y \tfrac12 \|x - y\|_2^2
      + s \left(\lambda_1 \|y\|_1 + \tfrac{\lambda_2}{2} \|y\|_2^2\right)
    = \frac{\operatorname{soft}(x, s\lambda_1)}{1 + s\lambda_2}.

  This is the penalty :math:`\lambda_1\|w\|_1 + \tfrac{\lambda_2}{2}\|w\|_2^2`, the same
  :math:`\lambda_1` as ``keras.regularizers.l1``; with ``l2=0`` it is :func:`soft_threshold`
  with threshold ``scaling * l1``. (jaxopt's ``prox_elastic_net`` parametrises the L2 term
  as a multiple of ``l1``; here the two strengths are independent.)

  Args:
    x: an array or a pytree of arrays.
    l1: the L1 strength :math:`\lambda_1 \ge 0` (number, broadcastable array, or pytree
      matching ``x``).
    l2: the L2 strength :math:`\lambda_2 \ge 0` (same forms).
    scaling: the step size :math:`s \ge 0` (same forms), e.g. a learning rate.

  Returns:
    The prox of ``x``, with the structure, shapes and dtypes of ``x``. Integer and boolean
    leaves are returned unchanged.

  Raises:
    ValueError: if a pytree argument's structure does not match ``x``, or an array argument
      does not broadcast to a leaf.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_l1
    >>> optax_l1.prox.elastic_net(jnp.array([-2.0, 0.5, 3.0]), l1=1.0, l2=1.0)
    Array([-0.5,  0. ,  1. ], dtype=float32)

  References:
    Zou & Hastie, `Regularization and variable selection via the elastic net
    <https://doi.org/10.1111/j.1467-9868.2005.00503.x>`_, 2005

  .. seealso:: :func:`l1`, :func:`soft_threshold`; ``optax_l1.prox_elastic_net`` is this
    function.
  """

  def leaf(x, l1, l2, scaling):
    dtype = _numerics.compute_dtype(x.dtype)
    scaling = jnp.asarray(scaling).astype(dtype)
    out = _soft_threshold_leaf(x.astype(dtype), scaling * l1)
    if not _numerics.is_static_zero(l2):
      out = out / (1 + scaling * jnp.asarray(l2).astype(dtype))
    return out.astype(x.dtype)

  return _map_with_threshold(leaf, x, l1, l2, scaling, names=("l1", "l2", "scaling"))


prox_elastic_net = elastic_net  # the name of the first release, kept


def block_soft_threshold(x: Any, threshold: Threshold, *, axis: int = -1) -> Any:
  r"""Block soft-thresholding: the proximal operator of a sum of group norms.

  Each index :math:`j` along ``axis`` is one group :math:`G_j` (for a Dense kernel of shape
  ``(in, out)`` and ``axis=-1``, the weights into output unit :math:`j`); each group is
  shrunk towards zero as a whole:

  .. math::

    x_{G} \leftarrow \max\left(0,\ 1 - \frac{t}{\|x_{G}\|_2}\right) x_{G}
    = \operatorname*{argmin}_{y_G} \tfrac12 \|x_G - y_G\|_2^2 + t\,\|y_G\|_2 .

  Groups with :math:`\|x_G\|_2 \le t` become exactly ``0.0``. No :math:`\sqrt{|G|}` weight is
  applied here (:func:`group_l1_prox` applies it); an all-zero group stays zero without any
  division by zero.

  Args:
    x: an array or a pytree of arrays (integer and boolean leaves are returned unchanged).
    threshold: :math:`t \ge 0`: a number, an array broadcastable to the per-group norms (shape
      of the leaf with every axis but ``axis`` of size 1), or a pytree matching ``x``.
    axis: the axis that indexes the groups.

  Returns:
    The block soft-thresholded ``x``, with its structure, shapes and dtypes.

  Raises:
    ValueError: if ``axis`` is out of range for a leaf, or a pytree threshold does not match.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_l1
    >>> kernel = jnp.array([[3.0, 0.3], [4.0, -0.4]])  # column norms 5 and 0.5
    >>> optax_l1.block_soft_threshold(kernel, 1.0)
    Array([[2.4, 0. ],
           [3.2, 0. ]], dtype=float32)

  References:
    Yuan & Lin, `Model selection and estimation in regression with grouped variables
    <https://doi.org/10.1111/j.1467-9868.2005.00532.x>`_, 2006

  .. seealso:: :func:`soft_threshold`, :func:`group_l1_prox`
  """

  axis = _validation.check_axis(axis, "axis")

  def leaf(x, t):
    return _block_soft_threshold_leaf(x, t, axis)

  return _map_with_threshold(leaf, x, threshold)


def hard_threshold(x: Any, threshold: Threshold) -> Any:
  r"""Hard-thresholding: the proximal operator of the L0 "norm".

  .. math::

    x \leftarrow x \cdot \mathbb{1}[|x| > t]
    \in \operatorname*{argmin}_y \tfrac12 (x - y)^2 + \tfrac{t^2}{2} \|y\|_0 .

  Unlike :func:`soft_threshold` it does not shrink the entries it keeps, and it is not
  continuous (nor is its objective convex): see :func:`optax_l1.proximal`'s ``l0``.

  Args:
    x: an array or a pytree of arrays (integer and boolean leaves are returned unchanged).
    threshold: :math:`t \ge 0`: a number, an array broadcastable to every leaf of ``x``, or a
      pytree matching ``x``.

  Returns:
    ``x`` with the entries :math:`|x| \le t` set to exactly ``0.0``.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_l1
    >>> optax_l1.hard_threshold(jnp.array([-2.0, -0.5, 0.25, 3.0]), 1.0)
    Array([-2.,  0.,  0.,  3.], dtype=float32)

  References:
    Blumensath & Davies, `Iterative hard thresholding for compressed sensing
    <https://doi.org/10.1016/j.acha.2009.04.002>`_, 2009
  """
  return _map_with_threshold(_hard_threshold_leaf, x, threshold)


def l1(x: Any, l1: Threshold, scaling: Threshold = 1.0) -> Any:
  r"""Proximal operator of the L1 penalty (the lasso).

  .. math::

    \operatorname*{argmin}_y \tfrac12 \|x - y\|_2^2 + s\,\lambda_1 \|y\|_1
    = \operatorname{soft}(x, s\lambda_1),

  jaxopt's ``prox_lasso(x, l1reg=l1, scaling=s)``; :math:`\lambda_1` is the strength of
  ``keras.regularizers.l1`` and of the optimizers' ``l1``.

  Args:
    x: an array or a pytree of arrays.
    l1: the L1 strength :math:`\lambda_1 \ge 0` (a number, an array broadcastable to every
      leaf, or a pytree matching ``x``).
    scaling: the step size :math:`s \ge 0` (same forms), e.g. a learning rate.

  Returns:
    The prox of ``x``, with the structure, shapes and dtypes of ``x``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from optax_l1 import prox
    >>> prox.l1(jnp.array([-2.0, -0.5, 0.25, 3.0]), l1=2.0, scaling=0.5)
    Array([-1.,  0.,  0.,  2.], dtype=float32)

  References:
    Tibshirani, `Regression shrinkage and selection via the lasso
    <https://doi.org/10.1111/j.2517-6161.1996.tb02080.x>`_, 1996

  .. seealso:: :func:`soft_threshold`, :func:`elastic_net`
  """
  return elastic_net(x, l1, 0.0, scaling)


def group_l1(x: Any, group_l1: Threshold, scaling: Threshold = 1.0, *, axis: int = -1) -> Any:
  r"""Proximal operator of the group-L1 penalty (the group lasso), groups along ``axis``.

  Each index :math:`j` along ``axis`` is one group :math:`G` (with ``axis=-1``, the weights into
  one output unit of a Dense kernel ``(in, out)`` or a conv kernel ``(..., in, out)``); the
  penalty is :math:`\lambda \sum_G \sqrt{|G|}\,\|x_G\|_2`, as the optimizers' ``group_l1``:

  .. math::

    \operatorname*{argmin}_y \tfrac12 \|x - y\|_2^2 + s\lambda \sum_G \sqrt{|G|}\,\|y_G\|_2
    \;:\; y_G = \max\left(0,\ 1 - \frac{s\lambda\sqrt{|G|}}{\|x_G\|_2}\right) x_G .

  The :math:`\sqrt{|G|}` weight puts :math:`\lambda` on the scale of elementwise L1 (a group
  of one is penalised exactly as by :func:`l1`). Whole groups land on exactly ``0.0``.

  Args:
    x: an array or a pytree of arrays.
    group_l1: the group strength :math:`\lambda \ge 0` (a number, an array broadcastable to
      the per-group norms, or a pytree matching ``x``).
    scaling: the step size :math:`s \ge 0`: a number or a scalar array.
    axis: the axis whose indices are the groups.

  Returns:
    The prox of ``x``, with the structure, shapes and dtypes of ``x``.

  Raises:
    ValueError: if ``axis`` is out of range for a leaf, or a pytree argument does not match.

  Examples:
    >>> import jax.numpy as jnp
    >>> from optax_l1 import prox
    >>> kernel = jnp.array([[3.0, 0.3], [4.0, -0.4]])  # column norms 5 and 0.5, |G| = 2
    >>> prox.group_l1(kernel, group_l1=1.0, scaling=0.5 ** 0.5)  # threshold 1
    Array([[2.4, 0. ],
           [3.2, 0. ]], dtype=float32)

  References:
    Yuan & Lin, `Model selection and estimation in regression with grouped variables
    <https://doi.org/10.1111/j.1467-9868.2005.00532.x>`_, 2006

  .. seealso:: :func:`block_soft_threshold`
  """
  axis = _validation.check_axis(axis, "axis")

  def leaf(x, strength, scaling):
    axes = _numerics.group_reduction_axes(x.shape, axis)
    size = math.prod(x.shape[i] for i in axes)
    threshold = jnp.asarray(scaling) * jnp.asarray(strength) * math.sqrt(size)
    return _block_soft_threshold_leaf(x, threshold, axis)

  return _map_with_threshold(leaf, x, group_l1, scaling, names=("group_l1", "scaling"))


def l0(x: Any, l0: Threshold, scaling: Threshold = 1.0) -> Any:
  r"""Proximal operator of the L0 penalty (the number of non-zeros): a hard threshold.

  .. math::

    \operatorname*{argmin}_y \tfrac12 \|x - y\|_2^2 + s\lambda_0 \|y\|_0
    \ni x \cdot \mathbb{1}\left[|x| > \sqrt{2 s \lambda_0}\right]

  (at :math:`|x| = \sqrt{2s\lambda_0}` both 0 and :math:`x` are minimisers; this returns 0).
  Non-convex: kept entries are not shrunk.

  Args:
    x: an array or a pytree of arrays.
    l0: the L0 strength :math:`\lambda_0 \ge 0` (a number, an array broadcastable to every
      leaf, or a pytree matching ``x``).
    scaling: the step size :math:`s \ge 0` (same forms).

  Returns:
    The prox of ``x``, with the structure, shapes and dtypes of ``x``.

  Examples:
    >>> import jax.numpy as jnp
    >>> from optax_l1 import prox
    >>> prox.l0(jnp.array([-2.0, -0.5, 0.25, 3.0]), l0=0.5)  # threshold sqrt(2 * 0.5) = 1
    Array([-2.,  0.,  0.,  3.], dtype=float32)

  References:
    Blumensath & Davies, `Iterative hard thresholding for compressed sensing
    <https://doi.org/10.1016/j.acha.2009.04.002>`_, 2009

  .. seealso:: :func:`hard_threshold`
  """

  def leaf(x, strength, scaling):
    dtype = _numerics.compute_dtype(x.dtype)
    step = jnp.asarray(scaling).astype(dtype) * jnp.asarray(strength).astype(dtype)
    return _hard_threshold_leaf(x, jnp.sqrt(2 * step))

  return _map_with_threshold(leaf, x, l0, scaling, names=("l0", "scaling"))


__all__ = [
  "block_soft_threshold",
  "elastic_net",
  "group_l1",
  "hard_threshold",
  "l0",
  "l1",
  "soft_threshold",
]
