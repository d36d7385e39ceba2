"""Tests of ``optax_l1.ftrl`` (FTRL-Proximal).

The reference is ``keras.optimizers.Ftrl`` itself (JAX backend), run eagerly on a
``keras.Variable``: with ``warm_start=False`` the two take the same steps; with the warm start,
Keras started from our initial linear term takes them too. Then the warm start's promise (a zero
gradient keeps the initial weights), exact zeros in every float dtype, the optax contract as
optax's own ``alias_test.py`` checks it (jit without retracing, ``inject_hyperparams``,
``MultiSteps``, ``chain``, ``masked``, ``apply_if_finite``), masks, and bad input.
"""

import itertools
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_l1

from jitted_run import run_jitted
from x64_mode import enable_x64

SHAPE = (6, 5)
NUM_STEPS = 5
# float32 against Keras in float32: the same formulas in another order (measured ≤ 6e-8).
KERAS_TOL = {"rtol": 1e-5, "atol": 1e-6}
KERAS_NAMES = {
  "l1": "l1_regularization_strength",
  "l2": "l2_regularization_strength",
  "l2_shrinkage": "l2_shrinkage_regularization_strength",
}


@pytest.fixture(scope="module")
def keras():
  """Keras on its JAX backend (imported here, not at collection: the backend is chosen once
  per process, by KERAS_BACKEND at the first import)."""
  os.environ["KERAS_BACKEND"] = "jax"
  keras = pytest.importorskip("keras")
  if keras.backend.backend() != "jax":
    pytest.skip(f"keras was imported earlier with the {keras.backend.backend()} backend")
  return keras


def _problem(seed=0, num_steps=NUM_STEPS, dtype=np.float32, scale=0.3):
  rng = np.random.default_rng(seed)
  params = jnp.asarray(scale * rng.standard_normal(SHAPE), dtype)
  grads = [jnp.asarray(rng.standard_normal(SHAPE), dtype) for _ in range(num_steps)]
  return params, grads


def _keras_run(keras, params, grads_seq, learning_rate, linear=None, l1_at=None, **kwargs):
  """Keras' Ftrl on one variable; ``linear`` replaces its initial linear term, and ``l1_at(k)``
  sets its L1 strength before step ``k`` (Keras reads it at every step)."""
  opt = keras.optimizers.Ftrl(
    learning_rate=learning_rate, **{KERAS_NAMES.get(k, k): v for k, v in kwargs.items()}
  )
  variable = keras.Variable(np.asarray(params))
  opt.build([variable])
  if linear is not None:
    opt._linears[0].assign(np.asarray(linear))  # Keras' own variable for z (see its build)
  trajectory = []
  for k, g in enumerate(grads_seq):
    if l1_at is not None:
      opt.l1_regularization_strength = l1_at(k)
    opt.apply([jnp.asarray(g)], [variable])
    trajectory.append(np.asarray(variable.value))
  return trajectory


def _assert_matches(actual, expected, **tol):
  assert len(actual) == len(expected)
  for k, (a, e) in enumerate(zip(actual, expected, strict=True)):
    a = np.asarray(a)
    np.testing.assert_array_equal(a == 0, e == 0, err_msg=f"zero sets differ at step {k}")
    np.testing.assert_allclose(a, e, err_msg=f"step {k}", **tol)


# ----------------------------------------------------------------------------------------------
# 1. Keras, step for step.
# ----------------------------------------------------------------------------------------------

GRID = [
  dict(learning_rate_power=power, l1=l1, l2=l2, l2_shrinkage=shrinkage, beta=beta)
  for power, l1, l2, shrinkage, beta in itertools.product(
    (-0.5, -0.3), (0.0, 0.3), (0.0, 0.2), (0.0, 0.1), (0.0, 0.5)
  )
]
EXTRA = [
  dict(learning_rate_power=0.0, l1=0.3),  # a fixed learning rate
  dict(learning_rate_power=-1.0, l1=0.3, l2=0.2),
  dict(initial_accumulator_value=0.0, l1=0.3),
  dict(initial_accumulator_value=2.0, l1=0.3, beta=1.0),
]


