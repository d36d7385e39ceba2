"""Every transformation keeps each leaf's dtype: float leaves of the four float dtypes land on
exact +0.0 after ``optax.apply_updates``, and leaves with nothing to shrink (integers, bools,
None, zero-size arrays) are left as they are.

Each module's own dtype tests are in its test file (the operators' property tests, over every
dtype, in prox_test.py).
"""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_l1
from optax_l1 import preconditioners

from x64_mode import enable_x64

DTYPES = ["float32", "bfloat16", "float16", "float64"]


def x64(name):
  return enable_x64(True) if name == "float64" else contextlib.nullcontext()


# ----------------------------------------------------------------------------------------------
# Exact zeros after optax.apply_updates, in every float dtype.
# ----------------------------------------------------------------------------------------------


OPTIMIZERS = {
  "sgd_momentum": lambda: optax_l1.sgd(0.01, l1=2.0, momentum=0.9),
  "adam": lambda: optax_l1.adam(0.01, l1=20.0),
  "adamw": lambda: optax_l1.adamw(0.01, weight_decay=0.1, l1=20.0, l2=1.0),
  "rmsprop": lambda: optax_l1.rmsprop(0.01, l1=5.0),
  "adagrad": lambda: optax_l1.adagrad(0.01, l1=20.0),
  "adam_l0": lambda: optax_l1.adam(0.01, l0=20.0),
  # Keras' cold start: the first step's |z| ≈ |g| is below λ₁ for the small weights.
  "ftrl_cold_start": lambda: optax_l1.ftrl(0.01, l1=1.0, warm_start=False),
  "chain_sgd_l1_prox": lambda: optax.chain(optax.sgd(0.01), optax_l1.l1_prox(20.0, 0.01)),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_optimizer_zeros_are_exact_after_apply_updates(dtype, name):
  """One step from weights of magnitudes 1e-4…10: the small ones land on exactly +0.0."""
  magnitudes = np.geomspace(1e-4, 10, 12)
  with x64(dtype):
    params = jnp.asarray(np.concatenate([magnitudes, -magnitudes]), dtype)
    grads = jnp.asarray(np.concatenate([magnitudes, -magnitudes]) * 0.1 + 0.05, dtype)
    tx = OPTIMIZERS[name]()
    updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    new = optax.apply_updates(params, updates)
    assert updates.dtype == new.dtype == params.dtype
    out = np.asarray(new).astype(np.float64)
    zeros = out == 0
    assert zeros[[0, 12]].all() and not zeros[[11, 23]].any()  # smallest removed, largest kept
    assert not np.any(np.signbit(out[zeros]))  # +0.0: p + (0 - p) is exact in any dtype


# ----------------------------------------------------------------------------------------------
# Integer, bool, None and zero-size leaves, in every transformation.
# ----------------------------------------------------------------------------------------------


TRANSFORMATIONS = {
  "sgd": lambda **kw: optax_l1.sgd(0.1, l1=0.1, **kw),
  "adam": lambda **kw: optax_l1.adam(0.1, l1=0.1, **kw),
  "adamw": lambda **kw: optax_l1.adamw(0.1, l1=0.1, **kw),
  "rmsprop": lambda **kw: optax_l1.rmsprop(0.1, l1=0.1, **kw),
  "adagrad": lambda **kw: optax_l1.adagrad(0.1, l1=0.1, **kw),
  "ftrl": lambda **kw: optax_l1.ftrl(0.1, l1=0.1, **kw),
  "proximal": lambda **kw: optax_l1.proximal(preconditioners.rmsprop(), 0.1, l1=0.1, **kw),
  "l1_prox": lambda **kw: optax_l1.l1_prox(0.1, 0.1, **kw),
  "group_l1_prox": lambda **kw: optax_l1.group_l1_prox(0.1, 0.1, **kw),
}

ALL_UPDATES = {
  **TRANSFORMATIONS,
  "keep_zeros": lambda: optax_l1.keep_zeros(),
  "adam_group_l1": lambda: optax_l1.adam(0.1, group_l1=0.1),
  "chain_sgd_l1_prox": lambda: optax.chain(optax.sgd(0.1), optax_l1.l1_prox(0.1, 0.1)),
  "inject_adam": lambda: optax.inject_hyperparams(optax_l1.adam)(learning_rate=0.1, l1=0.1),
}


@pytest.mark.parametrize("name", list(ALL_UPDATES))
def test_integer_and_bool_leaves_are_left_unchanged(name):
  params = {
    "w": jnp.array([0.5, 1e-4]),
    "steps": jnp.array([3, -7], jnp.int32),
    "on": jnp.array([True, False]),
  }
  grads = {"w": jnp.array([0.1, 0.0]), "steps": jnp.zeros(2, jnp.int32), "on": jnp.zeros(2, bool)}
  tx = ALL_UPDATES[name]()
  state = tx.init(params)
  for _ in range(2):
    updates, state = jax.jit(tx.update)(grads, state, params)
    new = optax.apply_updates(params, updates)
  for key in ("steps", "on"):
    assert new[key].dtype == params[key].dtype
    np.testing.assert_array_equal(new[key], params[key])
  assert np.all(np.isfinite(new["w"]))


def test_none_leaves_are_kept_as_none():
  params = {"w": jnp.array([0.5, 1e-4]), "frozen": None}
  for name, make in ALL_UPDATES.items():
    tx = make()
    updates, _ = jax.jit(tx.update)({"w": jnp.zeros(2), "frozen": None}, tx.init(params), params)
    assert updates["frozen"] is None, name
    assert jax.tree.structure(updates) == jax.tree.structure(params), name


@pytest.mark.parametrize("name", list(ALL_UPDATES))
def test_zero_size_leaves_keep_their_shape(name):
  params = {
    "empty": jnp.zeros((0,)),
    "no_units": jnp.zeros((5, 0)),
    "no_inputs": jnp.zeros((0, 3)),
    "w": jnp.array([[0.5, 1e-4]]),
  }
  tx = ALL_UPDATES[name]()
  updates, _ = jax.jit(tx.update)(params, tx.init(params), params)
  new = optax.apply_updates(params, updates)
  for key, value in params.items():
    assert new[key].shape == value.shape and new[key].dtype == value.dtype, key
  assert np.all(np.isfinite(new["w"]))


# Regressions of the first-hour defects (x64, complex, masks, injection, Rngs, untouched rows,
# momentum, errors).


def kernels(params):
  return jax.tree.map(lambda x: x.ndim > 1, params)


# Every optimizer and last-stage chain, for the x64 tests.
X64_OPTIMIZERS = {
  "sgd": lambda: optax_l1.sgd(0.1, l1=0.5),
  "sgd_momentum": lambda: optax_l1.sgd(0.1, l1=0.5, momentum=0.9),
  "sgd_nesterov": lambda: optax_l1.sgd(0.1, l1=0.5, momentum=0.9, nesterov=True),
  "sgd_schedule": lambda: optax_l1.sgd(optax.linear_schedule(0.1, 0.01, 10), l1=0.5),
  "adam": lambda: optax_l1.adam(0.1, l1=0.5),
  "adamw": lambda: optax_l1.adamw(0.1, l1=0.5, weight_decay=0.1),
  "rmsprop": lambda: optax_l1.rmsprop(0.1, l1=0.5),
  "adagrad": lambda: optax_l1.adagrad(0.1, l1=0.5),
  "adam_group": lambda: optax_l1.adam(0.1, group_l1=0.5),
  "adam_l0": lambda: optax_l1.adam(0.1, l0=0.5),
  "adam_mcp": lambda: optax_l1.adam(0.1, mcp=0.5),
  "adam_scad": lambda: optax_l1.adam(0.1, scad=0.5),
  "adam_target": lambda: optax_l1.adam(0.1, target_sparsity=0.5),
  "ftrl": lambda: optax_l1.ftrl(0.1, l1=0.5, l2=0.1, l2_shrinkage=0.1, beta=0.5),
  "proximal": lambda: optax_l1.proximal(optax_l1.preconditioners.adam(), 0.1, l1=0.5, l2=0.1),
  "chain_l1_prox": lambda: optax.chain(optax.sgd(0.1), optax_l1.l1_prox(0.5, 0.1)),
  "chain_group_l1_prox": lambda: optax.chain(optax.sgd(0.1), optax_l1.group_l1_prox(0.5, 0.1)),
  "chain_keep_zeros": lambda: optax.chain(optax.sgd(0.1), optax_l1.keep_zeros()),
}
FLOATS = ("float32", "bfloat16", "float16", "float64")


def _params(dtype):
  w = jnp.array([[0.01, -2.0, 0.0], [0.3, 0.02, -0.04]], dtype)
  return {"w": w, "b": jnp.array([0.01, -1.0, 0.5], dtype)}


def _two_steps(make_tx, dtype):
  params = _params(dtype)
  grads = jax.tree.map(lambda p: (0.1 * jnp.ones_like(p)).astype(p.dtype), params)
  tx = make_tx()
  state = tx.init(params)
  step = jax.jit(tx.update)
  for _ in range(2):
    updates, state = step(grads, state, params)
    params = optax.apply_updates(params, updates)
  return params


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(X64_OPTIMIZERS))
def test_every_optimizer_runs_under_x64_in_every_float_dtype(name, dtype):
  if dtype == "float64":  # float64 params exist only with x64 on
    with enable_x64(True):
      got = _two_steps(X64_OPTIMIZERS[name], dtype)
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(got))
    return
  with enable_x64(False):
    off = _two_steps(X64_OPTIMIZERS[name], dtype)
  with enable_x64(True):
    on = _two_steps(X64_OPTIMIZERS[name], dtype)
  for a, b in zip(jax.tree.leaves(off), jax.tree.leaves(on), strict=True):
    assert a.dtype == b.dtype == jnp.dtype(dtype)
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    np.testing.assert_array_equal(a64 == 0, b64 == 0)  # the same exact zeros
    np.testing.assert_allclose(a64, b64, rtol=1e-6 if dtype == "float32" else 1e-2)
  if name not in ("chain_keep_zeros",):
    assert any(np.any(np.asarray(leaf, np.float64) == 0) for leaf in jax.tree.leaves(on))


