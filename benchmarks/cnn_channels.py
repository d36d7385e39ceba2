"""Conv channels removed on the MNIST-1D CNN: group L1, target-sparsity groups, channel pruning.

The CNN of :mod:`frontier_models` (three 1-D convs of 32 channels, kernels 5/3/3, ReLU,
``SAME`` padding, global average pool, linear head), trained with Adam (lr 3e-3), batch 100
(drawn with replacement), 3000 steps, He-initialised kernels. After training, the head is
written as a 1×1 conv put last in the stack (the head of the mean is the mean of the 1×1 conv),
and :func:`optax_l1.compact_conv_stack` compacts ``[conv1, conv2, conv3, head]``: the channels
counted as removed are those it removes, of the 96 hidden ones (the outputs of conv1, conv2 and
conv3), and the compacted network's logits are checked against the original's.

Methods (:data:`METHODS`; ``name:value`` sets λ or the level):

- ``dense``: ``optax.adam``.
- ``group_in:λ``: ``optax_l1.adam(group_l1=λ)`` on the three conv kernels' output channels
  (``group_axis=-1``, a channel's incoming weights): the issue's setting.
- ``group_out:λ``: groups on each channel's *outgoing* weights: ``group_axis=-2`` on conv2's
  and conv3's kernels (the input channels), ``group_axis=0`` on the head's kernel (its rows),
  in one optimizer (``group_axis`` a function of the params).
- ``refit_in:λ``, ``refit_out:λ``: the same until step 2000, then the zero set frozen
  (``optax_l1.keep_zeros``) and the survivors trained with plain Adam for the last 1000 steps.
- ``ramp_in:λ``, ``ramp_out:λ``: as ``refit_*``, with λ ramped from 0 at step 300 to λ at
  2000 (cubic).
- ``target_in:level``, ``target_out:level``: ``target_sparsity=polynomial_sparsity(level, 300,
  2000), target_groups=True`` (l0: whole groups kept or removed by norm, then frozen), the
  level a fraction of the 96 groups, on the incoming or outgoing layouts above.
- ``target_in_layer:level``, ``target_out_layer:level``, ``target_l1_out_layer:level``: one
  such optimizer per layer (``optax.partition``), so that each layer loses the fraction
  ``level`` of its own 32 channels (the last with ``sparsity_penalty="l1"``: group L1).
- ``gmp_channels:level``: gradual magnitude pruning of channels (``benchmarks/pruning.py``,
  tfmot's cubic ramp 300→2000, masks every 100 steps), per layer, each conv's output channels
  scored by the L2 norm of their incoming weights (their filter), the level a fraction of each
  layer's 32; a pruned channel's bias is zeroed with it (otherwise it would output the constant
  σ(b), which ``SAME`` padding keeps from being folded away).
- ``gmp_channels_out:level``: the same ramp and frequency, each channel scored by the L2 norm of
  its outgoing weights (the layouts of ``group_out``).

Usage::

  nice -n 19 .venv/bin/python benchmarks/cnn_channels.py --seeds 0,1,2 \\
      --methods dense,group_in:1e-3,refit_out:1e-3,target_out_layer:0.5,gmp_channels_out:0.5
  nice -n 19 .venv/bin/python benchmarks/cnn_channels.py --quick   # a few steps: a smoke test
  ... --trace                  # the training loss and the dead channels, every tenth of the run
  ... --smallest-group-step    # diagnostic: each group thresholded with its smallest step size
  ... --time                   # the forward pass at batch 1024 (holds /tmp/optax_l1_timing.lock)
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import frontier_models as fm
import pruning
from _machine import cpu_model

import optax_l1
from optax_l1.examples import timing


@dataclasses.dataclass(frozen=True)
class Config:
  """The training budget: steps, the ramp ``[begin, end]`` (and the refit's start), GMP's mask
  frequency."""

  steps: int = 3000
  begin: int = 300
  end: int = 2000
  frequency: int = 100
  batch_size: int = 100
  learning_rate: float = 3e-3


FULL = Config()
QUICK = Config(steps=30, begin=4, end=20, frequency=4)
CONVS = ("conv1", "conv2", "conv3")


def _path_mask(names: Sequence[str]) -> Callable[[Any], Any]:
  """True on the kernels of the modules ``names``."""

  def mask(params):
    return jax.tree_util.tree_map_with_path(
      lambda path, _: path[0].key in names and path[-1].key == "kernel", params
    )

  return mask


INCOMING_MASK = _path_mask(CONVS)
OUTGOING_MASK = _path_mask(("conv2", "conv3", "head"))


def outgoing_axes(params: Any) -> Any:
  """Per leaf, the axis of the previous layer's channels: conv kernels ``(window, in, out)``
  -2, the head's kernel ``(in, out)`` 0 (other leaves are not penalised: any axis)."""
  return jax.tree_util.tree_map_with_path(
    lambda path, _: 0 if path[0].key == "head" else -2, params
  )


def _group(layout: str, strength: Any, config: Config) -> optax.GradientTransformation:
  if layout == "in":
    return optax_l1.adam(config.learning_rate, group_l1=strength, mask=INCOMING_MASK)
  return optax_l1.adam(
    config.learning_rate, group_l1=strength, group_axis=outgoing_axes, mask=OUTGOING_MASK
  )


def switch(
  first: optax.GradientTransformation, second: optax.GradientTransformation, at: int
) -> optax.GradientTransformationExtraArgs:
  """``first`` for the first ``at`` updates, then ``second`` (its state fresh at the switch)."""

  def init_fn(params):
    return jnp.zeros([], jnp.int32), first.init(params), second.init(params)

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    count, state1, state2 = state

    def before():
      new, state1_ = first.update(updates, state1, params)
      return new, state1_, state2

    def after():
      new, state2_ = second.update(updates, state2, params)
      return new, state1, state2_

    new, state1, state2 = jax.lax.cond(count < at, before, after)
    return new, (optax.safe_increment(count), state1, state2)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _refit(layout: str, strength: float, config: Config) -> optax.GradientTransformation:
  """Group L1 until ``config.end``, then plain Adam on the survivors, the zeros kept."""
  refit = optax.chain(optax.adam(config.learning_rate), optax_l1.keep_zeros())
  return switch(_group(layout, strength, config), refit, config.end)


def _ramp(layout: str, strength: float, config: Config) -> optax.GradientTransformation:
  """Group L1 ramped from 0 at ``config.begin`` to λ at ``config.end`` (cubic, as the pruning
  ramps), then the zero set frozen and the survivors refitted (as ``_refit``)."""

  def ramp(count):
    progress = jnp.clip((count - config.begin) / (config.end - config.begin), 0.0, 1.0)
    return strength * (1 - (1 - progress) ** 3)

  refit = optax.chain(optax.adam(config.learning_rate), optax_l1.keep_zeros())
  return switch(_group(layout, ramp, config), refit, config.end)


def _target(layout: str, level: float, config: Config) -> optax.GradientTransformation:
  schedule = optax_l1.polynomial_sparsity(level, begin_step=config.begin, end_step=config.end)
  if layout == "in":
    return optax_l1.adam(
      config.learning_rate, target_sparsity=schedule, target_groups=True, mask=INCOMING_MASK
    )
  return optax_l1.adam(
    config.learning_rate,
    target_sparsity=schedule,
    target_groups=True,
    group_axis=outgoing_axes,
    mask=OUTGOING_MASK,
  )


def _layer_labels(names: Sequence[str]) -> Callable[[Any], Any]:
  """Labels for ``optax.partition``: each kernel of ``names`` its own, ``"rest"`` elsewhere."""

  def labels(params):
    return jax.tree_util.tree_map_with_path(
      lambda path, _: path[0].key if path[0].key in names and path[-1].key == "kernel" else "rest",
      params,
    )

  return labels


def _target_per_layer(
  layout: str, level: float, config: Config, penalty: str = "l0"
) -> optax.GradientTransformation:
  """One target-sparsity optimizer per layer (``optax.partition``): each layer loses the
  fraction ``level`` of its own channels, as per-layer GMP does."""
  schedule = optax_l1.polynomial_sparsity(level, begin_step=config.begin, end_step=config.end)
  names = CONVS if layout == "in" else ("conv2", "conv3", "head")
  axis = -1 if layout == "in" else None
  transforms: dict[str, optax.GradientTransformation] = {"rest": optax.adam(config.learning_rate)}
  for name in names:
    group_axis = axis if axis is not None else (0 if name == "head" else -2)
    transforms[name] = optax_l1.adam(
      config.learning_rate,
      target_sparsity=schedule,
      target_groups=True,
      sparsity_penalty=penalty,
      group_axis=group_axis,
    )
  return optax.partition(transforms, _layer_labels(names))


def zero_dead_biases() -> optax.GradientTransformationExtraArgs:
  """Last in a chain: sets to zero the bias of every conv channel whose kernel column is zero
  after the update, so that a pruned channel outputs σ(0) = 0 and compaction removes it."""

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    new = optax.apply_updates(params, updates)
    dead = {
      name: jnp.all(new[name]["kernel"] == 0, axis=tuple(range(new[name]["kernel"].ndim - 1)))
      for name in CONVS
    }

    def bias(path, u, p):
      if path[0].key in CONVS and path[-1].key == "bias":
        return jnp.where(dead[path[0].key], -p, u)
      return u

    return jax.tree_util.tree_map_with_path(bias, updates, params), state

  return optax.GradientTransformationExtraArgs(lambda params: optax.EmptyState(), update_fn)


def _gmp(level: float, config: Config) -> optax.GradientTransformation:
  """Channel GMP per layer, by the L2 norm of each channel's incoming weights (its filter),
  the pruned channels' biases zeroed too."""
  schedule = pruning.PolynomialDecay(0.0, level, config.begin, config.end, 3, config.frequency)
  gmp = pruning.prune_low_magnitude(
    optax.adam(config.learning_rate), schedule, INCOMING_MASK, scope="layer", granularity="unit"
  )
  return optax.chain(gmp, zero_dead_biases())


OUTGOING_AXES = {"conv2": -2, "conv3": -2, "head": 0}  # the previous layer's channels


def _outgoing_masks(params: Any, sparsity: jax.Array) -> Any:
  """GMP's masks by outgoing weights: per layer, the channels whose outgoing weights have the
  smallest L2 norms (tfmot's rule: the ``round(n·(1 − s))`` largest kept, ties kept)."""

  def mask(path, x):
    name = path[0].key
    if name not in OUTGOING_AXES or path[-1].key != "kernel":
      return jnp.ones((), bool)
    axis = OUTGOING_AXES[name] % x.ndim
    others = tuple(a for a in range(x.ndim) if a != axis)
    scores = jnp.sqrt(jnp.sum(jnp.square(x), axis=others))
    keep = scores >= pruning._keep_threshold(scores, sparsity)
    return jnp.broadcast_to(jnp.expand_dims(keep, others), x.shape)

  return jax.tree_util.tree_map_with_path(mask, params)


def _gmp_outgoing(level: float, config: Config) -> optax.GradientTransformationExtraArgs:
  """Channel GMP per layer by the L2 norm of each channel's outgoing weights, with
  ``pruning.prune_low_magnitude``'s order of operations and schedule."""
  schedule = pruning.PolynomialDecay(0.0, level, config.begin, config.end, 3, config.frequency)
  inner = optax.adam(config.learning_rate)

  def init_fn(params):
    masks = _outgoing_masks(params, jnp.float32(0.0))
    return pruning.PruningState(jnp.zeros([], jnp.int32), masks, inner.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    updates, inner_state = inner.update(updates, state.inner_state, params)
    new_params = optax.apply_updates(params, updates)
    step = state.count + 1
    prune, target = schedule(step)
    masks = jax.lax.cond(prune, lambda: _outgoing_masks(new_params, target), lambda: state.masks)
    updates = jax.tree.map(lambda u, w, m: jnp.where(m, u, -w), updates, params, masks)
    return updates, pruning.PruningState(step, masks, inner_state)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


BUILDERS: dict[str, Callable[[float, Config], optax.GradientTransformation]] = {
  "dense": lambda value, config: optax.adam(config.learning_rate),
  "group_in": lambda value, config: _group("in", value, config),
  "group_out": lambda value, config: _group("out", value, config),
  "refit_in": lambda value, config: _refit("in", value, config),
  "refit_out": lambda value, config: _refit("out", value, config),
  "ramp_in": lambda value, config: _ramp("in", value, config),
  "ramp_out": lambda value, config: _ramp("out", value, config),
  "target_in": lambda value, config: _target("in", value, config),
  "target_out": lambda value, config: _target("out", value, config),
  "target_in_layer": lambda value, config: _target_per_layer("in", value, config),
  "target_out_layer": lambda value, config: _target_per_layer("out", value, config),
  "target_l1_out_layer": lambda value, config: _target_per_layer("out", value, config, "l1"),
  "gmp_channels": _gmp,
  "gmp_channels_out": _gmp_outgoing,
}
METHODS = tuple(BUILDERS)


def parse_method(text: str) -> tuple[str, float]:
  name, _, value = text.partition(":")
  if name not in BUILDERS:
    raise ValueError(f"{name!r} is not one of {', '.join(BUILDERS)}")
  if name != "dense" and not value:
    raise ValueError(f"{name} needs a value: {name}:λ or {name}:level")
  return name, float(value) if value else 0.0


def head_as_conv(model: fm.CNN) -> nnx.Conv:
  """The linear head as a 1×1 conv: ``head(mean(h)) == mean(conv(h))``."""
  kernel, bias = model.head.kernel[...], model.head.bias[...]
  return nnx.Conv(
    kernel.shape[0],
    kernel.shape[1],
    kernel_size=1,
    kernel_init=lambda *_: kernel[None],
    bias_init=lambda *_: bias,
    rngs=nnx.Rngs(0),
  )


def compact(model: fm.CNN) -> tuple[nnx.Sequential, optax_l1.CompactionReport]:
  """``compact_conv_stack([conv1, conv2, conv3, head as a 1×1 conv], relu)``."""
  convs = [model.conv1, model.conv2, model.conv3, head_as_conv(model)]
  return optax_l1.compact_conv_stack(convs, jax.nn.relu, input_shape=(40,))


def compacted_logits(small: nnx.Sequential, x: jax.Array) -> jax.Array:
  """The compacted CNN's logits: the convs, then the pool, then the head (the last 1×1 conv),
  which is linear, so that it runs on the pooled features as the original's head does."""
  h = x[..., None]
  for layer in small.layers[:-1]:
    h = layer(h)
  return small.layers[-1](h.mean(axis=1, keepdims=True))[:, 0]


@dataclasses.dataclass(frozen=True)
class Run:
  method: str
  value: float
  seed: int
  accuracy: float
  channels: tuple[int, ...]  # kept per hidden layer, after compaction
  removed: float  # fraction of the 96 hidden channels removed by compaction
  max_error: float  # max |logits - compacted logits| / max |logits|, on the test set
  seconds: float
  model: Any = dataclasses.field(default=None, repr=False, compare=False)  # the trained CNN


def dead_channels(params: Any) -> jax.Array:
  """Per hidden layer (conv1, conv2, conv3), the channels whose incoming or outgoing weights
  are all zero (during training: compaction may remove more, constant channels)."""
  counts = []
  for incoming, outgoing in (("conv1", "conv2"), ("conv2", "conv3"), ("conv3", "head")):
    w_in, w_out = params[incoming]["kernel"], params[outgoing]["kernel"]
    dead_in = jnp.all(w_in == 0, axis=tuple(range(w_in.ndim - 1)))
    dead_out = jnp.all(w_out == 0, axis=tuple(a for a in range(w_out.ndim) if a != w_out.ndim - 2))
    counts.append(jnp.sum(dead_in | dead_out))
  return jnp.stack(counts)


def smallest_group_step() -> None:
  """A diagnostic, not the library's rule: each group thresholded with the *smallest* step
  size in it (the largest d), the most conservative choice, in place of its mean metric's."""
  from optax_l1 import _numerics, _penalties

  original = _penalties.prox_in_metric

  def prox_in_metric(v, lr, scale, penalty):
    if jnp.ndim(scale) and not _numerics.is_static_zero(penalty.group_l1):
      split, axis = _penalties.split_groups(jnp.broadcast_to(scale, v.shape), penalty.group_axis)
      axes = _numerics.group_reduction_axes(split.shape, axis)
      smallest = jnp.min(split, axis=axes, keepdims=True)
      scale = jnp.broadcast_to(smallest, split.shape).reshape(v.shape)
    return original(v, lr, scale, penalty)

  _penalties.prox_in_metric = prox_in_metric


def _loss(graphdef, params, x, y):
  logits = nnx.merge(graphdef, params)(x)
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def train(
  method: str, value: float, seeds: Sequence[int], config: Config, trace: bool = False
) -> list[Run]:
  """Trains one model per seed (compiled once) and compacts it; ``trace``: print the training
  loss and the dead channels at every tenth of the steps."""
  tx = BUILDERS[method](value, config)
  task = fm.TASKS["mnist1d_cnn"]
  graphdef, _ = nnx.split(task.model(nnx.Rngs(0)))
  data = task.data(0)
  x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
  x_test, y_test = jnp.asarray(data.x_test), jnp.asarray(data.y_test)

  @jax.jit
  def run(params, keys):
    def body(carry, key):
      params, opt_state = carry
      batch = jax.random.randint(key, (config.batch_size,), 0, x.shape[0])
      loss, grads = jax.value_and_grad(_loss, argnums=1)(graphdef, params, x[batch], y[batch])
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), (loss, dead_channels(params))

    (params, _), trace = jax.lax.scan(body, (params, tx.init(params)), keys)
    return params, trace

  runs = []
  for seed in seeds:
    params = nnx.as_pure(nnx.state(task.model(nnx.Rngs(seed)), nnx.Param))
    keys = jax.random.split(jax.random.key(seed), config.steps)
    start = time.perf_counter()
    params, (losses, dead) = jax.block_until_ready(run(params, keys))
    seconds = time.perf_counter() - start
    if trace:
      for step in range(config.steps // 10 - 1, config.steps, config.steps // 10):
        window = losses[max(0, step - 99) : step + 1]
        print(
          f"    step {step + 1}: train loss (mean of 100) {float(jnp.mean(window)):.3f}, "
          f"channels dead (conv1, conv2, conv3) {tuple(int(d) for d in dead[step])}",
          file=sys.stderr,
        )
    model = nnx.merge(graphdef, params)
    logits = model(x_test)
    accuracy = float(jnp.mean(jnp.argmax(logits, -1) == y_test))
    small, report = compact(model)
    error = float(jnp.max(jnp.abs(compacted_logits(small, x_test) - logits)))
    error /= float(jnp.max(jnp.abs(logits)))
    removed = 1 - sum(report.units_after) / sum(report.units_before)
    run_ = Run(method, value, seed, accuracy, report.units_after, removed, error, seconds, model)
    print(
      f"  {method}:{value:g} seed {seed}: acc {100 * accuracy:.2f}, channels "
      f"{report.units_after}, removed {100 * removed:.1f} %, max rel. Δlogit {error:.1e}, "
      f"{seconds:.1f} s",
      file=sys.stderr,
      flush=True,
    )
    runs.append(run_)
  return runs


TIMING_LOCK = "/tmp/optax_l1_timing.lock"  # shared with the other timing benchmarks here


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
  a = np.asarray(values, np.float64)
  return float(a.mean()), float(a.std(ddof=1) if a.size > 1 else 0.0)


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true", help=f"a tiny budget: {QUICK}")
  parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
  parser.add_argument(
    "--methods",
    default="dense,group_in:1e-3,refit_out:1e-3,target_out:0.5,gmp_channels:0.5",
    help="comma-separated name:value (see the module docstring)",
  )
  parser.add_argument("--time", action="store_true", help="time the forward pass at batch 1024")
  parser.add_argument("--trace", action="store_true", help="loss and dead channels in training")
  parser.add_argument(
    "--smallest-group-step",
    action="store_true",
    help="diagnostic: threshold each group with its smallest step size (smallest_group_step)",
  )
  args = parser.parse_args(argv)
  if args.smallest_group_step:
    smallest_group_step()
  config = QUICK if args.quick else FULL
  seeds = [int(s) for s in args.seeds.split(",")]
  try:
    methods = [parse_method(m) for m in args.methods.split(",")]
  except ValueError as error:
    parser.error(str(error))

  print(f"## MNIST-1D CNN: conv channels removed{' (--quick)' if args.quick else ''}")
  print()
  print(
    f"- machine: {cpu_model()}, {os.cpu_count()} logical CPUs, {platform.system()} "
    f"{platform.release()}, Python {platform.python_version()}; backend {jax.default_backend()}"
  )
  print(f"- date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
  print(
    f"- command: `benchmarks/cnn_channels.py {' '.join(sys.argv[1:] if argv is None else argv)}`"
  )
  print(
    f"- budget: Adam lr {config.learning_rate:g}, batch {config.batch_size}, {config.steps} "
    f"steps; ramps {config.begin}→{config.end} (cubic); seeds {','.join(map(str, seeds))} "
    "(mean ± sample std)"
  )
  print()
  print(
    "| method | test acc % | hidden channels removed % | channels kept (conv1, conv2, conv3) "
    "| max rel. Δlogit | train s |"
  )
  print("|---|---:|---:|---|---:|---:|")
  results = {}
  for name, value in methods:
    runs = train(name, value, seeds, config, args.trace)
    results[(name, value)] = runs
    acc, acc_std = _mean_std([100 * r.accuracy for r in runs])
    rem, rem_std = _mean_std([100 * r.removed for r in runs])
    kept = " / ".join(
      f"{np.mean([r.channels[i] for r in runs]):.1f}" for i in range(len(runs[0].channels))
    )
    label = name if name == "dense" else f"{name}:{value:g}"
    print(
      f"| {label} | {acc:.2f} ± {acc_std:.2f} | {rem:.1f} ± {rem_std:.1f} | {kept} "
      f"| {max(r.max_error for r in runs):.1e} | {np.mean([r.seconds for r in runs]):.1f} |",
      flush=True,
    )
  if args.time:
    import fcntl

    x = jax.random.normal(jax.random.key(0), (1024, 40))
    dense = next((r.model for r in results.get(("dense", 0.0), [])), None)
    dense = dense if dense is not None else fm.TASKS["mnist1d_cnn"].model(nnx.Rngs(0))
    models: dict[str, Callable[[jax.Array], jax.Array]] = {"dense CNN": dense}
    stack, _ = compact(dense)
    models["dense, as the stack compaction returns"] = lambda x, s=stack: compacted_logits(s, x)
    kept = {"dense CNN": "32 / 32 / 32", "dense, as the stack compaction returns": "32 / 32 / 32"}
    for (name, value), runs in results.items():
      if name != "dense":
        small, report = compact(runs[0].model)  # the first seed's
        label = f"{name}:{value:g} (seed {runs[0].seed}), compacted"
        models[label] = lambda x, s=small: compacted_logits(s, x)
        kept[label] = " / ".join(map(str, report.units_after))
    with open(TIMING_LOCK, "a") as lock:  # never two timing runs at once on this machine
      fcntl.flock(lock, fcntl.LOCK_EX)
      times = timing.forward_times(models, x, repeats=7, calls=20)
      load = os.getloadavg()[0]
    base = np.asarray(times["dense CNN"])
    print()
    print(
      "Forward pass at batch 1024 (jitted; per repeat the median of 20 calls, the models "
      f"interleaved; 7 repeats, mean ± sample std; load average {load:.2f} on "
      f"{os.cpu_count()} CPUs, shared):"
    )
    print()
    print("| model | channels | ms | dense CNN / this (mean ± std over the repeats) |")
    print("|---|---|---:|---:|")
    for label, t in times.items():
      t = np.asarray(t)
      ratio = base / t
      print(
        f"| {label} | {kept[label]} | {1e3 * t.mean():.2f} ± {1e3 * t.std(ddof=1):.2f} "
        f"| {ratio.mean():.2f} ± {ratio.std(ddof=1):.2f} |"
      )


if __name__ == "__main__":
  main()
