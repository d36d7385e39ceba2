"""Tests of ``optax_l1.keras``: the Keras route.

The references are Keras' own optimizers (JAX backend): with no penalty each optax_l1.keras
optimizer takes Keras' steps, eagerly (``optimizer.apply``) and under ``model.fit`` (jitted),
with schedules, a learning rate set during training, clipping and gradient accumulation. Then
the exact zeros (kernels only by default, ``penalize`` otherwise), ``model.save`` and
``load_model`` resuming exactly, ``OptaxOptimizer``, the sparsity report and callback, bad
input, and the benchmark script on a tiny budget.
"""

import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest

import optax_l1

from jitted_run import run_jitted

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHAPES = ((6, 5), (5,))  # a kernel and a bias
NUM_STEPS = 5
TOL = {"rtol": 1e-6, "atol": 1e-6}  # float32 against Keras in float32 (measured ≤ 1.2e-7)
# β exact in float32: Keras rounds β₂ = 0.999 to float32 (5e-5 relative in its 1 − β₂ at the
# first step), which shows at learning rates of 0.1 (1e-6 after a few steps), not at Keras' 1e-3.
EXACT_BETAS = {"beta_1": 0.5, "beta_2": 0.75}


@pytest.fixture(scope="module")
def keras():
  """Keras on its JAX backend (imported at test time: the backend is chosen once per process,
  by KERAS_BACKEND at the first import)."""
  os.environ["KERAS_BACKEND"] = "jax"
  keras = pytest.importorskip("keras")
  if keras.backend.backend() != "jax":
    pytest.skip(f"keras was imported earlier with the {keras.backend.backend()} backend")
  return keras


@pytest.fixture(scope="module")
def ok(keras):
  import optax_l1.keras

  return optax_l1.keras


def _gradients(seed=0, num_steps=NUM_STEPS):
  rng = np.random.default_rng(seed)
  return [
    [rng.standard_normal(shape).astype("float32") for shape in SHAPES] for _ in range(num_steps)
  ]


def _initial(seed=0):
  """The kernel and bias that ``_apply`` starts from."""
  rng = np.random.default_rng(seed + 100)
  return [0.3 * rng.standard_normal(shape).astype("float32") for shape in SHAPES]


def _apply(keras, optimizer, grads_seq, seed=0, before_step=None, jit=False):
  """``optimizer.apply`` on a kernel and a bias, eagerly (or with ``jit``, its
  ``stateless_apply`` under ``jax.jit``, as ``fit`` runs it); their values after each step."""
  variables = [
    keras.Variable(value, name=name)
    for value, name in zip(_initial(seed), ("kernel", "bias"), strict=True)
  ]
  step = jax.jit(optimizer.stateless_apply)
  if jit:
    optimizer.build(variables)
  trajectory = []
  for k, grads in enumerate(grads_seq):
    if before_step is not None:
      before_step(optimizer, k)
    if jit:
      values, state = step(
        [v.value for v in optimizer.variables], grads, [v.value for v in variables]
      )
      for v, value in zip(variables + optimizer.variables, values + state, strict=True):
        v.assign(value)
    else:
      optimizer.apply(grads, variables)
    trajectory.append([np.asarray(v.value) for v in variables])
  return trajectory


def _assert_trajectories_close(actual, expected, **tol):
  for k, (a_step, e_step) in enumerate(zip(actual, expected, strict=True)):
    for a, e in zip(a_step, e_step, strict=True):
      np.testing.assert_allclose(a, e, err_msg=f"step {k}", **(tol or TOL))


# ----------------------------------------------------------------------------------------------
# 1. With no penalty, Keras' own steps.
# ----------------------------------------------------------------------------------------------

