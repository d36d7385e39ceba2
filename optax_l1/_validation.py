"""Argument checks, raised as early as possible with the argument's name and the fix.

Python numbers (and concrete arrays) are checked when a transformation is built; traced values
(injected hyperparameters, schedule outputs) cannot be, and are used as given.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def check_hyperparameter(value: Any, name: str, *, schedule: bool = True) -> None:
  """Raises if a concrete ``value`` (a number or an array) is negative or not finite.

  Traced values pass (they cannot be checked). Schedules pass when ``schedule`` is true;
  otherwise a callable raises a TypeError saying how to vary the value during training.
  """
  accepted = "a number or an optax schedule" if schedule else "a number"
  if callable(value):
    if schedule:
      return
    raise TypeError(
      f"{name} must be a number, got the callable {value!r}: it takes no schedule (nor does "
      f"its optax twin). To change it during training, wrap the optimizer in "
      f"optax.inject_hyperparams and pass the schedule there, e.g. "
      f"`optax.inject_hyperparams(optax_l1.adam)(learning_rate=1e-3, {name}=schedule)`."
    )
  if isinstance(value, jax.core.Tracer):
    return
  if isinstance(value, (str, bytes)):
    raise TypeError(f"{name} must be {accepted}, got the string {value!r}.")
  try:
    array = np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError):
    raise TypeError(f"{name} must be {accepted} (>= 0), got {value!r}.") from None
  if array.ndim != 0:
    raise ValueError(f"{name} must be a scalar ({accepted}), got shape {array.shape}.")
  number = float(array)
  if not math.isfinite(number) or number < 0:
    raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")


def check_below_one(value: Any, name: str) -> None:
  """Raises ValueError if a concrete decay rate ``value`` (a number or an array) is 1 or more."""
  if callable(value) or isinstance(value, jax.core.Tracer):
    return
  if np.ndim(value) == 0 and float(np.asarray(value, np.float64)) >= 1:
    raise ValueError(f"{name} must be < 1 (a decay rate), got {value!r}.")


def check_axis(axis: Any, name: str) -> int:
  """``axis`` as a Python int; TypeError naming the argument otherwise (no bools, floats)."""
  hint = (
    f"Under optax.inject_hyperparams, pass static_args=({name!r},): it injects every number, "
    "and an axis must stay static."
  )
  if isinstance(axis, jax.core.Tracer):
    raise TypeError(f"{name} must be a Python int, got a traced value. {hint}")
  try:
    if isinstance(axis, (bool, np.bool_)):
      raise TypeError
    return operator.index(axis)
  except TypeError:
    raise TypeError(f"{name} must be a Python int, got {axis!r}. {hint}") from None


def check_params(params: Any, transformation: str) -> None:
  """Raises the ValueError a proximal step gives when ``update`` is called without params."""
  if params is None:
    raise ValueError(
      f"{transformation} needs the current parameters to compute the proximal step: "
      "call `tx.update(grads, state, params)` (Flax's nnx.Optimizer and TrainState "
      "pass them for you)."
    )


def check_broadcasts(
  value: Any, shape: tuple[int, ...], name: str, *, groups: bool = False
) -> None:
  """Raises a ValueError naming ``name`` unless ``value`` broadcasts to ``shape`` (a leaf's,
  or with ``groups`` its per-group norms')."""
  try:
    fits = np.broadcast_shapes(np.shape(value), shape) == shape
  except ValueError:
    fits = False
  if not fits:
    target = (
      f"the group norms of shape {shape} (one per group)" if groups else f"a leaf of shape {shape}"
    )
    raise ValueError(
      f"{name} of shape {np.shape(value)} does not broadcast to {target}: pass a number, an "
      "array that broadcasts to every leaf, or a pytree with the structure of x (one value "
      "per leaf)."
    )


def check_greater_than(value: Any, name: str, lower: float) -> None:
  """Raises unless a concrete ``value`` is one finite number > ``lower`` (traced values pass).

  For shape parameters (MCP's γ, SCAD's a), whose bounds are their own.
  """
  number = _concrete_number(value, name, f"> {lower:g}")
  if number is not None and not number > lower:
    raise ValueError(f"{name} must be a finite number > {lower:g}, got {value!r}.")


def check_at_most(value: Any, name: str, upper: float, why: str = "") -> None:
  """Raises unless a concrete ``value`` is one finite number <= ``upper`` (traced values pass);
  ``why`` ends the message."""
  number = _concrete_number(value, name, f"<= {upper:g}")
  if number is not None and not number <= upper:
    raise ValueError(f"{name} must be a finite number <= {upper:g}, got {value!r}{why}.")


def _concrete_number(value: Any, name: str, bound: str) -> float | None:
  """``value`` as a finite float, None if traced; raises if it is not one finite number."""
  if isinstance(value, jax.core.Tracer):
    return None
  if callable(value) or isinstance(value, (str, bytes)):
    raise TypeError(f"{name} must be a number {bound}, got {value!r}.")
  try:
    array = np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError):
    raise TypeError(f"{name} must be a number {bound}, got {value!r}.") from None
  if array.ndim != 0:
    raise ValueError(f"{name} must be a scalar {bound}, got shape {array.shape}.")
  number = float(array)
  if not math.isfinite(number):
    raise ValueError(f"{name} must be a finite number {bound}, got {value!r}.")
  return number


def check_int(value: Any, name: str, minimum: int, why: str = "") -> Any:
  """``value`` as an int, checked ``>= minimum`` (a traced one, injected by
  ``optax.inject_hyperparams``, passes as it is); ``why`` ends the message."""
  if isinstance(value, jax.core.Tracer):
    return value
  number = np.asarray(value)
  if isinstance(value, bool) or number.shape != () or not np.issubdtype(number.dtype, np.integer):
    raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}{why}.")
  if number < minimum:
    raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}{why}.")
  return int(number)


def check_elementwise(function: Any, name: str) -> None:
  """Raises unless ``function`` maps each entry on its own, checked on a random array.

  An elementwise function gives ``function(x)[i] == function(x[i])``; this compares the two
  on a random ``(2, 3, 4)`` array (each entry passed alone as a ``(1,)`` array, under
  ``jax.vmap``). A softmax, a normalisation or anything else that mixes entries fails; a
  function that is elementwise on these values but not on others can pass.
  """
  described = getattr(function, "__name__", type(function).__name__)
  if not callable(function):
    raise TypeError(f"{name} must be a callable (e.g. jax.nn.relu), got {function!r}.")
  x = np.random.default_rng(0).normal(0.0, 3.0, (2, 3, 4)).astype(np.float32)
  try:
    whole = np.asarray(function(jnp.asarray(x)))
    alone = np.asarray(jax.vmap(function)(jnp.asarray(x.reshape(-1, 1))))
  except Exception as error:
    raise TypeError(
      f"{name} must be an elementwise function of one array (e.g. jax.nn.relu); calling "
      f"{described} on an array failed: {error}"
    ) from error
  if whole.shape != x.shape:
    raise ValueError(
      f"{name} must be elementwise (an array in, one of the same shape out), but {described} "
      f"maps shape {x.shape} to {whole.shape}."
    )
  if alone.size != x.size or not np.allclose(
    whole.reshape(-1), alone.reshape(-1), rtol=1e-6, atol=1e-6, equal_nan=True
  ):
    raise ValueError(
      f"{name} must be elementwise (f(x)[i] == f(x[i]), e.g. jax.nn.relu), but {described} "
      "mixes entries (a softmax or a normalisation does): removing a channel would change "
      "the others."
    )