OPERATORS = {
  "soft_threshold": lambda x, t: optax_l1.soft_threshold(x, t),
  "prox_elastic_net": lambda x, t: optax_l1.prox_elastic_net(x, t, 0.5, 1.0),
  "block_soft_threshold": lambda x, t: optax_l1.block_soft_threshold(x, t),
  "hard_threshold": lambda x, t: optax_l1.hard_threshold(x, t),
  "prox.l1": lambda x, t: optax_l1.prox.l1(x, t, 1.0),
  "prox.group_l1": lambda x, t: optax_l1.prox.group_l1(x, t, 1.0),
  "prox.l0": lambda x, t: optax_l1.prox.l0(x, t, 1.0),
}


@pytest.mark.parametrize("threshold", ["number", "array"])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(OPERATORS))
def test_every_operator_runs_under_x64_in_every_float_dtype(name, dtype, threshold):
  x_np = np.array([[0.1, -2.0, 0.0], [0.3, 0.02, -0.4]])
  t = 0.25 if threshold == "number" else np.float32(0.25)

  def run():
    x = jnp.asarray(x_np, dtype)
    return jax.jit(lambda x: OPERATORS[name](x, t))(x), OPERATORS[name](x, t)

  results = []
  for on in (False, True) if dtype != "float64" else (True,):
    with enable_x64(on):
      jitted, eager = run()
    assert jitted.dtype == eager.dtype == jnp.dtype(dtype)
    np.testing.assert_array_equal(np.asarray(jitted, np.float64), np.asarray(eager, np.float64))
    results.append(np.asarray(jitted, np.float64))
  assert np.any(results[-1] == 0)
  for other in results[:-1]:
    np.testing.assert_array_equal(other, results[-1])


