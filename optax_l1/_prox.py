"""Proximal operators of the L1, elastic-net, group-L1 and L0 penalties, on arrays and pytrees.

Pure functions with no optimizer state. Each is the exact minimiser of its
objective, so entries the penalty removes come out as exactly ``0.0``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optax_l1 import _validation

# A threshold: a number, an array broadcastable to each leaf, or a pytree of those
# with the structure of the input.
Threshold = Any


def compute_dtype(dtype: Any) -> Any:
  """The dtype to compute a leaf's prox in: at least float32, so that bf16/f16 are exact."""
  return jnp.promote_types(dtype, jnp.float32)


def is_float_leaf(x: Any) -> bool:
  """Whether a leaf is a floating-point array (integer and bool leaves are never shrunk)."""
  return jnp.issubdtype(jnp.result_type(x), jnp.floating)


def is_static_zero(value: Any) -> bool:
  """Whether ``value`` is the Python number 0 (known when tracing, so its term can be skipped)."""
  return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def soft_threshold_leaf(x: jax.Array, threshold: Any) -> jax.Array:
  """Soft-thresholds one floating-point array; see :func:`soft_threshold`."""
  dtype = compute_dtype(x.dtype)
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


def group_reduction_axes(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
  """The axes a group's norm is taken over: all but ``axis`` (each index along it is a group)."""
  ndim = len(shape)
  axis = _validation.check_axis(axis, "axis")
  if not -ndim <= axis < ndim:
    raise ValueError(
      f"group axis {axis} is out of range for a leaf of shape {shape}: pass an axis in "
      f"[-{ndim}, {ndim}), or leave this leaf out with `mask`."
    )
  axis %= ndim
  return tuple(i for i in range(ndim) if i != axis)


def block_soft_threshold_leaf(x: jax.Array, threshold: Any, axis: int) -> jax.Array:
  """Block soft-thresholds one floating-point array; see :func:`block_soft_threshold`."""
  dtype = compute_dtype(x.dtype)
  xc = x.astype(dtype)
  t = jnp.asarray(threshold).astype(dtype)
  axes = group_reduction_axes(x.shape, axis)
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


def hard_threshold_leaf(x: jax.Array, threshold: Any) -> jax.Array:
  """Hard-thresholds one floating-point array; see :func:`hard_threshold`."""
  dtype = compute_dtype(x.dtype)
  xc = x.astype(dtype)
  keep = jnp.abs(xc) > jnp.asarray(threshold).astype(dtype)
  return jnp.where(keep, xc, jnp.zeros((), dtype)).astype(x.dtype)


def _is_broadcastable(threshold: Any) -> bool:
  return isinstance(threshold, (int, float, np.ndarray, np.generic, jax.Array))


def _check_broadcasts(threshold: Any, shape: tuple[int, ...], name: str) -> None:
  """Raises a ValueError naming ``name`` unless ``threshold`` broadcasts to ``shape``."""
  try:
    fits = np.broadcast_shapes(np.shape(threshold), shape) == shape
  except ValueError:
    fits = False
  if not fits:
    raise ValueError(
      f"{name} of shape {np.shape(threshold)} does not broadcast to a leaf of shape {shape}: "
      "pass a number, an array that broadcasts to every leaf, or a pytree with the "
      "structure of x (one value per leaf)."
    )


def _map_with_threshold(fn, x: Any, *thresholds: Threshold, names=("threshold",)) -> Any:
  """Maps ``fn(leaf, *leaf_thresholds)`` over float leaves; other leaves pass unchanged."""

  def leaf_fn(leaf, *ts):
    leaf = jnp.asarray(leaf)
    if not is_float_leaf(leaf):
      return leaf
    for t, name in zip(ts, names, strict=True):
      _check_broadcasts(t, leaf.shape, name)
    return fn(leaf, *ts)

  trees = []
  for t, name in zip(thresholds, names, strict=True):
    if _is_broadcastable(t):
      trees.append(jax.tree.map(lambda _, t=t: t, x))
    else:
      trees.append(_validation.broadcast_like(t, x, name=name))
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
  return _map_with_threshold(soft_threshold_leaf, x, threshold)


def prox_elastic_net(x: Any, l1: Threshold, l2: Threshold = 0.0, scaling: Threshold = 1.0) -> Any:
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
    >>> optax_l1.prox_elastic_net(jnp.array([-2.0, 0.5, 3.0]), l1=1.0, l2=1.0)
    Array([-0.5,  0. ,  1. ], dtype=float32)

  References:
    Zou & Hastie, `Regularization and variable selection via the elastic net
    <https://doi.org/10.1111/j.1467-9868.2005.00503.x>`_, 2005

  .. seealso:: :func:`soft_threshold`
  """

  def leaf(x, l1, l2, scaling):
    dtype = compute_dtype(x.dtype)
    scaling = jnp.asarray(scaling).astype(dtype)
    out = soft_threshold_leaf(x.astype(dtype), scaling * l1)
    if not is_static_zero(l2):
      out = out / (1 + scaling * jnp.asarray(l2).astype(dtype))
    return out.astype(x.dtype)

  return _map_with_threshold(leaf, x, l1, l2, scaling, names=("l1", "l2", "scaling"))


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

  def leaf(x, t):
    return block_soft_threshold_leaf(x, t, axis)

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
  return _map_with_threshold(hard_threshold_leaf, x, threshold)
