"""Diagonal optimizer steps for :func:`optax_l1.proximal`.

Each returns a :class:`~optax_l1.preconditioners.Preconditioner`: the optimizer's direction
and the per-coordinate factor it was scaled by, so that the proximal threshold is measured in
the same metric as the step.
"""

from optax_l1._preconditioners import (
  AdamState,
  Preconditioner,
  adagrad,
  adam,
  rmsprop,
  sgd,
)

__all__ = ["AdamState", "Preconditioner", "adagrad", "adam", "rmsprop", "sgd"]