def _complex_soft(z, t):
  magnitude = np.abs(z)
  return np.where(magnitude > t, z * (1 - t / np.where(magnitude > 0, magnitude, 1)), 0)


def test_soft_threshold_of_complex_entries_is_the_prox_of_the_modulus():
  rng = np.random.default_rng(0)
  z = (rng.normal(size=50) + 1j * rng.normal(size=50)).astype(np.complex64)
  got = np.asarray(optax_l1.soft_threshold(jnp.asarray(z), 1.0))
  np.testing.assert_allclose(got, _complex_soft(z.astype(np.complex128), 1.0), atol=1e-6)
  assert np.sum(got == 0) == np.sum(np.abs(z) <= 1.0) > 0
  # Brute force: the prox minimises ½|y − z|² + t|y| over a grid of y around each entry.
  for entry, value in zip(z[:5], got[:5], strict=True):
    grid = entry + (np.linspace(-2, 2, 401)[:, None] + 1j * np.linspace(-2, 2, 401)[None, :])
    objective = 0.5 * np.abs(grid - entry) ** 2 + np.abs(grid)
    best = grid.ravel()[np.argmin(objective)]
    assert abs(best - value) < 0.02


def test_complex_group_and_hard_thresholds_use_the_modulus():
  z = jnp.array([[3 + 4j, 0.1j], [0.0, 0.2]], jnp.complex64)  # column norms 5 and ~0.22
  group = np.asarray(optax_l1.block_soft_threshold(z, 1.0, axis=-1))
  np.testing.assert_allclose(group[:, 0], np.asarray(z)[:, 0] * 0.8, rtol=1e-6)
  assert np.all(group[:, 1] == 0)
  hard = np.asarray(optax_l1.hard_threshold(z, 0.15))
  np.testing.assert_array_equal(hard == 0, np.abs(np.asarray(z)) <= 0.15)


