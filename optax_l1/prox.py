r"""``optax_l1.prox``: proximal operators, on arrays and pytrees.

Pure functions with no optimizer state, in two families:

- one per penalty, with one signature, ``prox.<penalty>(x, <strengths>, scaling=1.0)``:
  the minimiser of :math:`\tfrac12\|y - x\|_2^2 + s\cdot\text{penalty}(y)` (as jaxopt's
  ``prox_lasso(x, l1reg, scaling)``), with the strengths meaning what they mean in the
  optimizers (:func:`l1`, :func:`elastic_net`, :func:`group_l1`, :func:`l0`,
  :func:`mcp`, :func:`scad`);
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
from optax_l1._groups import GroupAxis, as_layout, check_layout, split_groups

# A threshold: a number, an array broadcastable to each leaf, or a pytree of those
# with the structure of the input.
Threshold = Any


def _soft_threshold_leaf(x: jax.Array, threshold: Any) -> jax.Array:
  """Soft-thresholds one floating-point or complex array; see :func:`soft_threshold`."""
  dtype = _numerics.compute_dtype(x.dtype)
  xc = x.astype(dtype)
  if jnp.iscomplexobj(xc):
    return _complex_soft_threshold(xc, threshold).astype(x.dtype)
  # x − clip(x, −t, t): a removed entry is x − x = +0.0 exactly (never −0.0).
  if isinstance(threshold, (int, float)):
    # A number is a constant in the compiled loop: max and min are one instruction each.
    # (lax, not jnp.clip: no nested jit to trace and lower for every leaf.) It is cast to the
    # compute dtype here: lax does not promote, and with jax_enable_x64 a Python float is
    # float64.
    number = np.asarray(threshold, dtype)
    clipped = jax.lax.min(jax.lax.max(xc, -number), number)
    return (xc - clipped).astype(x.dtype)
  # An array (per-coordinate thresholds of adaptive optimizers, or a traced schedule value):
  # XLA's NaN-propagating max/min then compile to ~4 instructions each on x86 CPUs, while a
  # compare-and-select is one each (benchmarks/threshold_forms.py measures both).
  # The selects give the same result as jnp.clip, NaN included: a NaN in x reaches the result
  # through the subtraction, a NaN threshold through the selects, which pick it.
  t = jnp.broadcast_to(jnp.asarray(threshold).astype(dtype), xc.shape)
  neg_t = -t
  at_least = jax.lax.select(xc >= neg_t, xc, neg_t)
  clipped = jax.lax.select(at_least <= t, at_least, t)
  return (xc - clipped).astype(x.dtype)


def _complex_soft_threshold(z: jax.Array, threshold: Any) -> jax.Array:
  """The prox of t·|z| on complex entries: z·max(0, 1 − t/|z|), exactly 0 where |z| <= t."""
  t = jnp.asarray(threshold).astype(_numerics.real_dtype(z.dtype))
  magnitude = jnp.abs(z)
  keep = magnitude > t
  factor = jnp.where(keep, 1 - t / jnp.where(keep, magnitude, 1), 0)
  # NaN in, NaN out (a NaN entry or threshold), as for real entries; a removed entry is +0.
  nan = jnp.isnan(magnitude) | jnp.isnan(t)
  factor = jnp.where(jnp.isnan(t), t, factor)
  return jnp.where(keep | nan, z * factor.astype(z.dtype), jnp.zeros((), z.dtype))


def _block_soft_threshold_leaf(x: jax.Array, threshold: Any, axis: int) -> jax.Array:
  """Block soft-thresholds one floating-point or complex array; see
  :func:`block_soft_threshold`."""
  dtype = _numerics.compute_dtype(x.dtype)
  real = _numerics.real_dtype(dtype)
  xc = x.astype(dtype)
  t = jnp.asarray(threshold).astype(real)
  axes = _numerics.group_reduction_axes(x.shape, axis)
  # One pass in the common case: the plain sum of squares. It is the norm to rounding unless a
  # square overflowed (not finite: also a NaN or inf entry) or the squares are so small that
  # flushed ones matter (below `size · tiny / eps`); then the whole leaf takes the scaled form.
  # A sum of exactly 0 is an all-zero group, or one of entries below sqrt(tiny) whose norm is
  # at most `floor`: a threshold of 0 or above `floor` gives both the same result (kept as is,
  # or removed); any other threshold takes the scaled form too.
  size = math.prod(x.shape[i] for i in axes)
  squares = jnp.sum(_squared_magnitude(xc), axis=axes, keepdims=True)
  finfo = jnp.finfo(real)
  smallest = np.asarray(size * float(finfo.tiny) / float(finfo.eps), real)
  floor = np.asarray(2 * math.sqrt(size * float(finfo.tiny)), real)
  nothing = squares == 0
  plain = jnp.isfinite(squares) & (squares >= smallest)
  plain |= nothing & ((t == 0) | (t > floor))
  norm, zero = jax.lax.cond(
    jnp.all(plain),
    lambda xc: (jnp.sqrt(jnp.where(nothing, 1, squares)), nothing),
    lambda xc: _scaled_group_norm(xc, axes),
    xc,
  )
  # `norm <= t` rather than max(1 - t/norm, 0): no inf/inf, and a NaN norm stays NaN.
  shrink = jnp.where(norm <= t, jnp.zeros((), real), 1 - t / norm)
  factor = jnp.where(zero, (t <= 0).astype(real), shrink)
  return jnp.where(factor == 0, jnp.zeros((), dtype), xc * factor.astype(dtype)).astype(x.dtype)


def _squared_magnitude(x: jax.Array) -> jax.Array:
  if jnp.iscomplexobj(x):
    return jnp.square(x.real) + jnp.square(x.imag)
  return jnp.square(x)


def _scaled_group_norm(x: jax.Array, axes: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
  """The groups' norms, scaled by each group's largest |x| so that squares neither overflow nor
  underflow, and which groups are all zero. An all-zero group takes no division (no NaN value or
  gradient); a NaN in a group makes its norm NaN rather than hiding it."""
  magnitude = jnp.abs(x)
  largest = jnp.max(magnitude, axis=axes, keepdims=True, initial=0)
  zero = largest == 0
  unit = jnp.where(zero, 1, largest)
  scaled = jnp.sum(jnp.square(magnitude * (1 / unit)), axis=axes, keepdims=True)  # >= 1
  return unit * jnp.sqrt(jnp.where(zero, 1, scaled)), zero


def _hard_threshold_leaf(x: jax.Array, threshold: Any) -> jax.Array:
  """Hard-thresholds one floating-point or complex array; see :func:`hard_threshold`."""
  dtype = _numerics.compute_dtype(x.dtype)
  xc = x.astype(dtype)
  keep = jnp.abs(xc) > jnp.asarray(threshold).astype(_numerics.real_dtype(dtype))
  return jnp.where(keep, xc, jnp.zeros((), dtype)).astype(x.dtype)


def _is_broadcastable(threshold: Any) -> bool:
  return isinstance(threshold, (int, float, np.ndarray, np.generic, jax.Array))


def _threshold_trees(x: Any, thresholds: tuple[Threshold, ...], names) -> list[Any]:
  """Each threshold as a pytree matching ``x``: a number or array repeated per leaf."""
  trees = []
  for t, name in zip(thresholds, names, strict=True):
    if _is_broadcastable(t):
      trees.append(jax.tree.map(lambda _, t=t: t, x))
    else:
      trees.append(_numerics.broadcast_like(t, x, name=name))
  return trees


def _map_with_threshold(fn, x: Any, *thresholds: Threshold, names=("threshold",)) -> Any:
  """Maps ``fn(leaf, *leaf_thresholds)`` over float and complex leaves; other leaves pass
  unchanged. Each threshold must broadcast to its leaf."""

  def leaf_fn(leaf, *ts):
    leaf = jnp.asarray(leaf)
    if not _numerics.is_inexact_leaf(leaf):
      return leaf
    for t, name in zip(ts, names, strict=True):
      _validation.check_broadcasts(t, leaf.shape, name)
    return fn(leaf, *ts)

  return jax.tree.map(leaf_fn, x, *_threshold_trees(x, thresholds, names))


def _map_over_groups(fn, x: Any, layout: int | GroupAxis, *thresholds: Threshold, names) -> Any:
  """Maps ``fn(split_leaf, split_axis, *leaf_thresholds)`` over float and complex leaves, each
  reshaped so that one axis indexes its groups (:func:`split_groups`); each threshold must
  broadcast to the per-group norms of the split leaf (its shape with every other axis of size 1)."""

  def leaf_fn(leaf, *ts):
    leaf = jnp.asarray(leaf)
    if not _numerics.is_inexact_leaf(leaf):
      return leaf
    check_layout(layout, leaf.shape, argument="axis")
    split, axis = split_groups(leaf, layout)
    axes = _numerics.group_reduction_axes(split.shape, axis)
    norms = tuple(1 if i in axes else n for i, n in enumerate(split.shape))
    for t, name in zip(ts, names, strict=True):
      _validation.check_broadcasts(t, norms, name, groups=True)
    return fn(split, axis, *ts).reshape(leaf.shape)

  return jax.tree.map(leaf_fn, x, *_threshold_trees(x, thresholds, names))


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
    scaling = jnp.asarray(scaling).astype(_numerics.real_dtype(dtype))
    out = _soft_threshold_leaf(x.astype(dtype), scaling * l1)
    if not _numerics.is_static_zero(l2):
      out = out / (1 + scaling * jnp.asarray(l2).astype(scaling.dtype))
    return out.astype(x.dtype)

  return _map_with_threshold(leaf, x, l1, l2, scaling, names=("l1", "l2", "scaling"))


prox_elastic_net = elastic_net  # the name of the first release, kept


def block_soft_threshold(x: Any, threshold: Threshold, *, axis: int | GroupAxis = -1) -> Any:
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
      of the leaf with every axis but ``axis`` of size 1; with a :class:`~optax_l1.GroupAxis`,
      ``axis`` split into ``(groups, 1)``), or a pytree matching ``x``.
    axis: the axis that indexes the groups, or an :class:`optax_l1.GroupAxis` for groups of
      ``size`` consecutive indices along its axis (one attention head's columns of Equinox's
      output projection ``(out, heads·head_dim)``: ``GroupAxis(1, head_dim)``).

  Returns:
    The block soft-thresholded ``x``, with its structure, shapes and dtypes.

  Raises:
    ValueError: if ``axis`` is out of range for a leaf, a ``GroupAxis`` size does not divide
      its length, or a pytree threshold does not match.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_l1
    >>> kernel = jnp.array([[3.0, 0.3], [4.0, -0.4]])  # column norms 5 and 0.5
    >>> optax_l1.block_soft_threshold(kernel, 1.0)
    Array([[2.4, 0. ],
           [3.2, 0. ]], dtype=float32)
    >>> weight = jnp.array([[3.0, 0.0, 0.1, 0.0], [4.0, 0.0, 0.0, 0.1]])  # 2 heads of 2 columns
    >>> optax_l1.block_soft_threshold(weight, 1.0, axis=optax_l1.GroupAxis(1, size=2))
    Array([[2.4, 0. , 0. , 0. ],
           [3.2, 0. , 0. , 0. ]], dtype=float32)

  References:
    Yuan & Lin, `Model selection and estimation in regression with grouped variables
    <https://doi.org/10.1111/j.1467-9868.2005.00532.x>`_, 2006

  .. seealso:: :func:`soft_threshold`, :func:`group_l1_prox`
  """

  def leaf(x, axis, t):
    return _block_soft_threshold_leaf(x, t, axis)

  return _map_over_groups(leaf, x, as_layout(axis, "axis"), threshold, names=("threshold",))


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


