r"""An Equinox MLP on scikit-learn's digits with :func:`optax_l1.adam`: exact zeros, whole units.

An ``eqx.nn.MLP`` (64 → ``hidden`` → 10, ReLU) is trained with Adam on the digits of
:func:`optax_l1.examples.digits.load_digits_split`, in the usual Equinox way: the parameters
are ``eqx.filter(model, eqx.is_array)``, the step is an ``eqx.filter_jit`` function that calls
``tx.update(grads, opt_state, params)`` (the proximal step needs the params) and
``eqx.apply_updates``. The ``method`` values of :func:`train` are:

- ``"prox"``: ``optax_l1.adam(lr, l1=λ, mask=mask)`` on the weight matrices, with the mask
  built by Equinox's tree tools, ``jax.tree.map(lambda x: x.ndim > 1, eqx.filter(model,
  eqx.is_array))``: an ``eqx.nn.MLP`` of bools (``None`` where the model holds no array). A
  module is callable, but a mask whose leaves are not all callable is a pytree, as in
  ``optax.masked``. Most weights become exactly ``0.0``.
- ``"group"``: ``optax_l1.adam(lr, group_l1=λ, group_axis=0, mask=...)`` on the first layer's
  weight only. ``eqx.nn.Linear`` stores its weight as ``(out, in)`` (Flax as ``(in, out)``), so
  its output units are the groups along axis 0: each hidden unit's incoming weights, a row,
  reach zero together, and whole hidden units are removed.

Examples:
  Short runs, a few seconds each on a CPU:

  >>> from optax_l1.examples import equinox_mlp
  >>> r = equinox_mlp.train("prox", l1=3e-3, steps=300, hidden=64)
  >>> r.test_accuracy > 0.9, r.sparsity.fraction > 0.4
  (True, True)
  >>> g = equinox_mlp.train("group", l1=1e-2, steps=300, hidden=64)
  >>> g.hidden_units < 48
  True

  The default run, 3000 steps of a 256-unit MLP (seed 0, on a CPU):

  >>> r = equinox_mlp.train("prox")  # doctest: +SKIP
  >>> print(f"{r.test_accuracy:.1%} accurate, {r.sparsity.fraction:.1%} zeros")  # doctest: +SKIP
  97.8% accurate, 93.3% zeros
  >>> print(r.sparsity)  # doctest: +SKIP
  path               shape             zeros          size   zero %
  -----------------------------------------------------------------
  .layers[0].weight  (256, 64)        15,591        16,384   95.16%
  .layers[0].bias    (256,)                0           256    0.00%
  .layers[1].weight  (10, 256)         2,331         2,560   91.05%
  .layers[1].bias    (10,)                 0            10    0.00%
  -----------------------------------------------------------------
  total                               17,922        19,210   93.30%

  Run ``python -m optax_l1.examples.equinox_mlp`` for both methods.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

import optax_l1
from optax_l1.examples.digits import load_digits_split

METHODS = ("prox", "group")


def make_model(hidden: int = 256, *, key: jax.Array) -> eqx.nn.MLP:
  """``eqx.nn.MLP`` 64 → ``hidden`` → 10 with a ReLU; it maps one image to its 10 logits."""
  return eqx.nn.MLP(64, 10, width_size=hidden, depth=1, activation=jax.nn.relu, key=key)


def weight_mask(model: eqx.Module) -> Any:
  """``True`` for the weight matrices (``ndim > 1``), ``False`` for the biases.

  Built with Equinox's tree tools: a module of the same type as ``model``, of Python bools
  where ``model`` holds arrays, ``None`` elsewhere (the activation), usable as the ``mask`` of
  :func:`optax_l1.adam` with the params ``eqx.filter(model, eqx.is_array)``.

  Examples:
    >>> import jax
    >>> from optax_l1.examples import equinox_mlp
    >>> mask = equinox_mlp.weight_mask(equinox_mlp.make_model(8, key=jax.random.key(0)))
    >>> [(layer.weight, layer.bias) for layer in mask.layers]
    [(True, False), (True, False)]
  """
  return jax.tree.map(lambda x: x.ndim > 1, eqx.filter(model, eqx.is_array))


def hidden_unit_mask(model: eqx.nn.MLP) -> Any:
  """``True`` for the first layer's weight only: the hidden units' incoming weights."""
  nothing = jax.tree.map(lambda _: False, eqx.filter(model, eqx.is_array))
  return eqx.tree_at(lambda m: m.layers[0].weight, nothing, True)


def make_optimizer(
  method: str, model: eqx.nn.MLP, l1: float, learning_rate: float
) -> optax.GradientTransformation:
  r"""``optax_l1.adam`` with L1 on the weights (``"prox"``) or group L1 on the hidden units.

  Args:
    method: ``"prox"`` or ``"group"`` (see the module's docstring).
    model: the model, to build the mask from.
    l1: the strength :math:`\lambda` of the L1 (or group L1) penalty.
    learning_rate: Adam's learning rate.

  Returns:
    The transformation; its ``update`` needs the params, ``eqx.filter(model, eqx.is_array)``.
  """
  if method == "prox":
    return optax_l1.adam(learning_rate, l1=l1, mask=weight_mask(model))
  if method == "group":  # weight (out, in): the output units are along axis 0
    return optax_l1.adam(learning_rate, group_l1=l1, group_axis=0, mask=hidden_unit_mask(model))
  raise ValueError(f"method must be one of {METHODS}, got {method!r}.")


def loss_fn(model: eqx.nn.MLP, x: jax.Array, y: jax.Array) -> jax.Array:
  """Mean cross-entropy of the batch ``x`` (the model maps one image: ``jax.vmap``)."""
  return optax.softmax_cross_entropy_with_integer_labels(jax.vmap(model)(x), y).mean()


def hidden_units(model: eqx.nn.MLP) -> int:
  """Hidden units still in use: some incoming (a weight row) and some outgoing weight non-zero."""
  first, last = model.layers
  return int(jnp.sum(jnp.any(first.weight != 0, axis=1) & jnp.any(last.weight != 0, axis=0)))


class TrainResult(NamedTuple):
  """The outcome of :func:`train`.

  Attributes:
    model: the trained ``eqx.nn.MLP``.
    test_accuracy: the accuracy on the held-out images.
    sparsity: ``optax_l1.sparsity(eqx.filter(model, eqx.is_array))``, weights and biases.
    hidden_units: hidden units still in use (see :func:`hidden_units`).
    seconds: wall-clock time of the training, compilation included.
  """

  model: eqx.nn.MLP
  test_accuracy: float
  sparsity: optax_l1.SparsityReport
  hidden_units: int
  seconds: float


def train(
  method: str = "prox",
  *,
  l1: float = 1e-3,
  steps: int = 3000,
  hidden: int = 256,
  batch_size: int = 128,
  learning_rate: float = 1e-3,
  seed: int = 0,
) -> TrainResult:
  r"""Trains :func:`make_model` on digits with :func:`make_optimizer`, one jitted call a step.

  Args:
    method: ``"prox"`` (L1 on the weights) or ``"group"`` (group L1 on the hidden units).
    l1: the strength :math:`\lambda` of the penalty.
    steps: the number of Adam steps.
    hidden: the width of the hidden layer.
    batch_size: the minibatch size (drawn with replacement).
    learning_rate: Adam's learning rate.
    seed: seeds the data split, the initialisation and the minibatches.

  Returns:
    A :class:`TrainResult`.
  """
  data = load_digits_split(seed)
  x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
  init_key, data_key = jax.random.split(jax.random.key(seed))
  model = make_model(hidden, key=init_key)
  tx = make_optimizer(method, model, l1, learning_rate)
  opt_state = tx.init(eqx.filter(model, eqx.is_array))

  @eqx.filter_jit
  def step(model, opt_state, key, x, y):
    batch = jax.random.randint(key, (batch_size,), 0, x.shape[0])
    grads = eqx.filter_grad(loss_fn)(model, x[batch], y[batch])
    updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_array))
    return eqx.apply_updates(model, updates), opt_state

  start = time.perf_counter()
  for key in jax.random.split(data_key, steps):
    model, opt_state = step(model, opt_state, key, x_train, y_train)
  model = jax.block_until_ready(model)
  seconds = time.perf_counter() - start

  logits = jax.vmap(model)(jnp.asarray(data.x_test))
  accuracy = float(jnp.mean(jnp.argmax(logits, axis=-1) == jnp.asarray(data.y_test)))
  return TrainResult(
    model=model,
    test_accuracy=accuracy,
    sparsity=optax_l1.sparsity(eqx.filter(model, eqx.is_array)),
    hidden_units=hidden_units(model),
    seconds=seconds,
  )


if __name__ == "__main__":
  for name in METHODS:
    result = train(name)
    print(
      f"{name}: {result.test_accuracy:.1%} accurate, {result.sparsity.fraction:.1%} exact zeros, "
      f"{result.hidden_units} hidden units of 256 ({result.seconds:.1f} s)"
    )
    print(result.sparsity, end="\n\n")
