r"""Conv channels removed from an MNIST-1D CNN, five ways, each compacted into a smaller CNN.

The CNN of issue #14: three 1-D convs of 32 channels (kernels 5, 3, 3, ``SAME`` padding, ReLU),
a global average pool and a linear head, trained with Adam (lr 3e-3, batch 100 drawn with
replacement, 3000 steps) on MNIST-1D (:mod:`optax_l1.examples.mnist1d_data`: 4000 training and
1000 test signals of 40 points, generated here). The head is stored as a 1×1 ``nnx.Conv`` on
the pooled features (a linear map: ``head(mean(h)) == mean(head(h))``), so that
:func:`optax_l1.compact_conv_stack` takes ``[conv1, conv2, conv3, head]`` whole and conv3's
channels are hidden channels too (96 in all).

Every method puts its groups on each hidden channel's *outgoing* weights (``group_axis=-2``,
the input channels of the next kernel, ``(window, in, out)``): a channel nobody reads is removed
whatever the padding. The ``method`` values of :func:`train` (the keys of :data:`REGISTRY`):

- ``"dense"``: ``optax.adam``.
- ``"penalty"``: ``optax.adam`` with :math:`\lambda\sum_g\|w_g\|_2` over those groups added to
  the loss (group lasso as a Keras regulariser would add it): small groups, no exact zeros.
- ``"group"``: ``optax_l1.adam(group_l1=λ, group_axis=-2)``, one optimizer, one fixed λ.
- ``"target"``: one ``optax_l1.adam(target_sparsity=ramp, target_groups=True)`` per layer
  (``optax.partition``, ``"l0"``): each layer loses the fraction ``level`` of its channels
  along tfmot's cubic ramp (steps 300 → 2000), then the zero set is frozen and the survivors
  refitted.
- ``"gmp"``: the baseline, gradual magnitude pruning of channels (:func:`channel_gmp`): the same
  ramp and per-layer fraction, every 100 steps the channels of smallest outgoing L2 norm
  masked to zero.

Each run ends with :func:`compact`, a check that the compacted CNN's test logits equal the
original's (:attr:`Result.max_logit_error`), and a timed forward pass of both at batch 1024.
``python -m optax_l1.examples.mnist1d_cnn`` trains all five and prints a table: each run
trains for 7–9 s on a 2-core CPU, the five with compilation and timing in 75 s there
(``--steps`` scales the budget and the ramps down).

Examples:
  >>> import jax.numpy as jnp
  >>> from flax import nnx
  >>> from optax_l1.examples import mnist1d_cnn
  >>> model = mnist1d_cnn.CNN(rngs=nnx.Rngs(0))
  >>> model(jnp.zeros((2, 40))).shape
  (2, 10)
  >>> small, report = mnist1d_cnn.compact(model)  # nothing is zero yet: nothing removed
  >>> report.units_after
  (32, 32, 32)

  Trained with target-sparsity groups, seed 0, on a 2-core CPU:

  >>> r = mnist1d_cnn.train("target")  # doctest: +SKIP
  >>> print(f"{r.test_accuracy:.1%}, kept {r.channels}, {r.speedup:.1f}× faster")  # doctest: +SKIP
  97.6%, kept (16, 16, 16), 2.0× faster
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import optax_l1
from optax_l1.examples import mnist1d_data, timing

HIDDEN = ("conv1", "conv2", "conv3")  # the layers whose output channels are hidden
READERS = ("conv2", "conv3", "head")  # their readers: the kernels holding the outgoing weights
KERNEL_INIT = nnx.initializers.he_normal()


def conv1d_as_matmul(lhs, rhs, window_strides, padding, **kwargs) -> jax.Array:
  """A stride-1 1-D cross-correlation (NWC input, WIO kernel), as one matrix product.

  It computes what ``nnx.Conv``'s default ``lax.conv_general_dilated`` does: the ``width``
  shifted views of the padded input side by side, ``(batch, n, width·in)``, times the kernel
  reshaped to ``(width·in, out)``. XLA:CPU runs a convolution inside a ``lax.scan`` (the
  training loop) many times slower than this form.
  """
  others = {
    k: v for k, v in kwargs.items() if k != "dimension_numbers" and v not in (None, 1, (1,))
  }
  if tuple(window_strides) != (1,) or lhs.ndim != 3 or others:
    raise NotImplementedError(f"only stride-1 1-D convs, got {window_strides} and {others}")
  width = rhs.shape[0]
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(lhs.shape[1:2], rhs.shape[:1], window_strides, padding)
  x = jnp.pad(lhs, ((0, 0), tuple(padding[0]), (0, 0)))
  n = x.shape[1] - width + 1
  windows = jnp.concatenate([x[:, i : i + n, :] for i in range(width)], axis=-1)
  return windows @ rhs.reshape(-1, rhs.shape[-1])


class CNN(nnx.Module):
  """Three 1-D convs (kernels 5, 3, 3, ``SAME``, ReLU), global average pool, linear head.

  The head is a 1×1 ``nnx.Conv`` applied to the pooled features, kernel ``(1, channels,
  classes)``: the linear head, in the form :func:`optax_l1.compact_conv_stack` takes.
  """

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
    self.head = conv(channels, classes, kernel_size=1)

  def __call__(self, x: jax.Array) -> jax.Array:
    h = x[..., None]  # (batch, 40) → (batch, 40, 1)
    for conv in (self.conv1, self.conv2, self.conv3):
      h = jax.nn.relu(conv(h))
    return self.head(h.mean(axis=1, keepdims=True))[:, 0]


def compact(model: CNN) -> tuple[nnx.Sequential, optax_l1.CompactionReport]:
  """``optax_l1.compact_conv_stack([conv1, conv2, conv3, head], relu)`` (per example of 40)."""
  convs = [model.conv1, model.conv2, model.conv3, model.head]
  return optax_l1.compact_conv_stack(convs, jax.nn.relu, input_shape=(40,))


def compacted_logits(small: nnx.Sequential, x: jax.Array) -> jax.Array:
  """The compacted CNN's logits: its convs and ReLUs, the pool, then the head (its last layer)."""
  h = x[..., None]
  for layer in small.layers[:-1]:
    h = layer(h)
  return small.layers[-1](h.mean(axis=1, keepdims=True))[:, 0]


