"""The Keras route on the seed's model: Keras' Adam + ``l1(λ)`` against ``optax_l1.keras.Adam``.

The model is the seed's: ``Dense(256, relu) → Dense(10)`` on scikit-learn's digits, Keras'
default initialisers (Glorot uniform kernels, zero biases), Adam with learning rate 1e-3,
batches of 128, ``--epochs`` epochs (200: 2,000 steps), softmax cross-entropy. The data are
:func:`optax_l1.examples.digits.load_digits_split` with split seed 0 for every run: 70 % of the
1,797 images to train on, 30 % held out (stratified), standardised with a scaler fitted on the
training images. Each training seed sets Keras' initialisation and shuffling
(``keras.utils.set_random_seed``) and is the same for every method.

Two tables:

1. Accuracy and exact zeros (per seed, then the mean and standard deviation over the seeds):
   ``keras.optimizers.Adam`` with no penalty, ``keras.optimizers.Adam`` with
   ``kernel_regularizer=keras.regularizers.l1(λ)`` on both layers, and
   ``optax_l1.keras.Adam(l1=λ)`` (kernels only, its default), with the same λ.
2. ``fit`` step time, the three side by side in one process and interleaved, ``--repeats``
   times: each repeat times ``model.fit`` over ``--time-epochs`` epochs after a first
   ``fit`` that compiled the step (the models of seed 0, reset to their initial weights),
   with the default ``steps_per_execution=1`` (one jitted step per batch, as users run it)
   and with ``steps_per_execution`` = the steps of an epoch (Keras' loop of jitted steps with
   the Python between them mostly gone); median and range of the time per step, and the
   ratio to Keras' Adam with ``l1(λ)`` and without. Test accuracy is the model called on the
   held-out images once.
3. The optimizer step alone, Keras' Adam against ``optax_l1.keras.Adam(l1=λ)``: one jitted
   ``stateless_apply`` (what ``fit`` calls after the gradient) on the digits model's variables
   and on a 4.3M-parameter MLP's (64-2048-2048-10), with fixed gradients, interleaved, median of
   ``--optimizer-steps``.

Usage::

  .venv/bin/python benchmarks/keras_fit.py                      # 5 seeds, 200 epochs
  .venv/bin/python benchmarks/keras_fit.py --seeds 1 --epochs 2 --repeats 1 --time-epochs 1 \
    --timing-calls 1
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import keras
import numpy as np
from _machine import cpu_model  # benchmarks/ is on sys.path when a script runs

import optax_l1
import optax_l1.keras
from optax_l1.examples import digits

METHODS = ("keras Adam", "keras Adam + l1(λ)", "optax_l1.keras.Adam(l1=λ)")
BATCH = 128
LEARNING_RATE = 1e-3
OPTIMIZER_MODELS = {  # the variables' shapes, for the optimizer step alone
  "digits": [(64, 256), (256,), (256, 10), (10,)],
  "mlp-2048": [(64, 2048), (2048,), (2048, 2048), (2048,), (2048, 10), (10,)],
}


def build(method: str, l1: float, seed: int, steps_per_execution: int = 1) -> keras.Model:
  """The seed's model, compiled for ``method``, initialised from ``seed``."""
  keras.utils.set_random_seed(seed)
  regularizer = keras.regularizers.l1(l1) if method == "keras Adam + l1(λ)" else None
  model = keras.Sequential(
    [
      keras.Input((64,)),
      keras.layers.Dense(256, activation="relu", kernel_regularizer=regularizer),
      keras.layers.Dense(10, kernel_regularizer=regularizer),
    ]
  )
  if method.startswith("optax_l1"):
    optimizer = optax_l1.keras.Adam(LEARNING_RATE, l1=l1)
  else:
    optimizer = keras.optimizers.Adam(LEARNING_RATE)
  model.compile(
    optimizer=optimizer,
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    steps_per_execution=steps_per_execution,
  )
  return model


def kernel_zeros(model: keras.Model) -> float:
  """The fraction of exact zeros over the kernels."""
  return optax_l1.keras.sparsity(model, lambda path, shape: len(shape) >= 2).fraction