def group_l1(
  x: Any, group_l1: Threshold, scaling: Threshold = 1.0, *, axis: int | GroupAxis = -1
) -> Any:
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
    axis: the axis whose indices are the groups, or an :class:`optax_l1.GroupAxis` (groups of
      ``size`` consecutive indices along its axis, each spanning the other axes), as in
      :func:`block_soft_threshold`.

  Returns:
    The prox of ``x``, with the structure, shapes and dtypes of ``x``.

  Raises:
    ValueError: if ``axis`` is out of range for a leaf, a ``GroupAxis`` size does not divide
      its length, or a pytree argument does not match.

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

  def leaf(x, axis, strength, scaling):
    axes = _numerics.group_reduction_axes(x.shape, axis)
    size = math.prod(x.shape[i] for i in axes)
    threshold = jnp.asarray(scaling) * jnp.asarray(strength) * math.sqrt(size)
    return _block_soft_threshold_leaf(x, threshold, axis)

  return _map_over_groups(
    leaf, x, as_layout(axis, "axis"), group_l1, scaling, names=("group_l1", "scaling")
  )


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
    real = _numerics.real_dtype(_numerics.compute_dtype(x.dtype))
    step = jnp.asarray(scaling).astype(real) * jnp.asarray(strength).astype(real)
    return _hard_threshold_leaf(x, jnp.sqrt(2 * step))

  return _map_with_threshold(leaf, x, l0, scaling, names=("l0", "scaling"))


