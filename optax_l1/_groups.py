"""How a leaf is split into groups: :class:`GroupAxis`, and the reshape that exposes its groups.

Shared by the prox operators (:mod:`optax_l1.prox`) and the optimizers' penalties.
"""

from __future__ import annotations

import dataclasses
import operator

import jax
import numpy as np

from optax_l1 import _validation

__all__ = ["GroupAxis", "Layout", "as_layout", "check_layout", "split_groups"]


@dataclasses.dataclass(frozen=True)
class GroupAxis:
  r"""Groups of ``size`` consecutive indices along ``axis`` of a leaf, for ``group_axis``.

  Index :math:`j` along ``axis`` belongs to group :math:`\lfloor j / \text{size} \rfloor`; a
  group spans those ``size`` indices and every index of the other axes. ``GroupAxis(axis)``
  (``size=1``) is the plain int ``axis``. It expresses, without a reshape of the parameters,
  groups that are blocks of rows or columns: one attention head of Equinox's
  ``MultiheadAttention``, whose projections are ``Linear`` weights ``(heads * head_dim, in)``
  (queries, keys, values: ``GroupAxis(0, head_dim)``) and ``(out, heads * head_dim)`` (the
  output: ``GroupAxis(1, head_dim)``).

  Args:
    axis: the axis the groups run along (negative counts from the end).
    size: the number of consecutive indices per group, ``>= 1``; the leaf's length along
      ``axis`` must be a multiple of it.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import optax_l1
    >>> weight = jnp.array([[3.0, 4.0], [0.0, 0.0], [0.1, 0.0], [0.0, 0.1]])  # 2 heads of 2 rows
    >>> tx = optax_l1.sgd(1.0, group_l1=1.25, group_axis=optax_l1.GroupAxis(0, size=2))
    >>> updates, _ = tx.update(jnp.zeros((4, 2)), tx.init(weight), weight)
    >>> optax.apply_updates(weight, updates)  # norms 5 and 0.14, threshold 1.25·√4 = 2.5
    Array([[1.5, 2. ],
           [0.  , 0.  ],
           [0.  , 0.  ],
           [0.  , 0.  ]], dtype=float32)
  """

  axis: int
  size: int = 1

  def __post_init__(self) -> None:
    _validation.check_axis(self.axis, "GroupAxis.axis")
    if isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer)):
      raise TypeError(f"GroupAxis.size must be an int >= 1, got {self.size!r}.")
    if self.size < 1:
      raise ValueError(f"GroupAxis.size must be an int >= 1, got {self.size!r}.")
    object.__setattr__(self, "axis", operator.index(self.axis))
    object.__setattr__(self, "size", int(self.size))


Layout = int | GroupAxis  # how one leaf is split into groups


def split_groups(x: jax.Array, layout: Layout) -> tuple[jax.Array, int]:
  """``x`` reshaped so that one axis indexes its groups (``layout``'s axis split into
  ``(groups, size)`` for a :class:`GroupAxis`), and that axis; the group of an entry is its index
  along it, its norm is over all the other axes."""
  if isinstance(layout, int):
    return x, layout
  axis = layout.axis % x.ndim
  if layout.size == 1:
    return x, axis
  shape = (*x.shape[:axis], x.shape[axis] // layout.size, layout.size, *x.shape[axis + 1 :])
  return x.reshape(shape), axis


def as_layout(value: object, name: str) -> Layout:
  """An axis argument as a :data:`Layout`: a GroupAxis as it is, anything else checked to be
  an int (TypeError naming ``name`` otherwise)."""
  return value if isinstance(value, GroupAxis) else _validation.check_axis(value, name)


def check_layout(
  layout: Layout, shape: tuple[int, ...], *, argument: str, where: str | None = None, fix: str = ""
) -> None:
  """Raises a ValueError naming ``argument`` (and ``where``, a leaf's path) unless ``layout``
  fits a leaf of ``shape``; ``fix`` ends the out-of-range message with what else to pass."""
  axis = layout if isinstance(layout, int) else layout.axis
  ndim = len(shape)
  if not -ndim <= axis < ndim:
    context = f"{where}, {argument} {layout!r}" if where else f"{argument}={layout!r}"
    raise ValueError(
      f"group axis {axis} is out of range for a leaf of shape {shape} ({context}): pass an "
      f"axis in [-{ndim}, {ndim}){fix}."
    )
  if isinstance(layout, GroupAxis) and shape[axis] % layout.size:
    subject = (
      f"{argument} for {where} (shape {shape}) is {layout!r}"
      if where
      else f"{argument}={layout!r} for a leaf of shape {shape}"
    )
    raise ValueError(
      f"{subject}: its length {shape[axis]} along axis {axis} is not a multiple of the group "
      f"size {layout.size}."
    )