def held_out_accuracy(model: keras.Model, data: digits.DigitsSplit) -> float:
  """The fraction of the test images classified right (the model called eagerly, once)."""
  logits = keras.ops.convert_to_numpy(model(data.x_test))
  return float(np.mean(np.argmax(logits, axis=-1) == data.y_test))


def train(method: str, l1: float, seed: int, epochs: int, data: digits.DigitsSplit) -> tuple:
  """(model, test accuracy, kernel zero fraction, seconds) of one run."""
  model = build(method, l1, seed)
  initial = model.get_weights()
  start = time.perf_counter()
  model.fit(data.x_train, data.y_train, batch_size=BATCH, epochs=epochs, verbose=0)
  seconds = time.perf_counter() - start
  accuracy, zeros = held_out_accuracy(model, data), kernel_zeros(model)
  model.set_weights(initial)  # for the timing, which reuses its compiled step
  return model, accuracy, zeros, seconds


def step_times(args: argparse.Namespace, data: digits.DigitsSplit, trained: dict) -> dict:
  """Seconds per step of ``fit``, per (method, steps per jitted call), one per repeat.

  One step per call reuses ``trained``'s models (seed 0, their weights reset to their
  initial values, their step compiled); more steps per call compile new models first.
  """
  steps_per_epoch = -(-len(data.x_train) // BATCH)
  models = {}
  for method in METHODS:
    for calls in args.timing_calls.split(","):
      per_call = steps_per_epoch if calls == "epoch" else int(calls)
      if per_call == 1:
        models[method, 1] = trained[method]
      else:
        model = build(method, args.l1, 0, steps_per_execution=per_call)
        model.fit(data.x_train, data.y_train, batch_size=BATCH, epochs=1, verbose=0)  # compiles
        models[method, per_call] = model
  times: dict = {key: [] for key in models}
  for _ in range(args.repeats):
    for key, model in models.items():  # interleaved, so that drifts hit every method alike
      start = time.perf_counter()
      model.fit(data.x_train, data.y_train, batch_size=BATCH, epochs=args.time_epochs, verbose=0)
      times[key].append((time.perf_counter() - start) / (args.time_epochs * steps_per_epoch))
  return times


def optimizer_step_times(shapes: list[tuple[int, ...]], steps: int) -> dict:
  """Seconds of one jitted ``stateless_apply`` (the optimizer step alone, no gradient) of
  Keras' Adam and of ``optax_l1.keras.Adam(l1=λ)`` on variables of ``shapes``, interleaved,
  ``steps`` each after 10 warm-up steps."""
  rng = np.random.default_rng(0)
  values = [0.05 * rng.standard_normal(shape).astype("float32") for shape in shapes]
  grads = [jax.numpy.asarray(1e-3 * rng.standard_normal(shape), "float32") for shape in shapes]
  runs = {}
  for name, optimizer in (
    ("keras Adam", keras.optimizers.Adam(LEARNING_RATE)),
    ("optax_l1.keras.Adam(l1=λ)", optax_l1.keras.Adam(LEARNING_RATE, l1=1e-3)),
  ):
    variables = [keras.Variable(value) for value in values]
    optimizer.build(variables)
    step = jax.jit(optimizer.stateless_apply)
    runs[name] = [step, [v.value for v in optimizer.variables], [v.value for v in variables]]
  times: dict = {name: [] for name in runs}
  for k in range(steps + 10):
    for name, run in runs.items():
      step, state, params = run
      start = time.perf_counter()
      params, state = jax.block_until_ready(step(state, grads, params))
      if k >= 10:
        times[name].append(time.perf_counter() - start)
      run[1], run[2] = state, params
  return times


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--l1", type=float, default=1e-3)
  parser.add_argument("--epochs", type=int, default=200)
  parser.add_argument("--seeds", type=int, default=5)
  parser.add_argument("--repeats", type=int, default=30)
  parser.add_argument("--time-epochs", type=int, default=20)
  parser.add_argument("--optimizer-steps", type=int, default=300)
  parser.add_argument(
    "--optimizer-models", default="digits,mlp-2048", help="of OPTIMIZER_MODELS, for table 3"
  )
  parser.add_argument(
    "--timing-calls", default="1,epoch", help="steps per jitted call to time: 1 and/or epoch"
  )
  args = parser.parse_args(argv)
  data = digits.load_digits_split(0)

  print(
    f"digits, Dense(256, relu) → Dense(10), Adam {LEARNING_RATE:g}, batch {BATCH}, "
    f"{args.epochs} epochs, λ = {args.l1:g}, seeds 0–{args.seeds - 1}; keras "
    f"{keras.__version__} ({keras.backend.backend()}), jax {jax.__version__}, "
    f"{jax.default_backend()} ({cpu_model()}, {os.cpu_count()} cores), "
    f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; Python "
    f"{platform.python_version()}, {platform.system()} {platform.release()}; load average at "
    f"start: {os.getloadavg()[0]:.2f}"
  )
  print()
  print("| method | seed | test acc % | exact zeros in the kernels % | fit s |")
  print("|---|---:|---:|---:|---:|")
  results: dict = {method: [] for method in METHODS}
  trained = {}
  for seed in range(args.seeds):
    for method in METHODS:
      model, accuracy, zeros, seconds = train(method, args.l1, seed, args.epochs, data)
      if seed == 0:
        trained[method] = model
      results[method].append((accuracy, zeros))
      print(
        f"| {method} | {seed} | {100 * accuracy:.2f} | {100 * zeros:.2f} | {seconds:.1f} |",
        flush=True,
      )
  print()
  print("| method | test acc %, mean ± sd | min–max | exact zeros %, mean ± sd | min–max |")
  print("|---|---:|---:|---:|---:|")
  for method, rows in results.items():
    acc, zeros = (100 * np.array(column) for column in zip(*rows, strict=True))
    print(
      f"| {method} | {acc.mean():.2f} ± {acc.std(ddof=1) if len(acc) > 1 else 0:.2f} "
      f"| {acc.min():.2f}–{acc.max():.2f} "
      f"| {zeros.mean():.2f} ± {zeros.std(ddof=1) if len(zeros) > 1 else 0:.2f} "
      f"| {zeros.min():.2f}–{zeros.max():.2f} |"
    )
  ours, theirs = (np.array([a for a, _ in results[m]]) for m in METHODS[2:0:-1])
  print(
    f"\noptax_l1 − Keras + l1(λ), test accuracy: {100 * (ours - theirs).mean():+.2f} pp "
    f"(per seed: {', '.join(f'{100 * d:+.2f}' for d in ours - theirs)})"
  )

  times = step_times(args, data, trained)
  print()
  print(
    f"fit step time, {args.repeats} repeats of {args.time_epochs} epochs "
    f"(× {-(-len(data.x_train) // BATCH)} steps), interleaved:"
  )
  print()
  print(
    "| method | steps per jitted call | ms per step, median | min–max "
    "| ratio to Keras Adam + l1(λ) | ratio to Keras Adam |"
  )
  print("|---|---:|---:|---:|---:|---:|")
  for (method, per_call), seconds in times.items():
    median = statistics.median(seconds)
    ratio_l1 = median / statistics.median(times["keras Adam + l1(λ)", per_call])
    ratio = median / statistics.median(times["keras Adam", per_call])
    print(
      f"| {method} | {per_call} | {1e3 * median:.3f} | {1e3 * min(seconds):.3f}–"
      f"{1e3 * max(seconds):.3f} | {ratio_l1:.3f} | {ratio:.3f} |"
    )
  print()
  print(
    f"optimizer step alone (jitted stateless_apply, median of {args.optimizer_steps} "
    "interleaved steps after 10):"
  )
  print()
  print("| variables | parameters | keras Adam ms | optax_l1.keras.Adam(l1=λ) ms | ratio |")
  print("|---|---:|---:|---:|---:|")
  for label in args.optimizer_models.split(","):
    shapes = OPTIMIZER_MODELS[label]
    optimizer_times = optimizer_step_times(shapes, args.optimizer_steps)
    keras_ms, ours_ms = (1e3 * statistics.median(t) for t in optimizer_times.values())
    size = sum(int(np.prod(shape)) for shape in shapes)
    print(f"| {label} | {size:,} | {keras_ms:.3f} | {ours_ms:.3f} | {ours_ms / keras_ms:.3f} |")
  print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
  main()