def _radial_prox_leaf(x: jax.Array, real_prox) -> jax.Array:
  """``real_prox`` (the prox of a penalty of |y|, on real arrays) applied to one floating-point
  array in at least float32, or to the modulus of a complex one: z·prox(|z|)/|z|."""
  dtype = _numerics.compute_dtype(x.dtype)
  xc = x.astype(dtype)
  if not jnp.iscomplexobj(xc):
    return real_prox(xc).astype(x.dtype)
  magnitude = jnp.abs(xc)
  shrunk = real_prox(magnitude)
  # A kept entry is returned as it is (no inf·0 in the complex product); a removed one is +0;
  # a NaN modulus gives a NaN factor.
  factor = shrunk / jnp.where(magnitude == 0, 1, magnitude)
  scaled = jnp.where(shrunk == 0, jnp.zeros((), dtype), xc * factor.astype(dtype))
  return jnp.where(shrunk == magnitude, xc, scaled).astype(x.dtype)


def _mcp_real(x: jax.Array, strength: Any, step: Any, gamma: Any) -> jax.Array:
  """The prox of MCP on a real array in its compute dtype; see :func:`mcp`."""
  lam, s, g = (jnp.asarray(v).astype(x.dtype) for v in (strength, step, gamma))
  magnitude = jnp.abs(x)
  soft = _soft_threshold_leaf(x, s * lam)  # +0.0 where removed
  # s < γ: the objective is strictly convex; firm thresholding up to γλ, x beyond.
  convex = s < g
  firm = soft / jnp.where(convex, 1 - s / g, 1)  # no division by 0 in the unused branch
  convex_prox = jnp.where(magnitude > g * lam, x, firm)
  # s >= γ: the objective is concave on |y| <= γλ, so the minimiser is 0 or x: x²/(2s) against
  # γλ²/2. (A NaN x fails the test and is returned as it is.)
  hard_prox = jnp.where(magnitude <= lam * jnp.sqrt(s * g), jnp.zeros((), x.dtype), x)
  out = jnp.where(convex, convex_prox, hard_prox)
  # NaN in (x, λ, s or γ), NaN out.
  return jnp.where(jnp.isnan(soft) | jnp.isnan(g), jnp.nan, out)


