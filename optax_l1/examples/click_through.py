r"""Click-through prediction on hashed sparse features: FTRL-Proximal against Adagrad.

A logistic regression over :data:`NUM_FEATURES` :math:`= 2^{18}` hashed binary features, the
model of McMahan et al.'s "Ad Click Prediction", is trained in one pass over synthetic data
(:func:`make_data`; generated with NumPy, nothing is downloaded). Each example has
:data:`ACTIVE` distinct active features drawn from a Zipf distribution over the ids, so a few
ids are in most examples and most ids in a handful; its label is drawn through a sigmoid of a
sparse true weight vector (a few hundred non-zeros among the frequent ids) plus an intercept.
A model that gives every id it has seen a weight holds more than a hundred thousand of them;
the true one needs a few hundred.

A batch is a ``(batch, ACTIVE)`` array of feature ids, and the logit is a gather,
``w[ids].sum(-1) + b``: its gradient is a scatter-add into a dense ``(2^18,)`` gradient that is
zero outside the batch's ids. The loss is the batch's *sum* of log losses, so each example
weighs on the accumulated squared gradients as in McMahan et al.'s per-example online
learning (a mean would scale the gradients by ``1/batch`` and leave the accumulators at their
initial 0.1 for all but the most frequent ids, every method then taking plain SGD steps). The
intercept ``b`` is never penalised (``mask``). The ``method`` values of :func:`train` (the keys
of :data:`METHODS`) are:

- ``"ftrl"``: :func:`optax_l1.ftrl` with ``l1``. A weight is exactly zero while its linear term
  :math:`|z| \le \lambda_1`; an id that is never seen keeps its zero.
- ``"ftrl_no_l1"``: :func:`optax_l1.ftrl` without ``l1``. Without a penalty, FTRL-Proximal's
  closed form unrolls to Adagrad's step :math:`w \leftarrow w - \eta g/\sqrt{n}` (from the
  same initial accumulator), so this is ``"adagrad"`` up to rounding: L1 is all that differs.
- ``"adagrad_l1"``: :func:`optax_l1.adagrad` with ``l1``, the proximal step in Adagrad's metric.
  It shrinks every weight at every step, whether its id is in the batch or not, by
  :math:`\eta\lambda_1/\sqrt{n}`: a weight whose id was seen lately is still on its way back
  to zero at the end of the pass. Its strength is per step (added to each batch's loss),
  FTRL's is on the whole history of gradients, so their numbers differ.
- ``"adagrad"``: ``optax.adagrad``, no penalty.

Their learning rates and strengths, :data:`DEFAULTS`, were chosen by :func:`tune` on a
validation split (not the test set); ``benchmarks/ftrl_click_through.py`` re-tunes them for each
seed and records the comparison, and the step time against ``keras.optimizers.Ftrl``, in
``benchmarks/RESULTS.md``.

Examples:
  A short pass (a few seconds on a CPU):

  >>> from optax_l1.examples import click_through
  >>> data = click_through.make_data(num_train=20_000, num_validation=2_000, num_test=5_000)
  >>> sparse = click_through.train("ftrl", data)
  >>> dense = click_through.train("ftrl_no_l1", data)
  >>> sparse.nonzero_weights < dense.nonzero_weights // 10
  True
  >>> sparse.test_auc > 0.6
  True

  Run ``python -m optax_l1.examples.click_through`` for the four methods, as a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.metrics import roc_auc_score

import optax_l1

NUM_FEATURES = 2**18  # hashed feature ids
ACTIVE = 24  # active (value 1) features per example
BATCH_SIZE = 256


class ClickData(NamedTuple):
  """Synthetic click-through data: feature ids (``int32``, ``(n, ACTIVE)``) and 0/1 labels.

  Attributes:
    train_ids, train_labels: the training pass, in the order it is taken.
    validation_ids, validation_labels: for choosing hyperparameters (:func:`tune`).
    test_ids, test_labels: for the reported metrics only.
    true_weights: the ``(num_features,)`` weights the labels were drawn with.
    true_bias: their intercept.
  """

  train_ids: np.ndarray
  train_labels: np.ndarray
  validation_ids: np.ndarray
  validation_labels: np.ndarray
  test_ids: np.ndarray
  test_labels: np.ndarray
  true_weights: np.ndarray
  true_bias: float

  @property
  def num_features(self) -> int:
    return self.true_weights.shape[0]


def zipf_ids(
  rng: np.random.Generator,
  num_examples: int,
  *,
  num_features: int = NUM_FEATURES,
  active: int = ACTIVE,
  exponent: float = 1.1,
  ranking: np.ndarray | None = None,
) -> np.ndarray:
  r"""``active`` distinct ids per example, each drawn with probability :math:`\propto r^{-s}`.

  The rank :math:`r` of an id (1 the most frequent) is drawn from the Zipf distribution of
  exponent :math:`s` truncated to ``num_features`` ids, by inverting its CDF, and mapped to an
  id by ``ranking`` (a permutation of the ids, as a hash scatters them). An id drawn twice in
  one example is drawn again until the example's ids are distinct (the values are binary).

  Args:
    rng: the NumPy generator.
    num_examples: the number of examples (rows).
    num_features: the number of ids.
    active: the number of ids per example.
    exponent: the Zipf exponent :math:`s`.
    ranking: ``ranking[r - 1]`` is the id of rank :math:`r` (default: the identity).

  Returns:
    An ``int32`` array ``(num_examples, active)``, each row sorted.
  """
  cdf = np.cumsum(np.arange(1, num_features + 1, dtype=np.float64) ** -exponent)
  cdf /= cdf[-1]

  def draw(shape):
    return np.minimum(np.searchsorted(cdf, rng.random(shape)), num_features - 1)

  ranks = np.sort(draw((num_examples, active)), axis=1)
  while True:  # a few rounds: only the frequent ranks repeat
    repeated = np.zeros(ranks.shape, bool)
    repeated[:, 1:] = ranks[:, 1:] == ranks[:, :-1]
    if not repeated.any():
      break
    ranks[repeated] = draw(int(repeated.sum()))
    ranks.sort(axis=1)
  ids = ranks if ranking is None else ranking[ranks]
  return np.sort(ids, axis=1).astype(np.int32)


def make_data(
  num_train: int = 200_000,
  num_validation: int = 20_000,
  num_test: int = 50_000,
  *,
  num_features: int = NUM_FEATURES,
  active: int = ACTIVE,
  exponent: float = 1.1,
  true_nonzeros: int = 300,
  support_ranks: int = 2_000,
  weight_scale: float = 0.8,
  true_bias: float = -1.5,
  seed: int = 0,
) -> ClickData:
  r"""Synthetic hashed click-through data (:func:`zipf_ids`), labels from sparse weights.

  The true weights are non-zero on ``true_nonzeros`` ids drawn among the ``support_ranks``
  most frequent, each :math:`\mathcal N(0, \sigma^2)` with :math:`\sigma` = ``weight_scale``;
  a label is 1 with probability :math:`\operatorname{sigmoid}(b + \sum_{j \in x} w_j)`. The
  rarer ids carry no signal: whatever weight a model gives them is noise.

  Args:
    num_train, num_validation, num_test: the sizes of the three splits.
    num_features: the number of hashed ids.
    active: the active ids per example.
    exponent: the Zipf exponent of the ids' frequencies.
    true_nonzeros: the non-zeros of the true weights.
    support_ranks: they are among this many most frequent ids.
    weight_scale: their standard deviation.
    true_bias: the intercept :math:`b` (the click rate is about its sigmoid, 0.18, moved
      by the weights of the frequent ids).
    seed: seeds everything.

  Returns:
    A :class:`ClickData`.

  Examples:
    >>> from optax_l1.examples import click_through
    >>> data = click_through.make_data(1000, 100, 100)
    >>> data.train_ids.shape, data.train_ids.dtype, int((data.true_weights != 0).sum())
    ((1000, 24), dtype('int32'), 300)
  """
  rng = np.random.default_rng(seed)
  ranking = rng.permutation(num_features)
  true_weights = np.zeros(num_features, np.float32)
  support = ranking[rng.choice(support_ranks, true_nonzeros, replace=False)]
  true_weights[support] = weight_scale * rng.standard_normal(true_nonzeros)

  def split(n):
    ids = zipf_ids(
      rng, n, num_features=num_features, active=active, exponent=exponent, ranking=ranking
    )
    logits = true_bias + true_weights[ids].sum(axis=1, dtype=np.float64)
    labels = (rng.random(n) < 1 / (1 + np.exp(-logits))).astype(np.float32)
    return ids, labels

  (train, train_y), (validation, validation_y), (test, test_y) = map(
    split, (num_train, num_validation, num_test)
  )
  return ClickData(train, train_y, validation, validation_y, test, test_y, true_weights, true_bias)


@dataclasses.dataclass(frozen=True)
class Method:
  """One optimizer of the comparison.

  Attributes:
    summary: one line for tables.
    optimizer: ``optimizer(learning_rate, l1)`` returns the transformation of the params
      ``{"w": ..., "b": ...}`` (a method without L1 ignores ``l1``). It is called inside the
      jitted pass with both traced, so one compiled pass serves a whole grid.
    uses_l1: whether ``l1`` is a hyperparameter of the method.
  """

  summary: str
  optimizer: Callable[[Any, Any], optax.GradientTransformation]
  uses_l1: bool


WEIGHTS_ONLY = {"w": True, "b": False}  # the intercept is not penalised

METHODS: dict[str, Method] = {
  "ftrl": Method(
    "optax_l1.ftrl(lr, l1=λ)", lambda lr, l1: optax_l1.ftrl(lr, l1=l1, mask=WEIGHTS_ONLY), True
  ),
  "ftrl_no_l1": Method("optax_l1.ftrl(lr)", lambda lr, l1: optax_l1.ftrl(lr), False),
  "adagrad_l1": Method(
    "optax_l1.adagrad(lr, l1=λ)",
    lambda lr, l1: optax_l1.adagrad(lr, l1=l1, mask=WEIGHTS_ONLY),
    True,
  ),
  "adagrad": Method("optax.adagrad(lr)", lambda lr, l1: optax.adagrad(lr), False),
}


class Hyperparameters(NamedTuple):
  """A method's learning rate and L1 strength (0 for a method without L1)."""

  learning_rate: float
  l1: float = 0.0