class Budget(NamedTuple):
  """A run's budget and strengths.

  Attributes:
    steps: Adam steps.
    begin: the step at which the ramps of ``"target"`` and ``"gmp"`` start.
    end: the step at which they reach ``level`` (then the zero set is frozen).
    frequency: ``"gmp"`` recomputes its masks every ``frequency`` steps of the ramp.
    level: the fraction of each layer's channels ``"target"`` and ``"gmp"`` remove.
    strength: λ of ``"penalty"`` and ``"group"``.
    batch_size: the minibatch size.
    learning_rate: Adam's learning rate.
  """

  steps: int = 3000
  begin: int = 300
  end: int = 2000
  frequency: int = 100
  level: float = 0.5
  strength: float = 1e-3
  batch_size: int = 100
  learning_rate: float = 3e-3


def _labels(params: Any) -> Any:
  """``optax.partition``'s labels: each reader's kernel its own, ``"rest"`` elsewhere."""
  return jax.tree_util.tree_map_with_path(
    lambda path, _: path[0].key if path[0].key in READERS and path[-1].key == "kernel" else "rest",
    params,
  )


def reader_kernels(params: Any) -> Any:
  """``True`` on the kernels of conv2, conv3 and the head (the hidden channels' readers)."""
  return jax.tree.map(lambda label: label != "rest", _labels(params))


def ramp(budget: Budget) -> optax_l1.PolynomialSparsity:
  """tfmot's cubic ramp from 0 at ``budget.begin`` to ``budget.level`` at ``budget.end``."""
  return optax_l1.polynomial_sparsity(budget.level, begin_step=budget.begin, end_step=budget.end)