def _mcp_leaf(x: jax.Array, strength: Any, step: Any, gamma: Any) -> jax.Array:
  """The prox of MCP on one floating-point or complex array (no pytrees, no checks), in at
  least float32; ``strength``, ``step`` (per coordinate, e.g. learning rate × scale) and
  ``gamma`` broadcast to ``x``. See :func:`mcp`."""
  return _radial_prox_leaf(x, lambda m: _mcp_real(m, strength, step, gamma))


def _scad_real(x: jax.Array, strength: Any, step: Any, a: Any) -> jax.Array:
  """The prox of SCAD on a real array in its compute dtype; see :func:`scad`."""
  lam, s, a = (jnp.asarray(v).astype(x.dtype) for v in (strength, step, a))
  magnitude = jnp.abs(x)
  soft = _soft_threshold_leaf(x, s * lam)  # +0.0 where removed
  # s < a − 1: strictly convex. Soft up to (1 + s)λ; then the middle piece's stationary point
  # ((a − 1)x − sign(x)·saλ)/(a − 1 − s) = (a·soft − x)/(a − 1 − s), up to aλ; x beyond.
  convex = s < a - 1
  middle = (a * soft - x) / jnp.where(convex, a - 1 - s, 1)
  convex_prox = jnp.where(
    magnitude <= (1 + s) * lam, soft, jnp.where(magnitude <= a * lam, middle, x)
  )
  # s >= a − 1: concave on the middle piece, so the minimiser is the first piece's (soft) or
  # the last's (x); x wins beyond the |x| where their objectives cross, on the quadratic part
  # of the first piece's value (s >= a + 1) or on its linear part.
  crossing = jnp.where(s >= a + 1, lam * jnp.sqrt(s * (a + 1)), lam * (s + a + 1) / 2)
  nonconvex_prox = jnp.where(magnitude <= crossing, soft, x)
  out = jnp.where(convex, convex_prox, nonconvex_prox)
  # NaN in (x, λ, s or a), NaN out.
  return jnp.where(jnp.isnan(soft) | jnp.isnan(a), jnp.nan, out)