PARITY = {
  "SGD": dict(learning_rate=0.1),
  "SGD-momentum": dict(learning_rate=0.1, momentum=0.9),
  "SGD-nesterov": dict(learning_rate=0.1, momentum=0.9, nesterov=True),
  "Adam": dict(),  # Keras' defaults, learning rate 1e-3
  # An ε large enough that its placement (before the bias correction) matters.
  "Adam-eps": dict(learning_rate=0.1, **EXACT_BETAS, epsilon=0.3),
  "AdamW": dict(learning_rate=0.1, **EXACT_BETAS, epsilon=0.3, weight_decay=0.5),
  "RMSprop": dict(learning_rate=0.1),
  "RMSprop-momentum": dict(learning_rate=0.1, momentum=0.5),
  "RMSprop-centered": dict(learning_rate=0.1, centered=True, epsilon=0.1),
  "RMSprop-centered-momentum": dict(learning_rate=0.1, momentum=0.5, centered=True, rho=0.5),
  "Adagrad": dict(learning_rate=0.1, initial_accumulator_value=0.5, epsilon=0.1),
  "Adam-global_clipnorm": dict(learning_rate=0.1, **EXACT_BETAS, global_clipnorm=0.5),
  "Adam-clipvalue": dict(learning_rate=0.1, **EXACT_BETAS, clipvalue=0.5),
  "Adam-accumulation": dict(learning_rate=0.1, **EXACT_BETAS, gradient_accumulation_steps=2),
  "SGD-weight_decay": dict(learning_rate=0.1, momentum=0.5, weight_decay=0.3),
  "Adam-loss_scale_factor": dict(learning_rate=0.1, **EXACT_BETAS, loss_scale_factor=4.0),
}


@pytest.mark.parametrize("case", PARITY)
def test_steps_are_keras_steps_without_a_penalty(keras, ok, case):
  name, kwargs = case.split("-")[0], PARITY[case]
  grads = _gradients(seed=len(case))
  jit = "accumulation" in case  # eagerly, Keras' accumulation is slow (a cond per step)
  expected = _apply(keras, getattr(keras.optimizers, name)(**kwargs), grads, jit=jit)
  actual = _apply(keras, getattr(ok, name)(**kwargs), grads, jit=jit)
  _assert_trajectories_close(actual, expected)


def test_loss_scale_optimizer_wraps_them(keras, ok):
  # Keras' LossScaleOptimizer runs only under jit with the JAX backend (its own Adam too).
  grads = _gradients(seed=6)

  def wrapped(optimizer):
    return keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=8.0)

  expected = _apply(keras, wrapped(keras.optimizers.Adam(0.1, **EXACT_BETAS)), grads, jit=True)
  actual = _apply(keras, wrapped(ok.Adam(0.1, **EXACT_BETAS)), grads, jit=True)
  _assert_trajectories_close(actual, expected)


def test_adam_parity_fails_with_optax_epsilon(keras):
  # The placement of ε matters in the case above: optax_l1.adam's (after the bias correction)
  # is far from Keras' steps.
  kwargs = PARITY["Adam-eps"]
  grads = _gradients(seed=len("Adam-eps"))
  expected = _apply(keras, keras.optimizers.Adam(**kwargs), grads)
  actual, _ = run_jitted(optax_l1.adam(0.1, 0.5, 0.75, 0.3), _initial(), grads)
  assert np.abs(np.asarray(actual[-1][0]) - expected[-1][0]).max() > 1e-2


def test_schedule_and_a_learning_rate_set_during_training(keras, ok):
  grads = _gradients(seed=7, num_steps=6)
  schedule = dict(
    learning_rate=keras.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5), **EXACT_BETAS
  )
  expected = _apply(keras, keras.optimizers.Adam(**schedule), grads)
  _assert_trajectories_close(_apply(keras, ok.Adam(**schedule), grads), expected)

  def halve_at_3(optimizer, k):  # what ReduceLROnPlateau and LearningRateScheduler do
    if k == 3:
      optimizer.learning_rate = float(optimizer.learning_rate) / 2

  expected = _apply(keras, keras.optimizers.RMSprop(0.1), grads, before_step=halve_at_3)
  _assert_trajectories_close(
    _apply(keras, ok.RMSprop(0.1), grads, before_step=halve_at_3), expected
  )


