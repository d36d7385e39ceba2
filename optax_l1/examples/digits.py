r"""A sparse MLP on scikit-learn's digits: six ways to combine Adam with L1.

An MLP (64 → 256 → 10, ReLU) is trained with Adam on the 8×8 digits that ship with
scikit-learn, its weight matrices ("kernels") penalised with :math:`\lambda\|w\|_1` and its
biases left free. The ``method`` values of :func:`train` (the keys of :data:`REGISTRY`) are:

- ``"dense"``: ``optax.adam``, no penalty.
- ``"penalty"``: ``optax.adam``, with ``l1 * sum(|kernel|)`` added to the loss, which is what
  ``keras.regularizers.l1`` does. The subgradient makes weights oscillate around zero; they
  become small but (almost) never exactly zero.
- ``"naive"``: ``optax.chain(optax.adam(lr), optax_l1.l1_prox(l1, lr, mask=...))``. It looks
  right but thresholds by ``lr * l1``, while Adam scales each weight's step by
  ``lr / (√v̂ + ε)``: the threshold is far too small in Adam's metric, and few weights reach
  zero.
- ``"prox"``: ``optax_l1.adam(lr, l1=l1, mask=...)``, whose threshold is
  ``lr * l1 / (√v̂ + ε)``, the prox in Adam's own metric (ProxGen). Most weights become
  exactly ``0.0`` at close to dense accuracy.
- ``"target"``: ``optax_l1.adam(lr, target_sparsity=ramp, mask=...)``: no λ; the fraction of
  exact zeros follows tfmot's cubic ramp to ``target_sparsity`` (:func:`sparsity_ramp`), then
  the zero set is frozen and the rest refitted without shrinkage.
- ``"group"``: ``optax_l1.adam(lr, group_l1=l1, mask=...)`` on ``linear1``'s kernel only: each
  hidden unit's incoming weights are one group, so whole units reach zero and
  :func:`optax_l1.compact_mlp` can remove them.

The training loop is Flax NNX (``nnx.Optimizer(model, tx, wrt=nnx.Param)``), split into a
graph definition and a state so that many steps run in one compiled ``jax.lax.scan``.
``optax-l1 compare`` (:mod:`optax_l1.examples.compare`) runs every method and plots them.

Examples:
  3000 steps take a few seconds on a laptop's CPU (seed 0, measured on 2 cores):

  >>> from optax_l1.examples import digits
  >>> r = digits.train("prox", l1=1e-3)  # doctest: +SKIP
  >>> print(f"{r.test_accuracy:.1%} accurate, {r.exact_zero_fraction:.1%} zeros")  # doctest: +SKIP
  98.0% accurate, 95.3% zeros
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import optax_l1
from optax_l1.examples.masks import path_mask

SMALL = 1e-3  # |w| below this counts as "small" (a penalty's near-zeros)


class DigitsSplit(NamedTuple):
  """Standardised digits: ``float32`` images of 64 pixels and ``int32`` labels 0–9."""

  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray


def load_digits_split(seed: int = 0, test_fraction: float = 0.3) -> DigitsSplit:
  """Scikit-learn's digits, split stratified by class and standardised.

  The scaler is fitted on the training images only, so the test set stays unseen.
  Nothing is downloaded: the data ship with scikit-learn.

  Args:
    seed: the seed of the train/test split.
    test_fraction: the fraction of the 1797 images held out for testing.

  Returns:
    A :class:`DigitsSplit` ``(x_train, y_train, x_test, y_test)``.

  Examples:
    >>> from optax_l1.examples import digits
    >>> x_train, y_train, x_test, y_test = digits.load_digits_split()
    >>> x_train.shape, x_test.shape, x_train.dtype
    ((1257, 64), (540, 64), dtype('float32'))
  """
  x, y = load_digits(return_X_y=True)
  x_train, x_test, y_train, y_test = train_test_split(
    x, y, test_size=test_fraction, stratify=y, random_state=seed
  )
  scaler = StandardScaler().fit(x_train)
  return DigitsSplit(
    x_train=scaler.transform(x_train).astype(np.float32),
    y_train=y_train.astype(np.int32),
    x_test=scaler.transform(x_test).astype(np.float32),
    y_test=y_test.astype(np.int32),
  )


class MLP(nnx.Module):
  """64 → ``hidden`` → 10, with a ReLU in between."""

  def __init__(self, hidden: int = 256, *, rngs: nnx.Rngs):
    self.linear1 = nnx.Linear(64, hidden, rngs=rngs)
    self.linear2 = nnx.Linear(hidden, 10, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.linear2(jax.nn.relu(self.linear1(x)))


def kernel_mask(params: Any) -> Any:
  """``True`` for the weight matrices (``ndim > 1``), ``False`` for the biases.

  A pytree of Python bools, usable as the ``mask`` of :func:`optax_l1.adam`,
  :func:`optax_l1.l1_prox` or ``optax.masked`` (as a callable, or called on the params).

  Args:
    params: the parameters, as arrays or as an ``nnx.State`` of ``nnx.Param`` variables.

  Returns:
    The mask, with the structure of the params' arrays.

  Examples:
    >>> from flax import nnx
    >>> from optax_l1.examples import digits
    >>> params = nnx.state(digits.MLP(8, rngs=nnx.Rngs(0)), nnx.Param)
    >>> mask = digits.kernel_mask(params)
    >>> mask["linear1"]["kernel"], mask["linear1"]["bias"]
    (True, False)
  """
  return jax.tree.map(lambda x: x.ndim > 1, nnx.as_pure(params))


def kernels(params: Any) -> list[jax.Array]:
  """The weight matrices of ``params`` (arrays or an ``nnx.State``), in pytree order."""
  pure = nnx.as_pure(params)
  leaves = jax.tree.leaves(pure)
  return [x for x, on in zip(leaves, jax.tree.leaves(kernel_mask(pure)), strict=True) if on]


def kernel_l1(params: Any) -> jax.Array:
  r""":math:`\sum |w|` over the weight matrices (the biases are not penalised)."""
  return sum((jnp.abs(k).sum() for k in kernels(params)), start=jnp.zeros([]))


class Budget(NamedTuple):
  """What a method may know of its run: the steps, and the sparsity asked of ``"target"``."""

  steps: int = 3000
  target_sparsity: float = 0.9


def sparsity_ramp(budget: Budget) -> optax_l1.PolynomialSparsity:
  """The ``"target"`` method's ramp: 0 until a tenth of the steps, then tfmot's cubic ramp to
  ``budget.target_sparsity`` at two thirds of them (300 → 2000 of 3000); frozen after it."""
  return optax_l1.polynomial_sparsity(
    budget.target_sparsity, begin_step=budget.steps // 10, end_step=2 * budget.steps // 3
  )


@dataclasses.dataclass(frozen=True)
class Method:
  """One way to train the :class:`MLP`: its optimizer, and whether the loss holds the penalty.

  Attributes:
    summary: one line for tables and legends.
    optimizer: ``optimizer(l1, learning_rate, budget)`` returns the optax transformation
      (``budget``: the :class:`Budget` of the run).
    penalty_in_loss: add ``l1 * sum(|kernel|)`` to the loss, as ``keras.regularizers.l1``.
    uses_l1: ``False`` for a baseline that ignores ``l1`` (its ``l1`` is reported as 0).
  """

  summary: str
  optimizer: Callable[[float, float, Budget], optax.GradientTransformation]
  penalty_in_loss: bool = False
  uses_l1: bool = True


# The methods of `train`, `make_optimizer` and `optax-l1 compare`, in the order they are shown.
# Adding a method is adding one entry here.
REGISTRY: dict[str, Method] = {
  "dense": Method("optax.adam, no L1", lambda l1, lr, budget: optax.adam(lr), uses_l1=False),
  "penalty": Method(
    "optax.adam, λ·Σ|w| in the loss (keras.regularizers.l1)",
    lambda l1, lr, budget: optax.adam(lr),
    penalty_in_loss=True,
  ),
  # The trap: a threshold of lr * l1, tiny beside Adam's per-weight step lr / (sqrt(v_hat) + eps).
  "naive": Method(
    "chain(optax.adam, optax_l1.l1_prox): threshold lr·λ",
    lambda l1, lr, budget: optax.chain(optax.adam(lr), optax_l1.l1_prox(l1, lr, mask=kernel_mask)),
  ),
  # The threshold lr * l1 / (sqrt(v_hat) + eps), per weight: the prox in Adam's metric.
  "prox": Method(
    "optax_l1.adam: threshold lr·λ/(√v̂+ε)",
    lambda l1, lr, budget: optax_l1.adam(lr, l1=l1, mask=kernel_mask),
  ),
  # A fraction of exact zeros asked for, not a strength: the strength follows the ramp.
  "target": Method(
    "optax_l1.adam(target_sparsity=s): the strength adapted to a ramp",
    lambda l1, lr, budget: optax_l1.adam(
      lr, target_sparsity=sparsity_ramp(budget), mask=kernel_mask
    ),
    uses_l1=False,
  ),
  # Whole hidden units: group L1 on linear1's columns (each hidden unit's incoming weights).
  "group": Method(
    "optax_l1.adam(group_l1=λ) on the hidden units",
    lambda l1, lr, budget: optax_l1.adam(lr, group_l1=l1, mask=path_mask("linear1/kernel")),
  ),
}
METHODS = tuple(REGISTRY)


def _method(method: str) -> Method:
  if method not in REGISTRY:
    raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
  return REGISTRY[method]


def make_optimizer(
  method: str, l1: float, learning_rate: float, budget: Budget | None = None
) -> optax.GradientTransformation:
  r"""The optax transformation of each method (see the module's docstring).

  Args:
    method: a key of :data:`REGISTRY`: ``"dense"``, ``"penalty"``, ``"naive"``, ``"prox"``,
      ``"target"`` or ``"group"``.
    l1: the L1 strength :math:`\lambda` on the kernels (unused by ``"dense"``, ``"target"``
      and ``"penalty"``, whose penalty is in the loss).
    learning_rate: Adam's learning rate.
    budget: the steps of the run, and the sparsity ``"target"`` asks for (default:
      :class:`Budget`'s).

  Returns:
    The transformation, for ``nnx.Optimizer(model, tx, wrt=nnx.Param)``.
  """
  return _method(method).optimizer(l1, learning_rate, budget or Budget())


def loss_fn(model: MLP, x: jax.Array, y: jax.Array, penalty: float = 0.0) -> jax.Array:
  """Mean cross-entropy, plus ``penalty * sum(|kernel|)`` (``keras.regularizers.l1``)."""
  loss = optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()
  if penalty:
    loss = loss + penalty * kernel_l1(nnx.state(model, nnx.Param))
  return loss


def kernel_zero_fraction(params: Any) -> float:
  """The fraction of the kernels' entries that are exactly ``0.0``."""
  return optax_l1.sparsity(kernels(params)).fraction


@dataclasses.dataclass(frozen=True)
class TrainResult:
  """The outcome of :func:`train`.

  Attributes:
    method: the method trained.
    l1: the L1 strength used (``0.0`` for ``"dense"``).
    test_accuracy: the accuracy on the held-out images.
    exact_zero_fraction: the fraction of kernel entries exactly ``0.0``.
    nonzero_params: how many kernel entries are not zero.
    small_fraction: the fraction of kernel entries with ``|w| < 1e-3`` (zeros included).
    hidden_units: hidden units still in use: some incoming and some outgoing weight non-zero
      (the others are what :func:`optax_l1.compact_mlp` removes).
    seconds: wall-clock time of the training steps, compilation excluded.
    compile_seconds: wall-clock time of compiling them.
    params: the trained parameters (an ``nnx.State`` of arrays).
    history: ``(step, exact_zero_fraction)`` pairs, every ``log_every`` steps (and at step
      0); empty when ``log_every`` is ``None``.
  """

  method: str
  l1: float
  test_accuracy: float
  exact_zero_fraction: float
  nonzero_params: int
  small_fraction: float
  hidden_units: int
  seconds: float
  compile_seconds: float
  params: Any = dataclasses.field(repr=False)
  history: list[tuple[int, float]] = dataclasses.field(default_factory=list, repr=False)


def train(
  method: str,
  *,
  l1: float = 1e-3,
  steps: int = 3000,
  hidden: int = 256,
  batch_size: int = 128,
  learning_rate: float = 1e-3,
  seed: int = 0,
  log_every: int | None = None,
  callback: Callable[[int, float], None] | None = None,
  target_sparsity: float = 0.9,
) -> TrainResult:
  r"""Trains the :class:`MLP` on digits with one of the methods of :data:`REGISTRY`.

  Minibatches of ``batch_size`` training images are drawn uniformly (with replacement) with a
  JAX PRNG key; the steps run ``log_every`` (or all ``steps``) at a time inside one compiled
  ``jax.lax.scan``.

  Args:
    method: a key of :data:`REGISTRY`: ``"dense"``, ``"penalty"``, ``"naive"`` or ``"prox"``.
    l1: the L1 strength :math:`\lambda` on the kernels (ignored by ``"dense"``).
    steps: the number of Adam steps.
    hidden: the width of the hidden layer.
    batch_size: the minibatch size.
    learning_rate: Adam's learning rate.
    seed: seeds the data split, the initialisation and the minibatches.
    log_every: if set, record the kernels' exact-zero fraction every ``log_every`` steps.
    callback: if set, called as ``callback(steps_done, exact_zero_fraction)`` after each
      compiled run of ``log_every`` (or all ``steps``) steps, e.g. to advance a progress bar.
    target_sparsity: the fraction of exact kernel zeros ``"target"`` asks for (see
      :func:`sparsity_ramp`).

  Returns:
    A :class:`TrainResult`.
  """
  spec = _method(method)
  if not spec.uses_l1:
    l1 = 0.0
  penalty = l1 if spec.penalty_in_loss else 0.0
  data = load_digits_split(seed)
  x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)

  model = MLP(hidden, rngs=nnx.Rngs(seed))
  tx = make_optimizer(method, l1, learning_rate, Budget(steps, target_sparsity))
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
  # Functional form: a static graph definition and a pytree of arrays to carry through scan.
  graphdef, state = nnx.split((model, optimizer))

  def train_step(state, key, x, y):
    model, optimizer = nnx.merge(graphdef, state)
    batch = jax.random.randint(key, (batch_size,), 0, x.shape[0])  # with replacement: cheap
    grads = nnx.grad(loss_fn)(model, x[batch], y[batch], penalty)
    optimizer.update(model, grads)
    return nnx.state((model, optimizer))

  @jax.jit
  def train_steps(state, keys, x, y):  # len(keys) steps in one compiled call
    def body(state, key):
      return train_step(state, key, x, y), None

    return jax.lax.scan(body, state, keys)[0]

  def zero_fraction(state) -> float:
    model, _ = nnx.merge(graphdef, state)
    return kernel_zero_fraction(nnx.state(model, nnx.Param))

  chunk = log_every or steps
  step_keys = jax.random.split(jax.random.key(seed), steps)  # the same batches however logged
  compiled: dict[int, Any] = {}
  seconds = compile_seconds = 0.0
  history = [(0, zero_fraction(state))] if log_every else []
  done = 0
  while done < steps:
    n = min(chunk, steps - done)
    keys = step_keys[done : done + n]
    if n not in compiled:  # compile ahead of time, so that `seconds` is the training alone
      start = time.perf_counter()
      compiled[n] = train_steps.lower(state, keys, x_train, y_train).compile()
      compile_seconds += time.perf_counter() - start
    start = time.perf_counter()
    state = jax.block_until_ready(compiled[n](state, keys, x_train, y_train))
    seconds += time.perf_counter() - start
    done += n
    if log_every or callback:
      fraction = zero_fraction(state)
      if log_every:
        history.append((done, fraction))
      if callback:
        callback(done, fraction)

  model, _ = nnx.merge(graphdef, state)
  params = nnx.as_pure(nnx.state(model, nnx.Param))
  logits = model(jnp.asarray(data.x_test))
  accuracy = float(jnp.mean(jnp.argmax(logits, axis=-1) == jnp.asarray(data.y_test)))
  weights = kernels(params)
  report = optax_l1.sparsity(weights)
  small = sum(int(jnp.sum(jnp.abs(k) < SMALL)) for k in weights)
  return TrainResult(
    method=method,
    l1=l1,
    test_accuracy=accuracy,
    exact_zero_fraction=report.fraction,
    nonzero_params=report.size - report.zeros,
    small_fraction=small / report.size,
    hidden_units=int(
      jnp.sum(
        jnp.any(params["linear1"]["kernel"] != 0, axis=0)
        & jnp.any(params["linear2"]["kernel"] != 0, axis=1)
      )
    ),
    seconds=seconds,
    compile_seconds=compile_seconds,
    params=params,
    history=history,
  )