def _scad_leaf(x: jax.Array, strength: Any, step: Any, a: Any) -> jax.Array:
  """The prox of SCAD on one floating-point or complex array (no pytrees, no checks), in at
  least float32; ``strength``, ``step`` (per coordinate, e.g. learning rate × scale) and ``a``
  broadcast to ``x``. See :func:`scad`."""
  return _radial_prox_leaf(x, lambda m: _scad_real(m, strength, step, a))


def mcp(x: Any, mcp: Threshold, scaling: Threshold = 1.0, *, gamma: Any = 3.0) -> Any:
  r"""Proximal operator of the minimax concave penalty (MCP): firm or hard thresholding.

  With :math:`\lambda` = ``mcp`` and :math:`\gamma` = ``gamma``, the penalty of each entry is

  .. math::

    P(y) = \begin{cases}
      \lambda|y| - \dfrac{y^2}{2\gamma} & |y| \le \gamma\lambda, \\
      \dfrac{\gamma\lambda^2}{2} & |y| > \gamma\lambda,
    \end{cases}

  the L1 penalty near zero, bending to a constant at :math:`\gamma\lambda`, so that large
  entries are not shrunk (:math:`\gamma \to \infty` gives :func:`l1`). Its prox for the step
  :math:`s` is the global minimiser, chosen per coordinate by the regime of :math:`s`:

  .. math::

    \operatorname*{argmin}_y \frac{(y - x)^2}{2s} + P(y) = \begin{cases}
      \operatorname{sign}(x)\,\dfrac{\max(|x| - s\lambda, 0)}{1 - s/\gamma}
        & s < \gamma,\ |x| \le \gamma\lambda, \\
      x & s < \gamma,\ |x| > \gamma\lambda, \\
      x \cdot \mathbb{1}\left[|x| > \lambda\sqrt{s\gamma}\right] & s \ge \gamma.
    \end{cases}

  For :math:`s < \gamma` the objective is strictly convex and this is firm thresholding. For
  :math:`s \ge \gamma` it is concave on :math:`|y| \le \gamma\lambda`, so the minimiser is 0
  or :math:`x`, and 0 wins while :math:`x^2/(2s) \le \gamma\lambda^2/2`: a hard threshold (at
  the tie both are minimisers; this returns 0, as :func:`l0` does). Removed entries are
  exactly ``+0.0``; NaN in ``x``, ``mcp``, ``scaling`` or ``gamma`` gives NaN. Complex entries
  are shrunk in modulus with their phase kept: :math:`z \cdot \operatorname{prox}(|z|)/|z|`,
  the prox of :math:`P(|y|)`.

  Args:
    x: an array or a pytree of arrays (integer and boolean leaves are returned unchanged).
    mcp: the strength :math:`\lambda \ge 0` (a number, an array broadcastable to every leaf,
      or a pytree matching ``x``).
    scaling: the step size :math:`s \ge 0` (same forms), e.g. a learning rate, or the
      per-coordinate steps of an adaptive optimizer.
    gamma: the concavity :math:`\gamma > 0`, a number (or a scalar array, which may be
      traced); the penalty is constant beyond :math:`\gamma\lambda`.

  Returns:
    The prox of ``x``, with the structure, shapes and dtypes of ``x``.

  Raises:
    ValueError: if ``gamma`` is not a finite number > 0, a pytree argument's structure does
      not match ``x``, or an array argument does not broadcast to a leaf.

  Examples:
    >>> import jax.numpy as jnp
    >>> from optax_l1 import prox
    >>> x = jnp.array([-3.0, -1.5, 0.5, 1.75])
    >>> prox.mcp(x, mcp=1.0, scaling=1.0, gamma=2.0)  # firm: 0 up to 1, x beyond 2
    Array([-3. , -1. ,  0. ,  1.5], dtype=float32)
    >>> prox.mcp(x, mcp=1.0, scaling=4.0, gamma=1.0)  # hard: 0 up to sqrt(4 * 1) = 2
    Array([-3.,  0.,  0.,  0.], dtype=float32)

  References:
    Zhang, `Nearly unbiased variable selection under minimax concave penalty
    <https://doi.org/10.1214/09-AOS729>`_, 2010

    Breheny & Huang, `Coordinate descent algorithms for nonconvex penalized regression, with
    applications to biological feature selection <https://doi.org/10.1214/10-AOAS388>`_, 2011

  .. seealso:: :func:`scad`, :func:`l1`, :func:`l0`
  """
  _validation.check_greater_than(gamma, "gamma", 0)

  def leaf(x, strength, scaling):
    return _mcp_leaf(x, strength, scaling, gamma)

  return _map_with_threshold(leaf, x, mcp, scaling, names=("mcp", "scaling"))