# The grids of `tune`: learning rates for all, strengths for the methods with L1. Each method's
# validation-best point, seed 0, is inside its grid (see DEFAULTS).
LEARNING_RATES = (0.03, 0.1, 0.3, 1.0)
GRIDS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
  "ftrl": (LEARNING_RATES, (1.0, 3.0, 10.0, 30.0)),
  "ftrl_no_l1": (LEARNING_RATES, (0.0,)),
  "adagrad_l1": (LEARNING_RATES, (1e-3, 3e-3, 1e-2, 3e-2)),
  "adagrad": (LEARNING_RATES, (0.0,)),
}

# What `tune` picks over GRIDS on make_data()'s validation split (seed 0, 200,000 examples).
DEFAULTS: dict[str, Hyperparameters] = {
  "ftrl": Hyperparameters(0.3, 10.0),
  "ftrl_no_l1": Hyperparameters(0.1),
  "adagrad_l1": Hyperparameters(0.1, 1e-2),
  "adagrad": Hyperparameters(0.1),
}


def _method(method: str) -> Method:
  if method not in METHODS:
    raise ValueError(f"method must be one of {tuple(METHODS)}, got {method!r}.")
  return METHODS[method]


def logits(params: dict[str, jax.Array], ids: jax.Array) -> jax.Array:
  """``w[ids].sum(-1) + b``: the logistic regression on binary features, by a gather."""
  return params["w"][ids].sum(axis=-1) + params["b"]