def _case_id(kwargs):
  return "-".join(f"{k}={v:g}" for k, v in kwargs.items() if v != 0 or k == "learning_rate_power")


@pytest.mark.parametrize("kwargs", GRID + EXTRA, ids=[_case_id(c) for c in GRID + EXTRA])
def test_matches_keras_step_for_step_without_warm_start(keras, kwargs):
  params, grads = _problem()
  expected = _keras_run(keras, params, grads, 0.1, **kwargs)
  actual, _ = run_jitted(optax_l1.ftrl(0.1, warm_start=False, **kwargs), params, grads)
  _assert_matches(actual, expected, **KERAS_TOL)
  if kwargs.get("l1"):  # the problem exercises the threshold: some zeros, not all
    assert 0 < np.mean(expected[-1] == 0) < 1


def test_learning_rate_schedule_matches_keras(keras):
  # Keras evaluates its schedule at its iteration count, from 0: optax's count before the step.
  params, grads = _problem(seed=1)
  kwargs = dict(l1=0.3, l2=0.2, beta=0.5)
  keras_schedule = keras.optimizers.schedules.PolynomialDecay(0.2, NUM_STEPS - 1, 0.02)
  expected = _keras_run(keras, params, grads, keras_schedule, **kwargs)
  schedule = optax.linear_schedule(0.2, 0.02, NUM_STEPS - 1)
  actual, _ = run_jitted(optax_l1.ftrl(schedule, warm_start=False, **kwargs), params, grads)
  _assert_matches(actual, expected, **KERAS_TOL)


def test_l1_schedule_matches_keras_with_its_strength_set_at_each_step(keras):
  params, grads = _problem(seed=2)
  schedule = optax.linear_schedule(0.0, 1.0, NUM_STEPS - 1)
  expected = _keras_run(keras, params, grads, 0.1, l1_at=lambda k: float(schedule(k)))
  actual, _ = run_jitted(optax_l1.ftrl(0.1, l1=schedule, warm_start=False), params, grads)
  _assert_matches(actual, expected, **KERAS_TOL)
  assert np.mean(expected[0] == 0) < np.mean(expected[-1] == 0)


WARM_CASES = [
  dict(),
  dict(l1=0.3),
  dict(l1=0.3, l2=0.2, l2_shrinkage=0.1, beta=0.5),
  dict(learning_rate_power=-0.3, l1=0.3, l2=0.2),
  dict(learning_rate_power=0.0, l1=0.3, beta=0.5),
]


@pytest.mark.parametrize("kwargs", WARM_CASES, ids=[_case_id(c) or "defaults" for c in WARM_CASES])
def test_warm_start_is_keras_started_from_its_linear_term(keras, kwargs):
  params, grads = _problem(seed=3, scale=1.0)
  tx = optax_l1.ftrl(0.1, **kwargs)
  linear = tx.init(params).linear
  assert np.all(np.asarray(linear) != 0)
  expected = _keras_run(keras, params, grads, 0.1, linear=linear, **kwargs)
  actual, _ = run_jitted(tx, params, grads)
  _assert_matches(actual, expected, **KERAS_TOL)


# ----------------------------------------------------------------------------------------------
# 2. The warm start keeps the initial weights.
# ----------------------------------------------------------------------------------------------