@pytest.mark.parametrize(
  "ours,twin",
  [
    (lambda: optax_l1.adam(0.1), lambda: optax.adam(0.1)),
    (lambda: optax_l1.adamw(0.1, weight_decay=0.01), lambda: optax.adamw(0.1, weight_decay=0.01)),
    (lambda: optax_l1.rmsprop(0.1), lambda: optax.rmsprop(0.1)),
    (lambda: optax_l1.adagrad(0.1), lambda: optax.adagrad(0.1)),
    (lambda: optax_l1.sgd(0.1, l1=0.0, momentum=0.9), lambda: optax.sgd(0.1, momentum=0.9)),
  ],
  ids=["adam", "adamw", "rmsprop", "adagrad", "sgd_momentum"],
)
def test_complex_params_train_as_with_optax_when_unpenalised(ours, twin):
  rng = np.random.default_rng(1)
  params = jnp.asarray(rng.normal(size=(4, 3)) + 1j * rng.normal(size=(4, 3)), jnp.complex64)
  results = []
  for make in (ours, twin):
    tx, p = make(), params
    state = tx.init(p)
    for k in range(5):
      g = jnp.asarray(np.cos(k + np.arange(12)).reshape(4, 3) * (1 + 0.5j), jnp.complex64)
      updates, state = tx.update(g, state, p)
      p = optax.apply_updates(p, updates)
    results.append(np.asarray(p))
  assert not np.allclose(results[0], np.asarray(params))  # it trained
  np.testing.assert_allclose(results[0], results[1], rtol=2e-5, atol=1e-6)


def test_complex_params_get_exact_zeros_from_adam():
  params = jnp.array([0.001 + 0.001j, 2.0 - 1.0j], jnp.complex64)
  tx = optax_l1.adam(0.1, l1=0.1)
  updates, _ = tx.update(jnp.array([0.0, 0.1j], jnp.complex64), tx.init(params), params)
  new = np.asarray(optax.apply_updates(params, updates))
  assert new[0] == 0 and new[1] != 0
