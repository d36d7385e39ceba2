"""The data, models and sparsity accounting of the frontier benchmark (:mod:`frontier`).

Three tasks, all generated or shipped, nothing downloaded:

- ``digits``: scikit-learn's 8×8 digits (:func:`optax_l1.examples.digits.load_digits_split`,
  the split seeded), MLP 64-256-10.
- ``mnist1d_mlp``: MNIST-1D (``mnist1d.data.make_dataset(get_dataset_args())``, 4000 train /
  1000 test signals of 40 points, built procedurally; the same data for every seed), MLP
  40-256-10.
- ``mnist1d_cnn``: the same data, three 1-D convolutions of 32 channels (kernels 5, 3, 3, ReLU,
  ``SAME`` padding), global average pooling and a linear head.

Every kernel is initialised with He's normal (``nnx.initializers.he_normal()``: truncated
normal, variance 2/fan_in) for every method alike; biases start at zero. The sparsity measured
is over the kernels (``ndim > 1``: the conv kernels and the head's kernel; biases are free);
a hidden unit (or channel) counts as removed when its incoming weights are all zero or its
outgoing weights are all zero.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import optax_l1
from optax_l1.examples import digits, mnist1d_data
from optax_l1.examples.mnist1d_cnn import conv1d_as_matmul  # XLA:CPU's conv is slow in a scan


@dataclasses.dataclass(frozen=True)
class Split:
  """Training and test data: ``float32`` inputs, ``int32`` labels."""

  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray


def digits_split(seed: int) -> Split:
  """Scikit-learn's digits, split (stratified, 30 % held out) and standardised by ``seed``."""
  return Split(*digits.load_digits_split(seed))


def _mnist1d() -> Split:
  return Split(*mnist1d_data.load())


def mnist1d_split(seed: int) -> Split:
  """MNIST-1D, generated once per process; the data do not depend on ``seed``."""
  del seed
  return _mnist1d()


KERNEL_INIT = nnx.initializers.he_normal()


class MLP(nnx.Module):
  """``inputs`` → ``hidden`` → ``classes``, ReLU in between, He-initialised kernels."""

  def __init__(self, inputs: int, hidden: int = 256, classes: int = 10, *, rngs: nnx.Rngs):
    self.linear1 = nnx.Linear(inputs, hidden, kernel_init=KERNEL_INIT, rngs=rngs)
    self.linear2 = nnx.Linear(hidden, classes, kernel_init=KERNEL_INIT, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.linear2(jax.nn.relu(self.linear1(x)))


class CNN(nnx.Module):
  """Three 1-D convs (32 channels, kernels 5/3/3, ReLU), global average pool, linear head."""

  def __init__(self, channels: int = 32, classes: int = 10, *, rngs: nnx.Rngs):
    conv = functools.partial(
      nnx.Conv,
      padding="SAME",
      kernel_init=KERNEL_INIT,
      conv_general_dilated=conv1d_as_matmul,
      rngs=rngs,
    )
    self.conv1 = conv(1, channels, kernel_size=5)
    self.conv2 = conv(channels, channels, kernel_size=3)
    self.conv3 = conv(channels, channels, kernel_size=3)
    self.head = nnx.Linear(channels, classes, kernel_init=KERNEL_INIT, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    h = x[..., None] if x.ndim == 2 else x  # (batch, 40) → (batch, 40, 1)
    for conv in (self.conv1, self.conv2, self.conv3):
      h = jax.nn.relu(conv(h))
    return self.head(h.mean(axis=1))


@dataclasses.dataclass(frozen=True)
class Task:
  """A dataset and a model.

  Attributes:
    summary: one line for the table headers.
    data: ``data(seed)`` returns the :class:`Split`.
    model: ``model(rngs)`` returns a fresh model.
    units: per hidden layer, the names of the module whose kernel's last axis holds its units
      (incoming weights) and of the module whose kernel's second-to-last axis holds them
      (outgoing weights).
  """

  summary: str
  data: Callable[[int], Split]
  model: Callable[[nnx.Rngs], nnx.Module]
  units: tuple[tuple[str, str], ...]


TASKS: dict[str, Task] = {
  "digits": Task(
    "digits MLP 64-256-10",
    digits_split,
    lambda rngs: MLP(64, rngs=rngs),
    (("linear1", "linear2"),),
  ),
  "mnist1d_mlp": Task(
    "MNIST-1D MLP 40-256-10",
    mnist1d_split,
    lambda rngs: MLP(40, rngs=rngs),
    (("linear1", "linear2"),),
  ),
  "mnist1d_cnn": Task(
    "MNIST-1D CNN conv 32×3 (k 5/3/3), GAP, linear",
    mnist1d_split,
    lambda rngs: CNN(rngs=rngs),
    (("conv1", "conv2"), ("conv2", "conv3"), ("conv3", "head")),
  ),
}


def kernel_mask(params: Any) -> Any:
  """``True`` for the kernels (``ndim > 1``), ``False`` for the biases."""
  return jax.tree.map(lambda x: x.ndim > 1, params)


def hidden_kernel_mask(task: Task) -> Callable[[Any], Any]:
  """A mask function: ``True`` for the kernels whose output units are hidden units."""
  incoming = {name for name, _ in task.units}

  def mask(params: Any) -> Any:
    def on(path, x):
      return path[0].key in incoming and path[-1].key == "kernel"

    return jax.tree_util.tree_map_with_path(on, params)

  return mask


def kernels(params: Any) -> list[jax.Array]:
  """The kernels of ``params``, in pytree order."""
  leaves = jax.tree.leaves(params)
  return [x for x, on in zip(leaves, jax.tree.leaves(kernel_mask(params)), strict=True) if on]


def zero_fraction(params: Any) -> float:
  """The fraction of kernel entries that are exactly ``0.0`` (:func:`optax_l1.sparsity`)."""
  return optax_l1.sparsity(kernels(params)).fraction


def units_removed(task: Task, params: Any) -> tuple[int, int]:
  """``(removed, total)`` hidden units: incoming weights all zero, or outgoing all zero."""
  removed = total = 0
  for incoming, outgoing in task.units:
    w_in = params[incoming]["kernel"]
    w_out = params[outgoing]["kernel"]
    dead_in = jnp.all(w_in == 0, axis=tuple(range(w_in.ndim - 1)))
    out_axes = tuple(a for a in range(w_out.ndim) if a != w_out.ndim - 2)
    dead_out = jnp.all(w_out == 0, axis=out_axes)
    removed += int(jnp.sum(dead_in | dead_out))
    total += int(dead_in.size)
  return removed, total
