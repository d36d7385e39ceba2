"""Argument checks, raised as early as possible with the argument's name and the fix.

Python numbers (and concrete arrays) are checked when a transformation is built; traced values
(injected hyperparameters, schedule outputs) cannot be, and are used as given.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import jax
import numpy as np


def check_hyperparameter(value: Any, name: str) -> None:
  """Raises ValueError if a concrete ``value`` is negative or not finite; schedules pass."""
  if callable(value) or isinstance(value, jax.core.Tracer):
    return
  if isinstance(value, (str, bytes)):
    raise TypeError(f"{name} must be a number or an optax schedule, got the string {value!r}.")
  try:
    array = np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError):
    raise TypeError(
      f"{name} must be a non-negative number or an optax schedule, got {value!r}."
    ) from None
  if array.ndim != 0:
    raise ValueError(f"{name} must be a scalar or an optax schedule, got shape {array.shape}.")
  number = float(array)
  if not math.isfinite(number) or number < 0:
    raise ValueError(f"{name} must be a finite number >= 0 (or an optax schedule), got {value!r}.")


def check_below_one(value: Any, name: str) -> None:
  """Raises ValueError if a concrete decay rate ``value`` is 1 or more."""
  if isinstance(value, (int, float, np.number)) and value >= 1:
    raise ValueError(f"{name} must be < 1 (a decay rate), got {value!r}.")


def check_axis(axis: Any, name: str) -> int:
  """``axis`` as a Python int; TypeError naming the argument otherwise (no bools, floats)."""
  if isinstance(axis, (bool, np.bool_)) or isinstance(axis, jax.core.Tracer):
    axis = float("nan")  # fall through to the error
  try:
    return operator.index(axis)
  except TypeError:
    raise TypeError(
      f"{name} must be a Python int, got {axis!r}. Under optax.inject_hyperparams, pass "
      f"static_args=({name!r},): it injects every number, and an axis must stay static."
    ) from None


def check_params(params: Any, transformation: str) -> None:
  """Raises the ValueError a proximal step gives when ``update`` is called without params."""
  if params is None:
    raise ValueError(
      f"{transformation} needs the current parameters to compute the proximal step: "
      "call `tx.update(grads, state, params)` (Flax's nnx.Optimizer and TrainState "
      "pass them for you)."
    )


def check_broadcasts(value: Any, shape: tuple[int, ...], name: str) -> None:
  """Raises a ValueError naming ``name`` unless ``value`` broadcasts to ``shape``."""
  try:
    fits = np.broadcast_shapes(np.shape(value), shape) == shape
  except ValueError:
    fits = False
  if not fits:
    raise ValueError(
      f"{name} of shape {np.shape(value)} does not broadcast to a leaf of shape {shape}: "
      "pass a number, an array that broadcasts to every leaf, or a pytree with the "
      "structure of x (one value per leaf)."
    )