def scad(x: Any, scad: Threshold, scaling: Threshold = 1.0, *, a: Any = 3.7) -> Any:
  r"""Proximal operator of the smoothly clipped absolute deviation penalty (SCAD).

  With :math:`\lambda` = ``scad``, the penalty of each entry is

  .. math::

    P(y) = \begin{cases}
      \lambda|y| & |y| \le \lambda, \\
      \dfrac{2a\lambda|y| - y^2 - \lambda^2}{2(a - 1)} & \lambda < |y| \le a\lambda, \\
      \dfrac{(a + 1)\lambda^2}{2} & |y| > a\lambda,
    \end{cases}

  the L1 penalty near zero, blending to a constant at :math:`a\lambda`. Its prox for the step
  :math:`s` is the global minimiser, chosen per coordinate by the regime of :math:`s`:

  .. math::

    \operatorname*{argmin}_y \frac{(y - x)^2}{2s} + P(y) = \begin{cases}
      \operatorname{soft}(x, s\lambda) & |x| \le (1 + s)\lambda, \\
      \dfrac{(a - 1)x - \operatorname{sign}(x)\,sa\lambda}{a - 1 - s}
        & (1 + s)\lambda < |x| \le a\lambda, \\
      x & |x| > a\lambda
    \end{cases}

  for :math:`s < a - 1`, where the objective is strictly convex (with :math:`s = 1`, Fan & Li's
  thresholding rule), and for :math:`s \ge a - 1`, where it is concave on the middle piece,

  .. math::

    \operatorname*{argmin}_y \frac{(y - x)^2}{2s} + P(y) = \begin{cases}
      \operatorname{soft}(x, s\lambda) & |x| \le t, \\
      x & |x| > t,
    \end{cases}
    \qquad t = \begin{cases}
      \lambda\,(s + a + 1)/2 & s < a + 1, \\
      \lambda\sqrt{s(a + 1)} & s \ge a + 1,
    \end{cases}

  the better of the first piece's minimiser and :math:`x`: :math:`t` is where their
  objectives are equal (at the tie this returns the first, as :func:`l0` returns 0). For
  :math:`s \ge a + 1` it is a hard threshold. Removed entries are exactly ``+0.0``; NaN in
  ``x``, ``scad``, ``scaling`` or ``a`` gives NaN. Complex entries are shrunk in modulus with
  their phase kept: :math:`z \cdot \operatorname{prox}(|z|)/|z|`, the prox of :math:`P(|y|)`.

  Args:
    x: an array or a pytree of arrays (integer and boolean leaves are returned unchanged).
    scad: the strength :math:`\lambda \ge 0` (a number, an array broadcastable to every leaf,
      or a pytree matching ``x``).
    scaling: the step size :math:`s \ge 0` (same forms), e.g. a learning rate, or the
      per-coordinate steps of an adaptive optimizer.
    a: the shape :math:`a > 2` (Fan & Li's definition), a number (or a scalar array, which
      may be traced); the penalty is constant beyond :math:`a\lambda`.

  Returns:
    The prox of ``x``, with the structure, shapes and dtypes of ``x``.

  Raises:
    ValueError: if ``a`` is not a finite number > 2, a pytree argument's structure does not
      match ``x``, or an array argument does not broadcast to a leaf.

  Examples:
    >>> import jax.numpy as jnp
    >>> from optax_l1 import prox
    >>> x = jnp.array([-5.0, 2.85, 1.5, 0.5])
    >>> prox.scad(x, scad=1.0, a=3.7)  # soft up to 2, a blend up to 3.7, x beyond
    Array([-5.  ,  2.35,  0.5 ,  0.  ], dtype=float32)
    >>> prox.scad(x, scad=1.0, scaling=3.0, a=3.7)  # soft up to (3 + 3.7 + 1) / 2, x beyond
    Array([-5.,  0.,  0.,  0.], dtype=float32)

  References:
    Fan & Li, `Variable selection via nonconcave penalized likelihood and its oracle
    properties <https://doi.org/10.1198/016214501753382273>`_, 2001

    Breheny & Huang, `Coordinate descent algorithms for nonconvex penalized regression, with
    applications to biological feature selection <https://doi.org/10.1214/10-AOAS388>`_, 2011

  .. seealso:: :func:`mcp`, :func:`l1`
  """
  _validation.check_greater_than(a, "a", 2)

  def leaf(x, strength, scaling):
    return _scad_leaf(x, strength, scaling, a)

  return _map_with_threshold(leaf, x, scad, scaling, names=("scad", "scaling"))


__all__ = [
  "block_soft_threshold",
  "elastic_net",
  "group_l1",
  "hard_threshold",
  "l0",
  "l1",
  "mcp",
  "scad",
  "soft_threshold",
]
