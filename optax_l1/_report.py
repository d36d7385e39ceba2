"""The sparsity report: exact zeros per leaf and in total."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from optax_l1 import _numerics


@dataclasses.dataclass(frozen=True)
class LeafSparsity:
  """Exact zeros in one leaf.

  Attributes:
    path: the leaf's path in the pytree, as ``jax.tree_util.keystr`` writes it.
    shape: the leaf's shape.
    zeros: how many entries are exactly ``0.0``.
    size: how many entries the leaf has.
  """

  path: str
  shape: tuple[int, ...]
  zeros: int
  size: int

  @property
  def fraction(self) -> float:
    """The fraction of entries that are exactly zero (0.0 for an empty leaf)."""
    return self.zeros / self.size if self.size else 0.0


@dataclasses.dataclass(frozen=True)
class SparsityReport:
  """Exact zeros per leaf and in total; ``print`` it for a table, ``to_dict`` for JSON.

  Attributes:
    leaves: one :class:`LeafSparsity` per floating-point or complex array leaf, in pytree
      order.
    skipped: the paths and dtypes of the array leaves that are not weights and were not
      counted (integer and boolean arrays such as step counts, PRNG keys), as
      ``(path, dtype name)`` pairs.
  """

  leaves: tuple[LeafSparsity, ...]
  skipped: tuple[tuple[str, str], ...] = ()

  @property
  def zeros(self) -> int:
    """Exact zeros over all leaves."""
    return sum(leaf.zeros for leaf in self.leaves)

  @property
  def size(self) -> int:
    """Entries over all leaves."""
    return sum(leaf.size for leaf in self.leaves)

  @property
  def fraction(self) -> float:
    """The fraction of all entries that are exactly zero."""
    return self.zeros / self.size if self.size else 0.0

  def to_dict(self) -> dict[str, Any]:
    """The report as plain Python values (JSON-serialisable)."""
    return {
      "leaves": [
        {
          "path": leaf.path,
          "shape": list(leaf.shape),
          "zeros": leaf.zeros,
          "size": leaf.size,
          "fraction": leaf.fraction,
        }
        for leaf in self.leaves
      ],
      "zeros": self.zeros,
      "size": self.size,
      "fraction": self.fraction,
      "skipped": [{"path": path, "dtype": dtype} for path, dtype in self.skipped],
    }

  def __str__(self) -> str:
    rows = [
      (leaf.path, str(leaf.shape), leaf.zeros, leaf.size, leaf.fraction) for leaf in self.leaves
    ]
    rows.append(("total", "", self.zeros, self.size, self.fraction))
    width = max([len("path")] + [len(row[0]) for row in rows])
    shape_width = max([len("shape")] + [len(row[1]) for row in rows])
    lines = [
      f"{'path':<{width}}  {'shape':<{shape_width}}  {'zeros':>12}  {'size':>12}  {'zero %':>7}"
    ]
    lines.append("-" * len(lines[0]))
    for i, (path, shape, zeros, size, fraction) in enumerate(rows):
      if i == len(rows) - 1:
        lines.append("-" * len(lines[0]))
      lines.append(
        f"{path:<{width}}  {shape:<{shape_width}}  {zeros:>12,}  {size:>12,}  {100 * fraction:>6.2f}%"
      )
    if self.skipped:
      listed = ", ".join(f"{path} ({dtype})" for path, dtype in self.skipped)
      lines.append(f"not counted ({len(self.skipped)} non-float leaves): {listed}")
    return "\n".join(lines)


@jax.jit
def _count_zeros(leaves: list[jax.Array]) -> list[jax.Array]:
  return [jnp.sum(leaf == 0) for leaf in leaves]


def sparsity(params: Any) -> SparsityReport:
  """Counts the exact zeros (``x == 0``) of every floating-point and complex leaf of ``params``.

  Only weights are counted: integer and boolean arrays (step counters, BatchNorm's counts)
  and PRNG keys (a Flax model's ``nnx.Rngs``) are listed in the report's ``skipped``, and
  non-array leaves (``None``, strings) are ignored. The counting runs under ``jax.jit`` on
  the arrays' device; only the counts come back to the host.

  Args:
    params: a pytree of arrays, e.g. a Flax ``nnx.State`` or a Linen ``params`` dict.

  Returns:
    A :class:`SparsityReport`: ``print`` it for a table, ``to_dict()`` for JSON,
    ``.fraction`` for the total.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_l1
    >>> report = optax_l1.sparsity({"w": jnp.array([0.0, 1.0, 0.0, 2.0]), "b": jnp.zeros(2)})
    >>> report.fraction
    0.666...
    >>> print(report)
    path   shape         zeros          size   zero %
    -------------------------------------------------
    ['b']  (2,)              2             2  100.00%
    ['w']  (4,)              2             4   50.00%
    -------------------------------------------------
    total                    4             6   66.67%
  """
  with_path, _ = jax.tree_util.tree_flatten_with_path(params)
  arrays = [
    (jax.tree_util.keystr(path), leaf)
    for path, leaf in with_path
    if isinstance(leaf, (jax.Array, np.ndarray, np.generic))
  ]
  entries = [(path, leaf) for path, leaf in arrays if _numerics.is_inexact_leaf(leaf)]
  skipped = tuple(
    (path, str(leaf.dtype)) for path, leaf in arrays if not _numerics.is_inexact_leaf(leaf)
  )
  counts = _count_zeros([jnp.asarray(leaf) for _, leaf in entries])
  return SparsityReport(
    leaves=tuple(
      LeafSparsity(path=path, shape=tuple(leaf.shape), zeros=int(count), size=int(leaf.size))
      for (path, leaf), count in zip(entries, counts, strict=True)
    ),
    skipped=skipped,
  )