KEEP_CASES = [
  (0.1, dict()),
  (0.1, dict(l1=0.3)),
  (0.01, dict(l1=2.0, l2=0.5, beta=1.0)),
  (0.1, dict(learning_rate_power=-0.3, l1=0.3, l2=0.2)),
  (0.1, dict(learning_rate_power=0.0, l1=0.3)),
  (0.1, dict(initial_accumulator_value=0.0, l1=0.3, l2=0.2)),
  (0.1, dict(initial_accumulator_value=0.0, l1=0.3)),  # q = 0: kept as they are
  # Schedules are read at step 0, and only the first step is the warm start's to keep: later,
  # q follows 1/η_t (as in Keras) and the threshold follows λ₁.
  (optax.linear_schedule(0.1, 0.001, 3), dict(l1=optax.linear_schedule(0.3, 3.0, 3), l2=0.2)),
]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "float64"])
@pytest.mark.parametrize(("learning_rate", "kwargs"), KEEP_CASES)
def test_warm_start_zero_gradients_keep_the_initial_weights(learning_rate, kwargs, dtype):
  with enable_x64(dtype == "float64"):
    params = jnp.asarray(
      np.concatenate([np.geomspace(1e-3, 10, 10), -np.geomspace(1e-3, 10, 10), [0.0]]), dtype
    )
    steps = 1 if callable(learning_rate) else 3
    trajectory, _ = run_jitted(
      optax_l1.ftrl(learning_rate, **kwargs), params, [jnp.zeros_like(params)] * steps
    )
    for new in trajectory:
      assert new.dtype == params.dtype
      if dtype in ("bfloat16", "float16"):  # the float32 round trip rounds back exactly
        np.testing.assert_array_equal(np.asarray(new), np.asarray(params))
      else:  # to the rounding of the closed form (its cancellation, |z| ≈ λ₁, included)
        np.testing.assert_allclose(new, params, rtol=1e-6, atol=1e-6)
      assert float(new[-1]) == 0.0


def test_cold_start_throws_the_initial_weights_away_as_keras_does(keras):
  """Why the warm start exists (tensorflow#50118): with z₀ = 0 a zero gradient zeroes w₀."""
  params, _ = _problem(seed=4, scale=1.0)
  zeros = [jnp.zeros_like(params)]
  (expected,) = _keras_run(keras, params, zeros, 0.1)
  np.testing.assert_array_equal(expected, 0.0)
  (cold,), _ = run_jitted(optax_l1.ftrl(0.1, warm_start=False), params, zeros)
  np.testing.assert_array_equal(cold, 0.0)
  (warm,), _ = run_jitted(optax_l1.ftrl(0.1), params, zeros)
  np.testing.assert_allclose(warm, params, rtol=1e-6)


def test_l2_shrinkage_shrinks_even_without_a_gradient():
  params = jnp.array([1.0, -2.0, 0.5])
  (new,), _ = run_jitted(optax_l1.ftrl(0.1, l2_shrinkage=0.5), params, [jnp.zeros(3)])
  assert np.all(np.abs(new) < np.abs(params)) and np.all(np.sign(new) == np.sign(params))


def test_weights_driven_through_zero_stop_there():
  """A weight is zero while |z| ≤ λ₁: gradients that push it across zero leave it at 0.0."""
  params = jnp.array([0.05, -0.05, 1.0])
  grads = [jnp.array([0.2, -0.2, 0.2])] * 3
  trajectory, _ = run_jitted(optax_l1.ftrl(0.1, l1=1.0), params, grads)
  for new in trajectory:
    np.testing.assert_array_equal(np.asarray(new)[:2], 0.0)
    assert float(new[2]) != 0


# ----------------------------------------------------------------------------------------------
# 3. Exact zeros and dtypes.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("warm_start", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16", "float64"])
def test_removed_weights_are_exactly_zero_after_apply_updates(dtype, warm_start):
  with enable_x64(dtype == "float64"):
    magnitudes = np.geomspace(1e-4, 10, 12)
    params = jnp.asarray(np.concatenate([magnitudes, -magnitudes]), dtype)
    # Gradients that carry each weight a little past zero: FTRL's dead zone |z| ≤ λ₁ holds it.
    pull = 3.2 * magnitudes + 0.01
    grads = jnp.asarray(np.concatenate([pull, -pull]), dtype)
    tx = optax_l1.ftrl(0.1, l1=1.0, warm_start=warm_start)
    state = tx.init(params)
    assert state.accumulator.dtype == state.linear.dtype == jnp.promote_types(dtype, "float32")
    updates, state = jax.jit(tx.update)(grads, state, params)
    new = optax.apply_updates(params, updates)
    assert updates.dtype == new.dtype == params.dtype
    out = np.asarray(new, np.float64)
    zeros = out == 0
    assert zeros[[0, 12]].all() and not zeros.all()
    np.testing.assert_array_equal(np.asarray(updates)[zeros], -np.asarray(params)[zeros])
    assert not np.any(np.signbit(out[zeros]))  # +0.0, never −0.0


