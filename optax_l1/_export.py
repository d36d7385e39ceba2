"""Export: weights with exact zeros as sparse BCOO matrices holding only the non-zeros."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from optax_l1 import _numerics


def to_bcoo(params: Any, *, mask: Any = None) -> Any:
  r"""Converts weight matrices to ``jax.experimental.sparse.BCOO``, keeping only the non-zeros.

  A selected leaf :math:`W` becomes ``BCOO.fromdense(W, nse=nnz(W))``: its ``data`` holds the
  :math:`\operatorname{nnz}(W)` entries that are not exactly ``0.0`` (in :math:`W`'s dtype)
  and its ``indices`` their positions (``int32``), so it stores
  :math:`\operatorname{nnz}(W)\,(1 + \text{ndim})` numbers instead of :math:`|W|`. The other
  leaves are returned unchanged. The number of non-zeros is read on the host, so this runs
  eagerly (not under ``jax.jit``); the result can be passed to jitted functions.

  Use the result with JAX's sparse operations: ``x @ kernel`` (and ``kernel @ x``) work
  directly on a ``BCOO`` (they call ``sparse.bcoo_dot_general``), inside ``jax.jit`` too; for
  a function written with ``jax.numpy`` (``jnp.dot``, ``jnp.matmul``), wrap it in
  ``jax.experimental.sparse.sparsify``. Flax's ``nnx.Linear`` does not accept a ``BCOO``
  kernel: apply the exported weights with a function of your own.

  .. note::

    Sparse storage saves memory at once (3 numbers per non-zero of a matrix: it pays below a
    third of the entries non-zero). It rarely saves time on CPU: XLA lowers
    ``bcoo_dot_general`` to a gather and a scatter-add, several times slower per non-zero than
    a dense matmul's fused multiply-adds (``benchmarks/compaction.py`` measures it on the
    digits MLP). Only far sparser matrices can win: measure on your hardware.
    For speed from *structured* zeros (whole units), compact the network instead:
    :func:`optax_l1.compact_dense_stack` gives smaller dense matrices.

  Args:
    params: a pytree of arrays, e.g. a Linen ``params`` dict or ``nnx.state(model, nnx.Param)``.
    mask: which leaves to convert, resolved as ``optax.masked`` does: a pytree of bools with
      the params' structure (or a prefix of it), or a callable returning one. ``None``
      (default) selects the 2-D leaves (Dense kernels). Only floating-point array leaves of
      at least one dimension are converted, whatever the mask says.

  Returns:
    ``params`` with the selected leaves replaced by ``BCOO`` arrays of the same shape.

  Raises:
    ValueError: if ``mask`` does not match the params' structure.

  Examples:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> import optax_l1
    >>> params = {"kernel": jnp.array([[0.0, 2.0], [0.0, 0.0], [3.0, 0.0]]), "bias": jnp.ones(2)}
    >>> sparse_params = optax_l1.to_bcoo(params)
    >>> sparse_params["kernel"]
    BCOO(float32[3, 2], nse=2)
    >>> sparse_params["kernel"].data, sparse_params["bias"]
    (Array([2., 3.], dtype=float32), Array([1., 1.], dtype=float32))
    >>> x = jnp.ones((4, 3))
    >>> dense = lambda p, x: x @ p["kernel"] + p["bias"]
    >>> jax.jit(dense)(sparse_params, x)[0]  # the same function, on the sparse weights
    Array([4., 3.], dtype=float32)

    A function written with ``jax.numpy`` needs ``sparsify``:

    >>> from jax.experimental import sparse
    >>> jax.jit(sparse.sparsify(lambda p, x: jnp.dot(x, p["kernel"])))(sparse_params, x)[0]
    Array([3., 2.], dtype=float32)

  .. seealso:: :func:`optax_l1.sparsity`, :func:`optax_l1.compact_dense_stack`
  """
  from jax.experimental import sparse  # imported when used: it adds ~0.6 s to `import optax_l1`

  if mask is None:
    selected = jax.tree.map(lambda leaf: np.ndim(leaf) == 2, params)
  else:
    selected = _numerics.resolve_mask(mask, params)

  def leaf_fn(leaf: Any, on: bool) -> Any:
    if not (on and np.ndim(leaf) >= 1 and _numerics.is_inexact_leaf(leaf)):
      return leaf
    nse = int(np.count_nonzero(np.asarray(leaf)))
    return sparse.BCOO.fromdense(leaf, nse=nse)

  return jax.tree.map(leaf_fn, params, selected)
