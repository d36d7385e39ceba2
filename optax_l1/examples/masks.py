"""Which parameters to penalise, chosen by their path: kernels yes, biases and norms no.

L1 belongs on the weight matrices. Biases, and the scales and offsets of ``nnx.LayerNorm`` or
``nnx.BatchNorm``, should stay free: a zero LayerNorm scale switches a feature off for every
input. Every optimizer in :mod:`optax_l1` takes a ``mask``, as ``optax.add_decayed_weights``
does: leaves where it is ``False`` get the plain optimizer's update, unpenalised.

:func:`path_mask` builds such a mask from the parameters' *names* with
``jax.tree_util.tree_map_with_path``. Unlike a test of the shape (``x.ndim > 1``), it says by
name what is penalised, so it extends to embeddings (``path_mask("kernel", "embedding")``) or
to one layer only (``path_mask("linear2/kernel")``).

With Flax NNX, pass the mask as a *callable*: ``nnx.Optimizer`` gives the optimizer plain
arrays (an ``nnx.State`` of arrays in ``update``, of ``nnx.Param`` variables in ``init``), so a
mask must be computed from what it is given, or be a tree of plain bools with the params'
structure, such as ``path_mask("kernel")(nnx.state(model, nnx.Param))``. A tree of
``nnx.Param`` holding bools would not match. The same callable works on Linen's params dicts
(see :mod:`optax_l1.examples.linen_digits`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
from flax import nnx


def _name(key: Any) -> str:
  """A path entry as a name: a dict key, an attribute or a sequence index."""
  for attribute in ("key", "name", "idx"):
    if hasattr(key, attribute):
      return str(getattr(key, attribute))
  return str(key)


def path_names(path: tuple[Any, ...]) -> tuple[str, ...]:
  """The names along a ``jax.tree_util`` key path, e.g. ``("linear1", "kernel")``."""
  return tuple(_name(key) for key in path)


def path_mask(*suffixes: str) -> Callable[[Any], Any]:
  """A mask penalising the leaves whose path ends in one of ``suffixes``.

  Args:
    *suffixes: the last name of a path (``"kernel"``), or its last names joined by ``/``
      (``"linear2/kernel"``). Default: ``"kernel"``, the weight matrices of ``nnx.Linear``,
      ``nnx.Conv``, ``nn.Dense`` and ``nn.Conv``.

  Returns:
    ``mask(params)``: a tree of Python bools with the structure of ``params``' arrays
    (``nnx.Variable`` leaves are unwrapped first), for the ``mask`` argument of
    :func:`optax_l1.adam` and the other optimizers, or for ``optax.masked``.

  Examples:
    >>> import optax_l1
    >>> from flax import nnx
    >>> from optax_l1.examples.masks import path_mask
    >>> class Block(nnx.Module):
    ...   def __init__(self, rngs):
    ...     self.linear = nnx.Linear(4, 3, rngs=rngs)
    ...     self.norm = nnx.LayerNorm(3, rngs=rngs)
    ...   def __call__(self, x):
    ...     return self.norm(self.linear(x))
    >>> model = Block(nnx.Rngs(0))
    >>> kernels_only = path_mask("kernel")
    >>> print(kernels_only(nnx.state(model, nnx.Param)))
    State({
      'linear': {
        'bias': False,
        'kernel': True
      },
      'norm': {
        'bias': False,
        'scale': False
      }
    })
    >>> tx = optax_l1.adam(1e-3, l1=1e-3, mask=kernels_only)  # the callable, not its value
    >>> optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
  """
  wanted = [tuple(suffix.split("/")) for suffix in suffixes or ("kernel",)]

  def mask(params: Any) -> Any:
    def penalised(path: tuple[Any, ...], _: Any) -> bool:
      names = path_names(path)
      return any(names[-len(suffix) :] == suffix for suffix in wanted if len(suffix) <= len(names))

    return jax.tree_util.tree_map_with_path(penalised, nnx.as_pure(params))

  return mask