def test_integer_bool_none_and_empty_leaves_are_left_alone():
  params = {
    "w": jnp.array([0.5, 1e-4]),
    "steps": jnp.array([3, -7], jnp.int32),
    "on": jnp.array([True, False]),
    "frozen": None,
    "empty": jnp.zeros((0, 3)),
  }
  grads = {
    "w": jnp.array([0.1, 0.0]),
    "steps": jnp.zeros(2, jnp.int32),
    "on": jnp.zeros(2, bool),
    "frozen": None,
    "empty": jnp.zeros((0, 3)),
  }
  tx = optax_l1.ftrl(0.1, l1=0.1)
  state = tx.init(params)
  step = jax.jit(tx.update)
  p = params
  for _ in range(2):
    updates, state = step(grads, state, p)
    p = optax.apply_updates(p, updates)
  assert updates["frozen"] is None
  for key in ("steps", "on"):
    assert p[key].dtype == params[key].dtype
    np.testing.assert_array_equal(p[key], params[key])
  assert p["empty"].shape == (0, 3)
  assert np.all(np.isfinite(p["w"]))
  assert tx.update({}, tx.init({}), {})[0] == {}


def test_complex_params_train_and_reach_exact_zeros():
  params = jnp.array([0.01 + 0.01j, 2.0 - 1.0j], jnp.complex64)
  tx = optax_l1.ftrl(0.1, l1=0.5, warm_start=False)
  (new,), _ = run_jitted(tx, params, [jnp.array([0.1, 1.0 + 1.0j], jnp.complex64)])
  assert new.dtype == jnp.complex64
  assert new[0] == 0 and new[1] != 0
  (kept,), _ = run_jitted(optax_l1.ftrl(0.1, l1=0.5), params, [jnp.zeros(2, jnp.complex64)])
  np.testing.assert_allclose(kept, params, rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------------------------------------
# 4. The optax contract.
# ----------------------------------------------------------------------------------------------

INJECT_KWARGS = dict(
  learning_rate=0.1,
  learning_rate_power=-0.5,
  initial_accumulator_value=0.1,
  l1=0.3,
  l2=0.2,
  l2_shrinkage=0.1,
  beta=0.5,
)


@pytest.mark.parametrize("warm_start", [True, False])
def test_inject_hyperparams_gives_the_same_updates(warm_start):
  params, grads = _problem(seed=5)
  plain, plain_updates = run_jitted(
    optax_l1.ftrl(**INJECT_KWARGS, warm_start=warm_start), params, grads
  )
  tx = optax.inject_hyperparams(optax_l1.ftrl)(**INJECT_KWARGS, warm_start=warm_start)
  injected, injected_updates = run_jitted(tx, params, grads)
  for p, i in zip(plain, injected, strict=True):
    np.testing.assert_array_equal(np.asarray(i) == 0, np.asarray(p) == 0)
  assert np.any(np.asarray(plain[-1]) == 0)
  # A traced power is computed with pow, the static 0.5 with sqrt: a rounding apart.
  chex.assert_trees_all_close(injected_updates, plain_updates, rtol=1e-5, atol=1e-7)
  chex.assert_trees_all_close(injected, plain, rtol=1e-5, atol=1e-7)


def test_injected_l1_changed_in_the_state_takes_effect_without_retracing():
  params, grads = _problem(seed=6, num_steps=3)
  tx = optax.inject_hyperparams(optax_l1.ftrl)(learning_rate=0.1, l1=0.0, warm_start=False)
  step = jax.jit(tx.update)
  state = tx.init(params)
  updates, state = step(grads[0], state, params)
  p = optax.apply_updates(params, updates)
  assert not np.any(np.asarray(p) == 0)
  state.hyperparams["l1"] = jnp.asarray(1e3, state.hyperparams["l1"].dtype)
  updates, state = step(grads[1], state, p)
  np.testing.assert_array_equal(optax.apply_updates(p, updates), 0.0)
  assert step._cache_size() == 1


def test_chain_after_clip_by_global_norm_is_ftrl_on_clipped_gradients():
  params, grads = _problem(seed=7)
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax_l1.ftrl(0.1, l1=0.3))
  clip = optax.clip_by_global_norm(1.0)
  clipped = [clip.update(g, clip.init(params))[0] for g in grads]
  assert all(float(optax.tree.norm(g)) > 1.0 for g in grads)
  expected, _ = run_jitted(optax_l1.ftrl(0.1, l1=0.3), params, clipped)
  actual, _ = run_jitted(tx, params, grads)
  chex.assert_trees_all_close(actual, expected, rtol=1e-6, atol=1e-7)