def channel_gmp(budget: Budget) -> optax.GradientTransformationExtraArgs:
  """Gradual magnitude pruning of hidden channels by the L2 norm of their outgoing weights.

  Adam's step, then at steps ``begin, begin + frequency, …, end`` the mask of each reader's
  kernel is recomputed: per layer, the ``round(n (1 − s_t))`` channels of largest outgoing norm
  are kept (:func:`ramp` gives :math:`s_t`; a pruned channel has norm 0 and stays pruned unless
  too few are left). Masked weights are set to zero at every step; after ``end`` the masks are
  frozen.
  """
  inner = optax.adam(budget.learning_rate)
  schedule = ramp(budget)

  def keep_mask(kernel, fraction):  # (1, in, 1): the in-channels kept
    norms = jnp.sqrt(jnp.sum(jnp.square(kernel), axis=(0, 2)))
    keep = jnp.round(norms.size * (1 - fraction)).astype(jnp.int32)
    rank = jnp.argsort(jnp.argsort(-norms))  # 0 for the largest norm
    return (rank < keep)[None, :, None]

  def masks_of(params, fraction):
    return {name: keep_mask(params[name]["kernel"], fraction) for name in READERS}

  def init_fn(params):
    return jnp.zeros([], jnp.int32), masks_of(params, 0.0), inner.init(params)

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    count, masks, inner_state = state
    updates, inner_state = inner.update(updates, inner_state, params)
    new = optax.apply_updates(params, updates)
    step = count + 1
    prune = (step >= budget.begin) & (step <= budget.end)
    prune &= (step - budget.begin) % budget.frequency == 0
    masks = jax.lax.cond(prune, lambda: masks_of(new, schedule(step)), lambda: masks)

    def masked(path, u, w):
      name = path[0].key
      if name in READERS and path[-1].key == "kernel":
        return jnp.where(masks[name], u, -w)
      return u

    updates = jax.tree_util.tree_map_with_path(masked, updates, params)
    return updates, (step, masks, inner_state)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _target_per_layer(budget: Budget) -> optax.GradientTransformation:
  lr = budget.learning_rate
  per_layer = {
    name: optax_l1.adam(lr, target_sparsity=ramp(budget), target_groups=True, group_axis=-2)
    for name in READERS
  }
  return optax.partition({"rest": optax.adam(lr), **per_layer}, _labels)


# The methods of `train`, in the order they are shown.
REGISTRY: dict[str, tuple[str, Callable[[Budget], optax.GradientTransformation]]] = {
  "dense": ("optax.adam", lambda b: optax.adam(b.learning_rate)),
  "penalty": ("optax.adam, λ·Σ‖w_g‖ in the loss", lambda b: optax.adam(b.learning_rate)),
  "group": (
    "optax_l1.adam(group_l1=λ), outgoing groups",
    lambda b: optax_l1.adam(
      b.learning_rate, group_l1=b.strength, group_axis=-2, mask=reader_kernels
    ),
  ),
  "target": ("target-sparsity groups per layer (l0), refit", _target_per_layer),
  "gmp": ("channel GMP by outgoing norm (baseline)", channel_gmp),
}
METHODS = tuple(REGISTRY)


def make_optimizer(method: str, budget: Budget | None = None) -> optax.GradientTransformation:
  """The optax transformation of ``method`` (a key of :data:`REGISTRY`)."""
  if method not in REGISTRY:
    raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
  return REGISTRY[method][1](budget or Budget())


def group_norms(params: Any) -> jax.Array:
  r""":math:`\sum_g \|w_g\|_2` over the hidden channels' outgoing weights (``safe_norm``: its
  gradient is finite at zero)."""
  return sum(
    (jnp.sum(optax.safe_norm(params[name]["kernel"], 0.0, axis=(0, 2))) for name in READERS),
    start=jnp.zeros([]),
  )


@dataclasses.dataclass(frozen=True)
class Result:
  """The outcome of :func:`train`.

  Attributes:
    method: the method trained.
    seed: the seed of the initialisation and the minibatches.
    test_accuracy: the trained CNN's accuracy on the 1000 test signals.
    channels: the channels :func:`compact` keeps, per hidden layer (conv1, conv2, conv3).
    removed_fraction: the fraction of the 96 hidden channels it removes.
    max_logit_error: max |logits − compacted logits| on the test set.
    logit_scale: max |logits| on the test set.
    dense_ms: the original CNN's forward pass at batch 1024 (jitted; median of the calls).
    compacted_ms: the compacted CNN's.
    seconds: the training steps' wall time, compilation excluded.
    report: :func:`optax_l1.compact_conv_stack`'s report.
    model: the trained CNN.
    compacted: the compacted ``nnx.Sequential``.
  """

  method: str
  seed: int
  test_accuracy: float
  channels: tuple[int, ...]
  removed_fraction: float
  max_logit_error: float
  logit_scale: float
  dense_ms: float
  compacted_ms: float
  seconds: float
  report: optax_l1.CompactionReport = dataclasses.field(repr=False)
  model: CNN = dataclasses.field(repr=False)
  compacted: nnx.Sequential = dataclasses.field(repr=False)

  @property
  def speedup(self) -> float:
    """``dense_ms / compacted_ms``."""
    return self.dense_ms / self.compacted_ms