def loss_fn(params: dict[str, jax.Array], ids: jax.Array, labels: jax.Array) -> jax.Array:
  """The batch's summed log loss (see the module's docstring for why a sum)."""
  return optax.sigmoid_binary_cross_entropy(logits(params, ids), labels).sum()


def init_params(num_features: int = NUM_FEATURES) -> dict[str, jax.Array]:
  """Zero weights and intercept (so ``ftrl``'s warm start is Keras' cold start)."""
  return {"w": jnp.zeros(num_features, jnp.float32), "b": jnp.zeros([], jnp.float32)}


def batches(ids: np.ndarray, labels: np.ndarray, batch_size: int) -> tuple[np.ndarray, ...]:
  """The examples as ``(steps, batch_size, ...)``, in their order; the remainder is dropped."""
  steps = ids.shape[0] // batch_size
  n = steps * batch_size
  return ids[:n].reshape(steps, batch_size, -1), labels[:n].reshape(steps, batch_size)


@functools.cache
def compiled_pass(method: str, steps: int, batch_size: int, active: int, num_features: int) -> Any:
  """``run(params, opt_state, ids, labels, learning_rate, l1) -> (params, opt_state)``: one
  step per batch (the leading axis of ``ids``) in one ``jax.lax.scan``, compiled once for these
  shapes and every value of the (traced) hyperparameters."""
  make_tx = _method(method).optimizer

  def run(params, opt_state, ids, labels, learning_rate, l1):
    tx = make_tx(learning_rate, l1)

    def step(carry, batch):
      params, opt_state = carry
      grads = jax.grad(loss_fn)(params, *batch)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), None

    return jax.lax.scan(step, (params, opt_state), (ids, labels))[0]

  params = init_params(num_features)
  opt_state = make_tx(1.0, 1.0).init(params)  # the structure; the values come with each call
  ids = jax.ShapeDtypeStruct((steps, batch_size, active), jnp.int32)
  labels = jax.ShapeDtypeStruct((steps, batch_size), jnp.float32)
  scalar = jax.ShapeDtypeStruct((), jnp.float32)
  return jax.jit(run).lower(params, opt_state, ids, labels, scalar, scalar).compile()


