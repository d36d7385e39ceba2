"""Proximal operators of the L1 and elastic-net penalties, on arrays and pytrees.

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
  t = jnp.asarray(threshold).astype(dtype)
  # x − clip(x, −t, t): a removed entry is x − x = +0.0 exactly (never −0.0), and NaN stays NaN.
  return (xc - jnp.clip(xc, -t, t)).astype(x.dtype)


def shrink_leaf(x: jax.Array, l1_step: Any, l2_step: Any) -> jax.Array:
  """``soft(x, l1_step) / (1 + l2_step)`` in at least float32; a static zero ``l2_step`` is free."""
  dtype = compute_dtype(x.dtype)
  out = soft_threshold_leaf(x.astype(dtype), l1_step)
  if not is_static_zero(l2_step):
    out = out / (1 + jnp.asarray(l2_step).astype(dtype))
  return out.astype(x.dtype)


def _is_broadcastable(threshold: Any) -> bool:
  return isinstance(threshold, (int, float, np.ndarray, np.generic, jax.Array))


def _map_with_threshold(fn, x: Any, *thresholds: Threshold) -> Any:
  """Maps ``fn(leaf, *leaf_thresholds)`` over float leaves; other leaves pass unchanged."""

  def leaf_fn(leaf, *ts):
    leaf = jnp.asarray(leaf)
    return fn(leaf, *ts) if is_float_leaf(leaf) else leaf

  trees = []
  for t in thresholds:
    if _is_broadcastable(t):
      trees.append(jax.tree.map(lambda _, t=t: t, x))
    else:
      trees.append(_validation.broadcast_like(t, x, name="threshold"))
  return jax.tree.map(leaf_fn, x, *trees)


def soft_threshold(x: Any, threshold: Threshold) -> Any:
  r"""Soft-thresholding: the proximal operator of the L1 norm.

  Computes, for each entry,

  .. math::

    \operatorname{soft}(x, t) = \operatorname{sign}(x)\,\max(|x| - t, 0)
    = \operatorname*{argmin}_y \tfrac12 (x - y)^2 + t\,|y|,

  the prox of :math:`t\,\|\cdot\|_1` (jaxopt's ``prox_lasso`` with ``l1reg * scaling = t``).
  Entries with :math:`|x| \le t` become exactly ``0.0`` (``+0.0``); NaN stays NaN. It is
  computed as :math:`x - \operatorname{clip}(x, -t, t)`, so a negative threshold :math:`-c`,
  which has no meaning here and is not checked when traced, adds :math:`c` to every entry.

  Floating-point leaves are computed in at least float32 and cast back, so bfloat16 and
  float16 inputs land on exact zeros too. Integer and boolean leaves are returned unchanged.

  Args:
    x: an array or a pytree of arrays.
    threshold: the non-negative threshold :math:`t`: a number, an array broadcastable to
      every leaf of ``x``, or a pytree with the structure of ``x`` (one threshold per leaf).

  Returns:
    The soft-thresholded ``x``, with the structure, shapes and dtypes of ``x``.

  Raises:
    ValueError: if ``threshold`` is a pytree whose structure does not match ``x``.

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
    ValueError: if a pytree argument's structure does not match ``x``.

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
    return shrink_leaf(x, scaling * l1, 0 if is_static_zero(l2) else scaling * l2)

  return _map_with_threshold(leaf, x, l1, l2, scaling)