def forward_ms(
  forwards: Sequence[Callable[[jax.Array], jax.Array]],
  x: jax.Array,
  calls: int,
  lock: str | None = None,
) -> list[float]:
  """Per function, the median of ``calls`` timed calls of it jitted (compiled first), the
  functions interleaved call by call so that load changes hit them alike; with ``lock`` (a
  file's path), the timing holds an exclusive ``flock`` on it, so that two timing runs sharing
  that file never overlap."""
  models = {str(k): f for k, f in enumerate(forwards)}
  with contextlib.ExitStack() as stack:
    if lock is not None:
      import fcntl  # Unix only, and only when asked for

      fcntl.flock(stack.enter_context(open(lock, "a")), fcntl.LOCK_EX)
    # One call per repeat: the functions take turns call by call.
    times = timing.forward_times(models, x, repeats=calls, calls=1)
  return [1e3 * float(np.median(times[k])) for k in models]


def train(
  method: str,
  *,
  budget: Budget | None = None,
  seed: int = 0,
  timing_calls: int = 50,
  timing_lock: str | None = None,
) -> Result:
  """Trains the :class:`CNN` with ``method``, compacts it, checks and times the compacted CNN.

  The steps run in one compiled ``jax.lax.scan`` (minibatches drawn with replacement).

  Args:
    method: a key of :data:`REGISTRY`: ``"dense"``, ``"penalty"``, ``"group"``, ``"target"``
      or ``"gmp"``.
    budget: the :class:`Budget` (default: the issue's 3000 steps, λ 1e-3, level 0.5).
    seed: seeds the initialisation and the minibatches (the data are always the same).
    timing_calls: timed calls of each forward pass at batch 1024.
    timing_lock: a file to hold an exclusive ``flock`` on while timing (see :func:`forward_ms`).

  Returns:
    A :class:`Result`.

  Raises:
    ValueError: for an unknown ``method``.
    RuntimeError: if the compacted CNN's test logits differ from the original's by more than
      ``1e-5 · max(1, max |logit|)``.
  """
  budget = budget or Budget()
  tx = make_optimizer(method, budget)
  penalty = budget.strength if method == "penalty" else 0.0
  x_train, y_train, x_test, y_test = map(jnp.asarray, mnist1d_data.load())
  # Initialised and evaluated under jit: eagerly, each op compiles on its own (seconds).
  graphdef = nnx.split(nnx.eval_shape(lambda: CNN(rngs=nnx.Rngs(0))), nnx.Param)[0]
  init = jax.jit(lambda key: nnx.as_pure(nnx.split(CNN(rngs=nnx.Rngs(key)), nnx.Param)[1]))
  params = init(jax.random.key(seed))

  def loss_fn(params, x, y):
    logits = nnx.merge(graphdef, params)(x)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss + penalty * group_norms(params) if penalty else loss

  @jax.jit
  def run(params, keys):
    def body(carry, key):
      params, opt_state = carry
      batch = jax.random.randint(key, (budget.batch_size,), 0, x_train.shape[0])
      grads = jax.grad(loss_fn)(params, x_train[batch], y_train[batch])
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), None

    return jax.lax.scan(body, (params, tx.init(params)), keys)[0][0]

  keys = jax.random.split(jax.random.key(seed), budget.steps)
  compiled = run.lower(params, keys).compile()
  start = time.perf_counter()
  params = jax.block_until_ready(compiled(params, keys))
  seconds = time.perf_counter() - start

  model = nnx.merge(graphdef, params)
  logits = jax.jit(lambda params: nnx.merge(graphdef, params)(x_test))(params)
  small, report = compact(model)
  small_logits = jax.jit(functools.partial(compacted_logits, small))(x_test)
  error = float(jnp.max(jnp.abs(small_logits - logits)))
  scale = float(jnp.max(jnp.abs(logits)))
  if not error <= 1e-5 * max(1.0, scale):  # float32 rounding only; NaN fails too
    raise RuntimeError(
      f"{method}: the compacted CNN's logits differ from the original's by {error:.2e} "
      f"(max |logit| {scale:.2e}): compact_conv_stack is not exact here."
    )
  x = jax.random.normal(jax.random.key(0), (1024, 40))
  dense_ms, compacted_ms = forward_ms(
    [model, functools.partial(compacted_logits, small)], x, timing_calls, timing_lock
  )
  return Result(
    method=method,
    seed=seed,
    test_accuracy=float(jnp.mean(jnp.argmax(logits, -1) == y_test)),
    channels=report.units_after,
    removed_fraction=1 - sum(report.units_after) / sum(report.units_before),
    max_logit_error=error,
    logit_scale=scale,
    dense_ms=dense_ms,
    compacted_ms=compacted_ms,
    seconds=seconds,
    report=report,
    model=model,
    compacted=small,
  )