class Metrics(NamedTuple):
  log_loss: float
  auc: float


def evaluate(params: Any, ids: np.ndarray, labels: np.ndarray) -> Metrics:
  """Mean log loss and the area under the ROC curve (scikit-learn's, exact)."""
  z = np.asarray(logits(params, jnp.asarray(ids)), np.float64)
  log_loss = float(np.mean(np.logaddexp(0, z) - labels * z))
  return Metrics(log_loss, float(roc_auc_score(labels, z)))


@dataclasses.dataclass(frozen=True)
class TrainResult:
  """The outcome of :func:`train`.

  Attributes:
    method: the method trained.
    learning_rate, l1: its hyperparameters (``l1`` is 0 for a method without it).
    test_log_loss: the mean log loss on the test split.
    test_auc: the area under the ROC curve on the test split.
    validation_log_loss, validation_auc: the same on the validation split (for :func:`tune`).
    nonzero_weights: how many of the ``num_features`` weights are not exactly zero.
    seconds: wall-clock time of the pass, compilation excluded.
    params: the trained ``{"w", "b"}``.
  """

  method: str
  learning_rate: float
  l1: float
  test_log_loss: float
  test_auc: float
  validation_log_loss: float
  validation_auc: float
  nonzero_weights: int
  seconds: float
  params: Any = dataclasses.field(repr=False)


def train(
  method: str,
  data: ClickData,
  *,
  learning_rate: float | None = None,
  l1: float | None = None,
  batch_size: int = BATCH_SIZE,
) -> TrainResult:
  r"""One pass over ``data``'s training split in mini-batches, from zero weights.

  Args:
    method: a key of :data:`METHODS`: ``"ftrl"``, ``"ftrl_no_l1"``, ``"adagrad_l1"`` or
      ``"adagrad"``.
    data: the splits, from :func:`make_data`.
    learning_rate: the learning rate (default: the method's in :data:`DEFAULTS`).
    l1: the L1 strength :math:`\lambda_1` (default: :data:`DEFAULTS`; ignored without L1).
    batch_size: examples per step.

  Returns:
    A :class:`TrainResult`.
  """
  spec = _method(method)
  default = DEFAULTS[method]
  learning_rate = default.learning_rate if learning_rate is None else learning_rate
  l1 = (default.l1 if l1 is None else l1) if spec.uses_l1 else 0.0
  params = init_params(data.num_features)
  opt_state = spec.optimizer(learning_rate, l1).init(params)  # validates them, too
  ids, labels = (jnp.asarray(x) for x in batches(data.train_ids, data.train_labels, batch_size))
  run = compiled_pass(method, *ids.shape, data.num_features)
  hyperparameters = (jnp.float32(learning_rate), jnp.float32(l1))
  start = time.perf_counter()
  params, _ = jax.block_until_ready(run(params, opt_state, ids, labels, *hyperparameters))
  seconds = time.perf_counter() - start
  test = evaluate(params, data.test_ids, data.test_labels)
  validation = evaluate(params, data.validation_ids, data.validation_labels)
  return TrainResult(
    method=method,
    learning_rate=learning_rate,
    l1=l1,
    test_log_loss=test.log_loss,
    test_auc=test.auc,
    validation_log_loss=validation.log_loss,
    validation_auc=validation.auc,
    nonzero_weights=int(jnp.count_nonzero(params["w"])),
    seconds=seconds,
    params=params,
  )


