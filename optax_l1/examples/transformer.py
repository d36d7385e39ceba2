r"""A small transformer on MNIST-1D, its attention heads and MLP neurons removed, then compacted.

Each MNIST-1D signal (:mod:`optax_l1.examples.mnist1d_data`) is read as a sequence of 40
tokens: each token embeds the ``window`` values around its own (an ``nnx.Conv(1, d, 5)``,
``SAME`` padding) and a learnt positional embedding is added; then ``blocks`` pre-LayerNorm
blocks, each ``x + attention(norm(x))`` with an ``nnx.MultiHeadAttention`` of ``heads`` heads
and ``x + mlp(norm(x))`` with an MLP ``nnx.Sequential(nnx.Linear(d, hidden), gelu,
nnx.Linear(hidden, d))``; then a LayerNorm, a mean over the sequence and a linear head. The
``method`` values of :func:`train` (the keys of :data:`REGISTRY`) are:

- ``"dense"``: ``optax.adam`` (all methods: warm-up, then cosine decay; see :class:`Config`).
- ``"target"``: one :func:`optax_l1.adam` with ``target_sparsity=ramp, target_groups=True``
  per block and kind of group (``optax.partition``), the rest plain Adam. The groups are a
  head's rows of the attention's output kernel (``out.kernel``, ``(heads, head_dim, d)``,
  ``group_axis=0``) and a neuron's outgoing weights, its row of the MLP's second kernel
  (``(hidden, d)``, ``group_axis=0``). Each layer loses the fraction of its groups the ramp
  asks (:func:`sparsity_ramp`); at the ramp's end the zero set is frozen and the rest refitted.
  This is the recipe that works for the channels of a CNN (the guide "Structured sparsity and
  compaction").
- ``"group"``: group L1 at one fixed λ on the same groups (``optax_l1.adam(group_l1=λ)``).

Zero output rows remove a head (:func:`optax_l1.compact_attention`), zero outgoing weights a
neuron (:func:`optax_l1.compact_mlp`); :func:`compact` rebuilds the model with the smaller
layers, and its logits equal the original's up to float rounding.

Examples:
  The default budget (1000 steps) trains in 10–30 s per method on 2 shared CPU cores:

  >>> from optax_l1.examples import transformer
  >>> r = transformer.train("target")  # doctest: +SKIP
  >>> small, reports = transformer.compact(r.model)  # doctest: +SKIP
  >>> [report.units_after for report in reports]  # doctest: +SKIP
  [(5,), (32,)]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import optax_l1
from optax_l1.examples import mnist1d_data, timing
from optax_l1.examples.masks import path_names

LENGTH = 40  # MNIST-1D signals: 40 values, one token each
CLASSES = 10


@dataclasses.dataclass(frozen=True)
class Config:
  """The model and the run.

  Attributes:
    width: the model width ``d`` (embedding, attention features, residual stream).
    window: each token's embedding reads this many values around its own (a 1-D conv).
    heads: the attention heads per block (head size ``width // heads``).
    hidden: the MLP neurons per block.
    blocks: the transformer blocks.
    steps: the Adam steps.
    batch_size: the minibatch size.
    learning_rate: Adam's peak learning rate (cosine decay after a warm-up of 5 % of the steps).
    head_sparsity: the fraction of each block's heads ``"target"`` removes.
    neuron_sparsity: the fraction of each block's MLP neurons ``"target"`` removes.
    group_l1: λ of ``"group"``.
  """

  width: int = 32
  window: int = 5
  heads: int = 8
  hidden: int = 128
  blocks: int = 1
  steps: int = 1000
  batch_size: int = 100
  learning_rate: float = 3e-3
  head_sparsity: float = 0.375
  neuron_sparsity: float = 0.75
  group_l1: float = 1e-3


class Block(nnx.Module):
  """``x + attention(norm1(x))``, then ``x + mlp(norm2(x))``."""

  def __init__(self, width: int, heads: int, hidden: int, *, rngs: nnx.Rngs):
    self.norm1 = nnx.LayerNorm(width, rngs=rngs)
    self.attention = nnx.MultiHeadAttention(
      heads, width, qkv_features=width, decode=False, rngs=rngs
    )
    self.norm2 = nnx.LayerNorm(width, rngs=rngs)
    self.mlp = nnx.Sequential(
      nnx.Linear(width, hidden, rngs=rngs), jax.nn.gelu, nnx.Linear(hidden, width, rngs=rngs)
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    x = x + self.attention(self.norm1(x))
    return x + self.mlp(self.norm2(x))


class Transformer(nnx.Module):
  """Value and position embeddings → :class:`Block` s → LayerNorm → mean → linear head."""

  def __init__(self, config: Config = Config(), *, rngs: nnx.Rngs):
    c = config
    self.embed = nnx.Conv(1, c.width, kernel_size=c.window, padding="SAME", rngs=rngs)
    self.position = nnx.Param(0.02 * jax.random.normal(rngs.params(), (LENGTH, c.width)))
    self.blocks = nnx.List([Block(c.width, c.heads, c.hidden, rngs=rngs) for _ in range(c.blocks)])
    self.norm = nnx.LayerNorm(c.width, rngs=rngs)
    self.head = nnx.Linear(c.width, CLASSES, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    """Logits ``(batch, 10)`` of signals ``x`` ``(batch, 40)``."""
    h = self.embed(x[..., None]) + self.position[...]
    for block in self.blocks:
      h = block(h)
    return self.head(self.norm(h).mean(axis=-2))


def _kind(path: tuple[Any, ...]) -> str | None:
  """``"heads<b>"`` for block b's ``out.kernel``, ``"neurons<b>"`` for its MLP's second kernel."""
  names = path_names(path)
  if len(names) >= 4 and names[0] == "blocks" and names[-1] == "kernel":
    if names[2:] == ("attention", "out", "kernel"):
      return f"heads{names[1]}"
    if names[2:] == ("mlp", "layers", "2", "kernel"):
      return f"neurons{names[1]}"
  return None


def labels(params: Any) -> Any:
  """The ``optax.partition`` labels: :func:`_kind`'s for the grouped kernels, else ``"rest"``."""
  return jax.tree_util.tree_map_with_path(
    lambda path, _: _kind(path) or "rest", nnx.as_pure(params)
  )


def sparsity_ramp(level: float, steps: int) -> optax_l1.PolynomialSparsity:
  """tfmot's cubic ramp to ``level``, from a tenth of the steps to two thirds of them."""
  return optax_l1.polynomial_sparsity(level, begin_step=steps // 10, end_step=2 * steps // 3)


def make_optimizer(method: str, config: Config = Config()) -> optax.GradientTransformation:
  """The optax transformation of each method (see the module's docstring).

  Args:
    method: a key of :data:`REGISTRY`.
    config: the run.

  Returns:
    The transformation, for ``nnx.Optimizer(model, tx, wrt=nnx.Param)``.
  """
  if method not in REGISTRY:
    raise ValueError(f"method must be one of {tuple(REGISTRY)}, got {method!r}.")
  schedule = optax.warmup_cosine_decay_schedule(
    0.0, config.learning_rate, max(config.steps // 20, 1), config.steps
  )
  transforms: dict[str, optax.GradientTransformation] = {"rest": optax.adam(schedule)}
  for b in range(config.blocks):
    for kind in ("heads", "neurons"):
      transforms[f"{kind}{b}"] = REGISTRY[method](kind, schedule, config)
  return optax.partition(transforms, labels)


def _dense(kind: str, schedule: optax.Schedule, config: Config) -> optax.GradientTransformation:
  return optax.adam(schedule)


def _target(kind: str, schedule: optax.Schedule, config: Config) -> optax.GradientTransformation:
  level = config.head_sparsity if kind == "heads" else config.neuron_sparsity
  return optax_l1.adam(
    schedule,
    target_sparsity=sparsity_ramp(level, config.steps),
    target_groups=True,
    group_axis=0,
  )


def _group(kind: str, schedule: optax.Schedule, config: Config) -> optax.GradientTransformation:
  return optax_l1.adam(schedule, group_l1=config.group_l1, group_axis=0)


# The methods of `train`: for each grouped kernel (a block's heads, a block's neurons), its
# optimizer `f(kind, learning_rate_schedule, config)`; everything else is plain Adam.
REGISTRY: dict[str, Callable[[str, optax.Schedule, Config], optax.GradientTransformation]] = {
  "dense": _dense,
  "target": _target,
  "group": _group,
}


def loss_fn(model: Transformer, x: jax.Array, y: jax.Array) -> jax.Array:
  """Mean cross-entropy."""
  return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()


def accuracy(model: Callable[[jax.Array], jax.Array], x: np.ndarray, y: np.ndarray) -> float:
  """The fraction of ``x`` classified as ``y``."""
  logits = jax.jit(model)(jnp.asarray(x))
  return float(jnp.mean(jnp.argmax(logits, axis=-1) == jnp.asarray(y)))


@dataclasses.dataclass(frozen=True)
class TrainResult:
  """The outcome of :func:`train`.

  Attributes:
    method: the method trained.
    seed: the seed of the initialisation and the minibatches.
    test_accuracy: the accuracy on MNIST-1D's 1000 test signals.
    heads_zero: per block, the heads whose output rows are all exactly zero.
    neurons_zero: per block, the MLP neurons whose outgoing weights are all exactly zero.
    seconds: wall-clock time of the training steps, compilation excluded.
    model: the trained :class:`Transformer`.
  """

  method: str
  seed: int
  test_accuracy: float
  heads_zero: tuple[int, ...]
  neurons_zero: tuple[int, ...]
  seconds: float
  model: Transformer = dataclasses.field(repr=False)


def train(method: str, config: Config = Config(), *, seed: int = 0) -> TrainResult:
  """Trains the :class:`Transformer` on MNIST-1D with one of the methods of :data:`REGISTRY`.

  Minibatches are drawn uniformly (with replacement); all steps run in one compiled
  ``jax.lax.scan``.

  Args:
    method: a key of :data:`REGISTRY`: ``"dense"``, ``"target"`` or ``"group"``.
    config: the model and the run.
    seed: seeds the initialisation and the minibatches (the data are MNIST-1D's own).

  Returns:
    A :class:`TrainResult`.
  """
  tx = make_optimizer(method, config)
  x_train, y_train, x_test, y_test = mnist1d_data.load()
  x, y = jnp.asarray(x_train), jnp.asarray(y_train)
  model = Transformer(config, rngs=nnx.Rngs(seed))
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))

  def train_step(state, key):
    model, optimizer = nnx.merge(graphdef, state)
    batch = jax.random.randint(key, (config.batch_size,), 0, x.shape[0])
    grads = nnx.grad(loss_fn)(model, x[batch], y[batch])
    optimizer.update(model, grads)
    return nnx.state((model, optimizer)), None

  @jax.jit
  def train_steps(state, keys):
    return jax.lax.scan(train_step, state, keys)[0]

  keys = jax.random.split(jax.random.key(seed), config.steps)
  compiled = train_steps.lower(state, keys).compile()
  start = time.perf_counter()
  state = jax.block_until_ready(compiled(state, keys))
  seconds = time.perf_counter() - start
  model, _ = nnx.merge(graphdef, state)
  heads, neurons = dead_groups(model)
  return TrainResult(
    method=method,
    seed=seed,
    test_accuracy=accuracy(model, x_test, y_test),
    heads_zero=heads,
    neurons_zero=neurons,
    seconds=seconds,
    model=model,
  )


def dead_groups(model: Transformer) -> tuple[tuple[int, ...], tuple[int, ...]]:
  """Per block, the heads with all-zero output rows and the neurons with all-zero outgoing
  weights: what :func:`compact` removes (at least)."""
  heads = tuple(
    int(jnp.sum(jnp.all(b.attention.out.kernel[...] == 0, axis=(1, 2)))) for b in model.blocks
  )
  neurons = tuple(
    int(jnp.sum(jnp.all(cast(nnx.Linear, b.mlp.layers[2]).kernel[...] == 0, axis=1)))
    for b in model.blocks
  )
  return heads, neurons


def compact(model: Transformer) -> tuple[Transformer, list[optax_l1.CompactionReport]]:
  """A :class:`Transformer` with each block's attention and MLP compacted.

  Each block's ``nnx.MultiHeadAttention`` goes through :func:`optax_l1.compact_attention`
  (``sequence_length=40``, to count the attention's FLOPs) and its MLP through
  :func:`optax_l1.compact_mlp`; the embeddings, norms and head are copied. ``model`` is not
  modified.

  Args:
    model: a :class:`Transformer`.

  Returns:
    ``(small, reports)``: the compacted model, and per block the attention's and then the
    MLP's :class:`optax_l1.CompactionReport`.
  """
  small = nnx.clone(model)
  reports = []
  for block in small.blocks:
    block.attention, heads = optax_l1.compact_attention(block.attention, sequence_length=LENGTH)
    block.mlp, neurons = optax_l1.compact_mlp(block.mlp, jax.nn.gelu)
    reports += [heads, neurons]
  return small, reports


def forward_seconds(
  models: dict[str, Callable[[jax.Array], jax.Array]], x: jax.Array, repeats: int = 5
) -> dict[str, list[float]]:
  """Per model and repeat, the median of 10 timed calls of its jitted forward pass at ``x``
  (:func:`optax_l1.examples.timing.forward_times`)."""
  return timing.forward_times(models, x, repeats=repeats, calls=10)


def main(argv: Sequence[str] | None = None) -> None:
  """Trains dense and ``"target"``, compacts the latter, checks its logits, times both."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--steps", type=int, default=Config.steps)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  config = Config(steps=args.steps)
  dense = train("dense", config, seed=args.seed)
  sparse = train("target", config, seed=args.seed)
  small, reports = compact(sparse.model)
  _, _, x_test, y_test = mnist1d_data.load()
  x = jnp.asarray(x_test)
  error = float(jnp.max(jnp.abs(small(x) - sparse.model(x))))
  print(f"dense: {dense.test_accuracy:.1%} test accuracy ({dense.seconds:.1f} s)")
  print(
    f"target: {sparse.test_accuracy:.1%} ({sparse.seconds:.1f} s); compacted "
    f"{accuracy(small, x_test, y_test):.1%}, logits within {error:.1e}"
  )
  for report in reports:
    print(report)
  batch = jnp.tile(x, (2, 1))[:1024]
  times = forward_seconds({"dense": dense.model, "compacted": small}, batch)
  dense_ms, small_ms = (1e3 * float(np.median(t)) for t in times.values())
  print(
    f"forward at batch 1024: dense {dense_ms:.2f} ms, compacted {small_ms:.2f} ms "
    f"({dense_ms / small_ms:.2f}× faster)"
  )


if __name__ == "__main__":
  main()
