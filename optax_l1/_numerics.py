"""Numerical helpers shared by the operators and transformations: dtypes, static zeros,
hyperparameters at a step, and masks.

Nothing here validates arguments (see ``_validation``) or knows about optimizers.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Mask = Any  # a pytree of bools (or a prefix of the params' structure), or a callable of params


def compute_dtype(dtype: Any) -> Any:
  """The dtype to compute a leaf's prox in: at least float32, so that bf16/f16 are exact."""
  return jnp.promote_types(dtype, jnp.float32)


def real_dtype(dtype: Any) -> Any:
  """The real dtype of ``dtype``'s magnitudes: float32 for complex64, itself for a real one."""
  return jnp.finfo(dtype).dtype


def is_inexact_leaf(x: Any) -> bool:
  """Whether a leaf is a floating-point or complex array (integer and bool leaves, PRNG keys
  and other non-numeric arrays are never shrunk)."""
  return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def abs_sq(x: jax.Array) -> jax.Array:
  """``|x|²``, real: ``x * x`` for a real array, ``re² + im²`` for a complex one."""
  if jnp.iscomplexobj(x):
    return jnp.square(x.real) + jnp.square(x.imag)
  return x * x


def is_static_zero(value: Any) -> bool:
  """Whether ``value`` is the Python number 0 (known when tracing, so its term can be skipped)."""
  return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def product(a: Any, b: Any) -> Any:
  """``a * b``, kept the static number 0 when either is (so its term is skipped)."""
  return 0 if is_static_zero(a) or is_static_zero(b) else a * b


def value_at(hyperparameter: Any, count: jax.Array) -> Any:
  """A schedule evaluated at ``count``; a number as it is (a Python 0 stays a static zero)."""
  return hyperparameter(count) if callable(hyperparameter) else hyperparameter


def group_reduction_axes(shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
  """The axes a group's norm is taken over: all but ``axis`` (each index along it is a group).

  ``axis`` must be an int (checked by ``_validation.check_axis`` when the transformation is
  built); this raises if it is out of range for ``shape``.
  """
  ndim = len(shape)
  if not -ndim <= axis < ndim:
    raise ValueError(
      f"group axis {axis} is out of range for a leaf of shape {shape}: pass an axis in "
      f"[-{ndim}, {ndim}), or leave this leaf out with `mask`."
    )
  axis %= ndim
  return tuple(i for i in range(ndim) if i != axis)


def broadcast_like(tree: Any, like: Any, *, name: str) -> Any:
  """Expands ``tree`` (with the structure of ``like``, or a prefix of it) to ``like``'s leaves."""
  try:
    return jax.tree.map(lambda value, sub: jax.tree.map(lambda _: value, sub), tree, like)
  except (ValueError, TypeError) as error:
    raise ValueError(
      f"{name} must have the structure of the params (or a prefix of it).\n"
      f"  {name}: {jax.tree.structure(tree)}\n"
      f"  params: {jax.tree.structure(like)}\n"
      f"({error})"
    ) from None


def is_mask_function(mask: Any) -> bool:
  """Whether ``mask`` is a function of the params, by ``optax.masked``'s rule.

  A mask is a function when every leaf of it is callable. A pytree that is itself callable,
  such as an Equinox module of bools, is a pytree of bools, not a function.
  """
  callable_leaves = jax.tree.leaves(jax.tree.map(callable, mask))
  return bool(callable_leaves) and all(callable_leaves)


def resolve_mask(mask: Any, params: Any) -> Any:
  """A pytree of Python bools with the structure of ``params`` (True: penalised)."""
  if mask is None:
    return jax.tree.map(lambda _: True, params)
  if is_mask_function(mask):
    mask = mask(params)
  if np.ndim(mask) == 0 and isinstance(mask, (bool, np.bool_, np.ndarray, jax.Array)):
    raise TypeError(
      f"mask is a single boolean ({mask!r}), not a pytree of them: pass None to penalise every "
      "leaf, or a pytree of bools (or a function of the params returning one). "
      + _INJECTED_MASK_HINT
    )
  full = broadcast_like(mask, params, name="mask")
  for leaf in jax.tree.leaves(full):
    if not isinstance(leaf, (bool, np.bool_)):
      raise TypeError(
        "mask leaves must be Python bools (True: penalised), as in optax.masked; "
        f"got {type(leaf).__name__}. Build it from the params' paths or shapes, e.g. "
        "`lambda p: jax.tree.map(lambda x: x.ndim > 1, p)`. " + _INJECTED_MASK_HINT
      )
  return full


_INJECTED_MASK_HINT = (
  "With optax.inject_hyperparams and a mask function, pass static_args='mask': otherwise "
  "inject_hyperparams calls the function as a schedule of the step count."
)