def tune(
  method: str,
  data: ClickData,
  *,
  grid: tuple[Sequence[float], Sequence[float]] | None = None,
  batch_size: int = BATCH_SIZE,
) -> tuple[TrainResult, list[TrainResult]]:
  """Trains ``method`` at each point of its grid and picks the best validation log loss.

  The test split is not looked at, and the rule is the same for every method: the sparsity of
  a method with L1 is that of its validation-best strength, not of a strength chosen for
  sparsity.

  Args:
    method: a key of :data:`METHODS`.
    data: the splits.
    grid: ``(learning_rates, l1s)`` (default: the method's :data:`GRIDS`; the ``l1s`` of a
      method without L1 are ignored).
    batch_size: examples per step.

  Returns:
    The chosen run, and all the runs in grid order.
  """
  learning_rates, strengths = grid or GRIDS[method]
  if not _method(method).uses_l1:
    strengths = (0.0,)
  runs = [
    train(method, data, learning_rate=lr, l1=l1, batch_size=batch_size)
    for lr, l1 in itertools.product(learning_rates, strengths)
  ]
  return min(runs, key=lambda r: r.validation_log_loss), runs


def table(results: Sequence[TrainResult], num_features: int = NUM_FEATURES) -> str:
  """A markdown table of the runs: hyperparameters, test log loss and AUC, non-zeros, time."""
  lines = [
    "| method | optimizer | lr | λ₁ | test log loss | test AUC | non-zero weights | s |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
  ]
  for r in results:
    share = r.nonzero_weights / num_features
    lines.append(
      f"| {r.method} | `{METHODS[r.method].summary}` | {r.learning_rate:g} | {r.l1:g} | "
      f"{r.test_log_loss:.4f} | {r.test_auc:.4f} | {r.nonzero_weights:,} ({share:.1%}) | "
      f"{r.seconds:.2f} |"
    )
  return "\n".join(lines)


def true_metrics(data: ClickData) -> Metrics:
  """The test log loss and AUC of the weights the labels were drawn with: the best a model
  can expect, on average."""
  params = {"w": jnp.asarray(data.true_weights), "b": jnp.float32(data.true_bias)}
  return evaluate(params, data.test_ids, data.test_labels)


def main(argv: Sequence[str] | None = None) -> None:
  """``python -m optax_l1.examples.click_through``: the four methods on one data set."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument(
    "--examples", type=int, default=200_000, help="training examples (default: 200,000)"
  )
  parser.add_argument("--seed", type=int, default=0, help="seeds the data (default: 0)")
  parser.add_argument(
    "--tune",
    action="store_true",
    help="choose each method's hyperparameters on the validation split (GRIDS) instead of "
    "using DEFAULTS",
  )
  parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
  args = parser.parse_args(argv)
  methods = args.methods.split(",")
  for method in methods:
    if method not in METHODS:
      parser.error(f"{method!r} is not one of {', '.join(METHODS)}")
  data = make_data(args.examples, seed=args.seed)
  results = [tune(method, data)[0] if args.tune else train(method, data) for method in methods]
  best = true_metrics(data)
  print(
    f"One pass over {args.examples:,} examples in batches of {BATCH_SIZE}; "
    f"{data.num_features:,} hashed features, {ACTIVE} active per example; seed {args.seed}; "
    f"hyperparameters {'tuned on the validation split' if args.tune else 'DEFAULTS'}."
  )
  print()
  print(table(results, data.num_features))
  print()
  print(
    f"The true weights: test log loss {best.log_loss:.4f}, AUC {best.auc:.4f}, "
    f"{np.count_nonzero(data.true_weights):,} non-zeros."
  )


if __name__ == "__main__":
  main()