def _mean_std(values: Sequence[float]) -> str:
  a = np.asarray(values, np.float64)
  return f"{a.mean():.2f} ± {a.std(ddof=1) if a.size > 1 else 0.0:.2f}"


def table(results: dict[str, list[Result]]) -> str:
  """A Markdown table of :func:`train`'s results per method (mean ± sample std over seeds; the
  logit error is the largest max |Δlogit| / max |logit| of the seeds)."""
  lines = [
    "| method | test acc % | hidden channels removed % | kept (conv1, conv2, conv3) "
    "| max rel. Δlogit | dense ms | compacted ms | speed-up |",
    "|---|---:|---:|---|---:|---:|---:|---:|",
  ]
  for method, runs in results.items():
    kept = " / ".join(f"{np.mean([r.channels[i] for r in runs]):.1f}" for i in range(3))
    lines.append(
      f"| {method} | {_mean_std([100 * r.test_accuracy for r in runs])} "
      f"| {_mean_std([100 * r.removed_fraction for r in runs])} | {kept} "
      f"| {max(r.max_logit_error / r.logit_scale for r in runs):.1e} "
      f"| {_mean_std([r.dense_ms for r in runs])} | {_mean_std([r.compacted_ms for r in runs])} "
      f"| {_mean_std([r.speedup for r in runs])} |"
    )
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, list[Result]]:
  """``python -m optax_l1.examples.mnist1d_cnn [--methods …] [--seeds 0,1,2] [--steps N]``."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated")
  parser.add_argument("--seeds", default="0", help="comma-separated seeds")
  parser.add_argument("--steps", type=int, default=Budget().steps, help="Adam steps")
  parser.add_argument("--timing-lock", help="hold a flock on this file while timing")
  args = parser.parse_args(argv)
  methods = args.methods.split(",")
  for method in methods:
    if method not in REGISTRY:
      parser.error(f"method must be one of {METHODS}, got {method!r}")
  full = Budget()
  scale = args.steps / full.steps  # the ramp at the same fractions of the run
  budget = full._replace(
    steps=args.steps,
    begin=round(full.begin * scale),
    end=max(round(full.end * scale), round(full.begin * scale) + 1),
    frequency=max(1, round(full.frequency * scale)),
  )
  results: dict[str, list[Result]] = {}
  for method in methods:
    for seed in args.seeds.split(","):
      r = train(method, budget=budget, seed=int(seed), timing_lock=args.timing_lock)
      results.setdefault(method, []).append(r)
      print(
        f"  {method} seed {r.seed}: acc {100 * r.test_accuracy:.2f} %, kept {r.channels}, "
        f"max |Δlogit| {r.max_logit_error:.1e}, {r.dense_ms:.2f} → {r.compacted_ms:.2f} ms, "
        f"trained in {r.seconds:.1f} s",
        file=sys.stderr,
        flush=True,
      )
  print(table(results))
  return results


if __name__ == "__main__":
  main()