def test_multi_steps_changes_params_every_second_step():
  params, grads = _problem(seed=8, num_steps=8)
  mean_grads = [(a + b) / 2 for a, b in zip(grads[0::2], grads[1::2], strict=True)]
  expected, _ = run_jitted(optax_l1.ftrl(0.1, l1=0.3), params, mean_grads)
  assert np.any(np.asarray(expected[-1]) == 0)
  actual, _ = run_jitted(
    optax.MultiSteps(optax_l1.ftrl(0.1, l1=0.3), every_k_schedule=2), params, grads
  )
  previous = params
  for k, p in enumerate(actual):
    if k % 2 == 0:  # accumulating: params untouched, bit for bit
      chex.assert_trees_all_equal(p, previous)
    else:
      np.testing.assert_array_equal(np.asarray(p) == 0, np.asarray(expected[k // 2]) == 0)
      chex.assert_trees_all_close(p, expected[k // 2], rtol=1e-6, atol=1e-7)
    previous = p


def test_apply_if_finite_skips_the_bad_step_bitwise():
  params, grads = _problem(seed=9, num_steps=4)
  tx = optax.apply_if_finite(optax_l1.ftrl(0.1, l1=0.3), max_consecutive_errors=3)
  step = jax.jit(tx.update)

  def apply(p, state, g):
    updates, state = step(g, state, p)
    return optax.apply_updates(p, updates), state

  clean, clean_state = params, tx.init(params)
  for g in grads:
    clean, clean_state = apply(clean, clean_state, g)
  p, state = params, tx.init(params)
  for g in grads[:2]:
    p, state = apply(p, state, g)
  skipped, skipped_state = apply(p, state, grads[2].at[1, 2].set(jnp.nan))
  chex.assert_trees_all_equal(skipped, p)
  chex.assert_trees_all_equal(skipped_state.inner_state, state.inner_state)
  for g in grads[2:]:
    skipped, skipped_state = apply(skipped, skipped_state, g)
  chex.assert_trees_all_equal(skipped, clean)
  chex.assert_trees_all_equal(skipped_state.inner_state, clean_state.inner_state)


def _tree_problem(seed=10):
  rng = np.random.default_rng(seed)
  params = {
    "w": jnp.asarray(0.3 * rng.standard_normal((4, 3)), jnp.float32),
    "b": jnp.asarray(0.3 * rng.standard_normal(3), jnp.float32),
  }
  grads = [
    {k: jnp.asarray(rng.standard_normal(v.shape), jnp.float32) for k, v in params.items()}
    for _ in range(NUM_STEPS)
  ]
  return params, grads


@pytest.mark.parametrize(
  "mask",
  [{"w": True, "b": False}, lambda p: jax.tree.map(lambda x: x.ndim > 1, p)],
  ids=["pytree", "callable"],
)
def test_mask_leaves_unpenalised_leaves_to_plain_ftrl(mask):
  params, grads = _tree_problem()
  penalties = dict(l1=1.0, l2=0.5, l2_shrinkage=0.3)
  actual, _ = run_jitted(optax_l1.ftrl(0.1, beta=0.5, mask=mask, **penalties), params, grads)
  penalised, _ = run_jitted(optax_l1.ftrl(0.1, beta=0.5, **penalties), params, grads)
  plain, _ = run_jitted(optax_l1.ftrl(0.1, beta=0.5), params, grads)
  for a, pen, pl in zip(actual, penalised, plain, strict=True):
    chex.assert_trees_all_equal(a["w"], pen["w"])
    chex.assert_trees_all_equal(a["b"], pl["b"])
  assert np.any(np.asarray(actual[-1]["w"]) == 0)
  assert not np.any(np.asarray(actual[-1]["b"]) == 0)


def test_inside_optax_masked():
  params, grads = _tree_problem(seed=11)
  tx = optax.masked(optax_l1.ftrl(0.1, l1=1.0), {"w": True, "b": False})
  actual, updates = run_jitted(tx, params, grads)
  expected, _ = run_jitted(optax_l1.ftrl(0.1, l1=1.0), params["w"], [g["w"] for g in grads])
  for a, e in zip(actual, expected, strict=True):
    chex.assert_trees_all_equal(a["w"], e)
  for u, g in zip(updates, grads, strict=True):  # optax.masked passes the others through
    chex.assert_trees_all_equal(u["b"], g["b"])


def test_inject_hyperparams_with_a_callable_mask_as_static_arg():
  params, grads = _tree_problem(seed=12)
  mask = lambda p: jax.tree.map(lambda x: x.ndim > 1, p)  # noqa: E731
  tx = optax.inject_hyperparams(optax_l1.ftrl, static_args="mask")(0.1, l1=1.0, mask=mask)
  actual, _ = run_jitted(tx, params, grads)
  expected, _ = run_jitted(optax_l1.ftrl(0.1, l1=1.0, mask=mask), params, grads)
  chex.assert_trees_all_close(actual, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
  "mask", [{"w": True, "c": False}, {"w": True}, [True, False]], ids=["key", "missing", "list"]
)
def test_mask_with_the_wrong_structure_raises(mask):
  params, _ = _tree_problem()
  tx = optax_l1.ftrl(0.1, l1=0.1, mask=mask)
  with pytest.raises(ValueError, match="mask"):
    tx.init(params)


# ----------------------------------------------------------------------------------------------
# 5. Bad input.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
  ("name", "value"),
  [
    ("learning_rate", 0.0),
    ("learning_rate", -0.1),
    ("learning_rate", float("nan")),
    ("learning_rate_power", 0.5),
    ("learning_rate_power", float("-inf")),
    ("initial_accumulator_value", -0.1),
    ("initial_accumulator_value", float("inf")),
    ("l1", -1.0),
    ("l1", float("nan")),
    ("l2", -1.0),
    ("l2_shrinkage", -1.0),
    ("beta", -0.5),
    ("beta", float("inf")),
  ],
)
def test_bad_numbers_raise_at_construction_naming_the_argument(name, value):
  kwargs = {"learning_rate": 0.1, name: value}
  with pytest.raises(ValueError, match=rf"\b{name}\b"):
    optax_l1.ftrl(**kwargs)


@pytest.mark.parametrize("name", ["learning_rate_power", "initial_accumulator_value", "beta"])
def test_schedules_for_constants_raise_type_error(name):
  with pytest.raises(TypeError, match=rf"\b{name}\b"):
    optax_l1.ftrl(0.1, **{name: optax.constant_schedule(0.1)})


def test_warm_start_must_be_a_bool():
  with pytest.raises(TypeError, match="warm_start"):
    optax_l1.ftrl(0.1, warm_start="yes")  # type: ignore[arg-type]


def test_update_without_params_raises():
  params, grads = _problem(num_steps=1)
  tx = optax_l1.ftrl(0.1, l1=0.1)
  with pytest.raises(ValueError, match=r"call `tx\.update\(grads, state, params\)`"):
    jax.jit(tx.update)(grads[0], tx.init(params))