def _digits_like(n=96, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((n, 12)).astype("float32")
  y = (x[:, :3].sum(axis=1) > 0).astype("int32") + (x[:, 3] > 0.5)
  return x, y


def _model(keras, seed=0, hidden=8):
  keras.utils.set_random_seed(seed)
  return keras.Sequential(
    [
      keras.Input((12,)),
      keras.layers.Dense(hidden, activation="relu", name="hidden"),
      keras.layers.Dense(3, name="out"),
    ]
  )


def _fit(keras, optimizer, epochs=3, seed=0, callbacks=(), model=None):
  x, y = _digits_like()
  model = model or _model(keras, seed)
  if not model.compiled:
    model.compile(
      optimizer=optimizer,
      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
  history = model.fit(
    x, y, batch_size=32, epochs=epochs, shuffle=False, verbose=0, callbacks=list(callbacks)
  )
  return model, history


def _weights(model):
  return [np.asarray(v.value) for v in model.trainable_variables]


def test_fit_is_keras_fit_with_reduce_lr_on_plateau(keras, ok):
  # Under fit the step is jitted with the optimizer's variables as inputs: the learning rate
  # the callback lowers reaches the step (min_delta=1e9: it lowers it after every epoch).
  def callback():
    return keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=1e9)

  reference, _ = _fit(
    keras, keras.optimizers.Adam(0.05, **EXACT_BETAS), epochs=2, callbacks=[callback()]
  )
  ours, _ = _fit(keras, ok.Adam(0.05, **EXACT_BETAS), epochs=2, callbacks=[callback()])
  assert float(ours.optimizer.learning_rate) == float(reference.optimizer.learning_rate) < 0.05
  for a, e in zip(_weights(ours), _weights(reference), strict=True):
    np.testing.assert_allclose(a, e, **TOL)


# ----------------------------------------------------------------------------------------------
# 2. Exact zeros, in the kernels only by default.
# ----------------------------------------------------------------------------------------------


def test_l1_gives_exact_zeros_and_biases_take_keras_steps(keras, ok):
  grads = _gradients(seed=3, num_steps=8)
  expected = _apply(keras, keras.optimizers.Adam(0.05, **EXACT_BETAS), grads)
  actual = _apply(keras, ok.Adam(0.05, l1=0.6, **EXACT_BETAS), grads)
  (kernel, bias), (_, keras_bias) = actual[-1], expected[-1]
  assert 0.2 < np.mean(kernel == 0) < 1
  np.testing.assert_allclose(bias, keras_bias, **TOL)  # the bias is not penalised
  everything = _apply(keras, ok.Adam(0.05, l1=0.6, penalize=lambda path, shape: True), grads)

  assert np.mean(everything[-1][1] == 0) > 0.3


def test_penalize_receives_the_path_and_shape(keras, ok):
  seen = []

  def penalize(path, shape):
    seen.append((path, shape))
    return path.endswith("out/kernel")

  model, _ = _fit(keras, ok.SGD(0.5, l1=0.5, penalize=penalize), epochs=2)
  paths = [v.path for v in model.trainable_variables]
  assert seen == [(v.path, tuple(v.shape)) for v in model.trainable_variables], seen
  report = _fractions(ok.sparsity(model))
  assert report[paths[2]] > 0.3 and report[paths[0]] == 0


def test_target_sparsity_is_optax_l1s(keras, ok):
  # One implementation: the Keras optimizer's steps are optax_l1.proximal's, the zeros too.
  grads = _gradients(seed=4, num_steps=12)
  actual = _apply(keras, ok.Adam(0.05, target_sparsity=0.75), grads, jit=True)
  initial = _initial()
  tx = optax_l1.proximal(
    optax_l1.preconditioners.adam(0.9, 0.999, 1e-7, eps_hat=True),
    0.05,
    target_sparsity=0.75,
    mask=[True, False],
  )
  expected, _ = run_jitted(tx, initial, grads)
  for a, e in zip(actual, expected, strict=True):
    np.testing.assert_array_equal(a[0] == 0, np.asarray(e[0]) == 0)
    _assert_trajectories_close([a], [e])
  assert np.mean(actual[-1][0] == 0) >= 0.7 and not (actual[-1][1] == 0).any()


def test_target_sparsity_in_fit(keras, ok):
  model, _ = _fit(keras, ok.Adam(0.01, target_sparsity=0.75), epochs=2)
  report = ok.sparsity(model, lambda path, shape: len(shape) >= 2)
  assert 0.7 <= report.fraction <= 0.85, report


def _fractions(report):
  """``{variable path: fraction of exact zeros}`` of a sparsity report."""
  return {leaf.path[2:-2]: leaf.fraction for leaf in report.leaves}


@pytest.mark.parametrize(
  ("name", "l1"), [("SGD", 0.5), ("AdamW", 0.05), ("RMSprop", 0.05), ("Adagrad", 0.5)]
)
def test_every_optimizer_reaches_exact_zeros_in_fit(keras, ok, name, l1):
  model, _ = _fit(keras, getattr(ok, name)(0.1, l1=l1), epochs=2)
  fractions = _fractions(ok.sparsity(model))
  for v in model.trainable_variables:
    assert (fractions[v.path] > 0) == (v.ndim == 2), (v.path, fractions)


# ----------------------------------------------------------------------------------------------
# 3. Saving and loading: training resumes exactly.
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registered(keras):
  @keras.saving.register_keras_serializable(package="optax_l1_tests")
  def last_kernel(path, shape):
    return len(shape) >= 2 and path.endswith("out/kernel")

  @keras.saving.register_keras_serializable(package="optax_l1_tests")
  def make_tx(learning_rate):
    return optax.chain(optax.clip_by_global_norm(1.0), optax_l1.adam(learning_rate, l1=0.05))

  return {"last_kernel": last_kernel, "make_tx": make_tx}


SAVED = {
  "Adam-ramp": lambda ok, r: ok.Adam(
    0.02,
    target_sparsity=optax_l1.polynomial_sparsity(0.6, begin_step=2, end_step=6),
    penalize=r["last_kernel"],
  ),
  "OptaxOptimizer": lambda ok, r: ok.OptaxOptimizer(r["make_tx"], learning_rate=0.02),
}


@pytest.mark.parametrize("case", SAVED)
def test_save_and_load_resumes_exactly(keras, ok, registered, tmp_path, case):
  model, _ = _fit(keras, SAVED[case](ok, registered), epochs=2)
  model.save(tmp_path / "m.keras")
  loaded = keras.models.load_model(tmp_path / "m.keras")  # no custom_objects
  assert type(loaded.optimizer) is type(model.optimizer)
  assert loaded.optimizer.get_config() == model.optimizer.get_config()
  for a, e in zip(loaded.optimizer.variables, model.optimizer.variables, strict=True):
    np.testing.assert_array_equal(a.value, e.value, err_msg=a.path)
  _fit(keras, None, epochs=2, model=model)
  _fit(keras, None, epochs=2, model=loaded)
  for a, e in zip(_weights(loaded), _weights(model), strict=True):
    np.testing.assert_array_equal(a, e)
  assert int(loaded.optimizer.iterations) == 12 and (_weights(model)[2] == 0).any()


def test_the_optax_state_is_in_the_optimizer_variables(keras, ok):
  model, _ = _fit(keras, ok.Adam(0.01, l1=0.01), epochs=1)
  names = [v.name for v in model.optimizer.variables]
  assert names[:2] == ["iteration", "learning_rate"]
  assert names[2] == "optax_count" and int(model.optimizer.variables[2].value) == 3
  assert sum(name.startswith("optax_preconditioner_mu") for name in names) == 4


# ----------------------------------------------------------------------------------------------
# 4. OptaxOptimizer.
# ----------------------------------------------------------------------------------------------


def test_optax_optimizer_is_the_optax_transformation(keras, ok):
  grads = _gradients(seed=5)
  initial = _initial()
  expected, _ = run_jitted(optax.lion(0.01), initial, grads)
  for optimizer in (ok.OptaxOptimizer(optax.lion(0.01)), ok.OptaxOptimizer(optax.lion, 0.01)):
    _assert_trajectories_close(_apply(keras, optimizer, grads), expected)


def test_optax_optimizer_with_a_fixed_transformation_says_what_it_cannot_do(keras, ok, tmp_path):
  optimizer = ok.OptaxOptimizer(optax.adam(0.01))
  model, _ = _fit(keras, optimizer, epochs=1)
  assert int(optimizer.iterations) == 3
  with pytest.raises(AttributeError, match="learning rate is inside it"):
    optimizer.learning_rate  # noqa: B018
  with pytest.raises(AttributeError, match="learning rate is inside it"):
    optimizer.learning_rate = 0.1
  with pytest.raises(NotImplementedError, match="save_weights"):
    model.save(tmp_path / "m.keras")


# ----------------------------------------------------------------------------------------------
# 5. The sparsity report and callback.
# ----------------------------------------------------------------------------------------------


def test_sparsity_report_and_callback(keras, ok):
  callback = ok.SparsityCallback()
  model, history = _fit(keras, ok.Adam(0.05, l1=0.1), epochs=3, callbacks=[callback])
  kernels = [v for v in model.trainable_variables if v.ndim == 2]
  zeros = sum(int(np.sum(np.asarray(v.value) == 0)) for v in kernels)
  assert history.history["zeros"][-1] == zeros / sum(np.prod(v.shape) for v in kernels) > 0
  assert len(history.history["zeros"]) == 3
  report = ok.sparsity(model)
  assert [leaf.path for leaf in report.leaves] == sorted(
    f"['{v.path}']" for v in model.trainable_variables
  )
  assert report.zeros >= zeros


# ----------------------------------------------------------------------------------------------
# 6. Bad input, and other backends.
# ----------------------------------------------------------------------------------------------

BAD = [
  (lambda ok: ok.Adam(l1=-1.0), ValueError, "l1 must be a finite number >= 0"),
  (lambda ok: ok.Adam(l1=optax.constant_schedule(0.1)), TypeError, "l1 must be a number"),
  (lambda ok: ok.Adam(amsgrad=True), ValueError, "amsgrad=True"),
  (lambda ok: ok.Adam(l1=0.1, use_ema=True), ValueError, "use_ema"),
  (lambda ok: ok.Adam(penalize="kernel"), TypeError, "penalize must be None or a function"),
  (lambda ok: ok.Adam(target_sparsity=lambda t: 0.5), TypeError, "target_sparsity must be"),
  (lambda ok: ok.Adam(target_sparsity=1.5), ValueError, "target_sparsity"),
  (lambda ok: ok.AdamW(weight_decay=None), ValueError, "weight_decay must be a number"),
  (lambda ok: ok.SGD(momentum=1.0), ValueError, "momentum must be < 1"),
  (lambda ok: ok.SGD(nesterov=True), ValueError, "nesterov=True needs a momentum"),
  (lambda ok: ok.RMSprop(rho=-0.1), ValueError, "decay must be a finite number"),
  (lambda ok: ok.OptaxOptimizer(optax.adam), TypeError, "must be an optax.GradientTransformation"),
  (lambda ok: ok.OptaxOptimizer(optax.adam(1e-3), 1e-3), TypeError, "not a transformation"),
  (lambda ok: ok.OptaxOptimizer(optax.adam(1e-3), weight_decay=0.1), ValueError, "decayed"),
  (lambda ok: ok.OptaxOptimizer(lambda lr: lr, 1e-3), TypeError, "must return an optax"),
]


@pytest.mark.parametrize(("make", "error", "match"), BAD)
def test_bad_arguments_raise_at_construction(ok, make, error, match):
  with pytest.raises(error, match=match):
    make(ok)


def test_bad_penalize_raises_at_build(keras, ok):
  with pytest.raises(TypeError, match="penalize must return a bool"):
    _fit(keras, ok.Adam(l1=0.1, penalize=lambda path, shape: path), epochs=1)
  with pytest.raises(ValueError, match="selects none of the 4 trainable variables"):
    _fit(keras, ok.Adam(l1=0.1, penalize=lambda path, shape: False), epochs=1)


def test_a_missing_gradient_raises(keras, ok):
  optimizer = ok.Adam(l1=0.1)
  variables = [keras.Variable(np.ones(shape, "float32")) for shape in SHAPES]
  with pytest.raises(ValueError, match="given 1 of the 2"), pytest.warns(UserWarning):
    optimizer.apply([np.ones(SHAPES[0], "float32"), None], variables)


def test_another_backend_raises_at_construction(ok, monkeypatch):
  # TensorFlow and PyTorch are not installed here; the check reads keras.backend.backend(),
  # which is what Keras reports when it runs on them.
  monkeypatch.setattr(ok.keras.backend, "backend", lambda: "tensorflow")
  for make in (lambda: ok.Adam(l1=0.1), lambda: ok.OptaxOptimizer(optax.sgd(0.1))):
    with pytest.raises(RuntimeError, match=r"JAX backend.*'tensorflow'.*KERAS_BACKEND=jax"):
      make()


def test_import_optax_l1_does_not_import_keras():
  code = "import sys, optax_l1; assert 'keras' not in sys.modules, 'keras was imported'"
  subprocess.run([sys.executable, "-c", code], check=True)


# ----------------------------------------------------------------------------------------------
# 7. The preconditioners' Keras options, against their formulas.
# ----------------------------------------------------------------------------------------------


def test_rmsprop_momentum_threshold_warms_up_as_sgd_does():
  # Two steps by hand: t ← μt + g/d, w ← soft(w − ηt, ηλ(1 − μᵏ)/(1 − μ)/d).
  lr, l1, mu, rho, eps = 0.1, 0.4, 0.5, 0.9, 1e-3
  w = np.array([0.3, -0.05, 0.02, 1.0], np.float64)
  grads = [np.array([0.1, 0.2, -0.1, 1.0]), np.array([-0.2, 0.05, 0.3, 0.5])]
  tx = optax_l1.proximal(optax_l1.preconditioners.rmsprop(rho, eps, momentum=mu), lr, l1=l1)
  actual, _ = run_jitted(tx, np.float32(w), [np.float32(g) for g in grads])
  nu, trace = np.zeros(4), np.zeros(4)
  for k, g in enumerate(grads, start=1):
    nu = rho * nu + (1 - rho) * g**2
    d = np.sqrt(nu + eps)
    trace = mu * trace + g / d
    v = w - lr * trace
    t = lr * l1 * (1 - mu**k) / (1 - mu) / d
    w = np.sign(v) * np.maximum(np.abs(v) - t, 0)
    np.testing.assert_allclose(actual[k - 1], w, rtol=1e-5, atol=1e-7)
    assert (np.asarray(actual[k - 1]) == 0).tolist() == (w == 0).tolist()
  assert (w == 0).any()


def test_rmsprop_centered_momentum_matches_optax():
  grads = [
    [np.float32(g) for g in step] for step in _gradients(seed=9)
  ]  # a kernel and a bias, plain optax as the reference
  params = [np.zeros(shape, np.float32) + 0.1 for shape in SHAPES]
  kwargs = dict(decay=0.8, eps=1e-2, centered=True, momentum=0.5)
  expected, _ = run_jitted(optax.rmsprop(0.1, **kwargs), params, grads)
  actual, _ = run_jitted(
    optax_l1.proximal(optax_l1.preconditioners.rmsprop(**kwargs), 0.1), params, grads
  )
  _assert_trajectories_close(actual, expected, rtol=1e-5, atol=1e-6)
  assert jax.tree.structure(expected) == jax.tree.structure(actual)


# ----------------------------------------------------------------------------------------------
# 8. The benchmark script, on a tiny budget.
# ----------------------------------------------------------------------------------------------


def test_benchmark_runs_on_a_tiny_budget(keras, capsys):
  sys.path.insert(0, str(ROOT / "benchmarks"))
  import keras_fit

  keras_fit.main(
    [
      "--seeds",
      "1",
      "--epochs",
      "1",
      "--repeats",
      "1",
      "--time-epochs",
      "1",
      "--timing-calls",
      "1",
      "--optimizer-steps",
      "2",
      "--optimizer-models",
      "digits",
    ]
  )
  out = capsys.readouterr().out
  rows = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")]
  assert rows == [
    "method",
    *keras_fit.METHODS,
    "method",
    *keras_fit.METHODS,
    "method",
    *keras_fit.METHODS,
    "variables",
    "digits",
  ], out
