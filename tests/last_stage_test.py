"""Tests of the last stages of an ``optax.chain``: ``l1_prox``, ``group_l1_prox``, ``keep_zeros``.

Against ``references`` (FOBOS, the group lasso's block soft threshold), with the optax contract
(jit without recompilation, ``inject_hyperparams``, schedules, masks, ``optax.masked``,
``optax.MultiSteps``), dtypes and bad input.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_l1

import references
from x64_mode import enable_x64

LR = 0.01
NAN, INF = float("nan"), float("inf")
BAD_NUMBERS = [-1.0, NAN, INF]


def run(tx, params, grads_per_step):
  """Runs ``tx`` under jit; returns the params after each step."""
  state = tx.init(params)

  @jax.jit
  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  history = []
  for grads in grads_per_step:
    params, state = step(params, state, grads)
    history.append(params)
  return history


def run_with_jitted_update(tx, params, grads):
  """``jax.jit(tx.update)`` at each step, ``optax.apply_updates`` outside it: the params after
  each step."""
  state = tx.init(params)
  step = jax.jit(tx.update)
  history = []
  for g in grads:
    updates, state = step(g, state, params)
    params = optax.apply_updates(params, updates)
    history.append(params)
  return history


def problem(seed=0, shape=(8, 6), steps=5, grad_scale=1.0):
  rng = np.random.default_rng(seed)
  params = jnp.asarray(rng.normal(size=shape), jnp.float32)
  grads = [jnp.asarray(rng.normal(size=shape) * grad_scale, jnp.float32) for _ in range(steps)]
  return params, grads


# ----------------------------------------------------------------------------------------------
# l1_prox.
# ----------------------------------------------------------------------------------------------


def test_seed_example_subgradient_oscillates_prox_lands_on_zero():
  # w = 0.005, loss gradient 0, lr = 0.01, λ = 1: the penalty's subgradient is sign(w).
  w = jnp.array([0.005])
  penalty_tx = optax.sgd(LR)
  penalty_state = penalty_tx.init(w)
  trajectory = []
  for _ in range(4):
    updates, penalty_state = penalty_tx.update(jnp.sign(w), penalty_state, w)
    w = optax.apply_updates(w, updates)
    trajectory.append(float(w[0]))
  np.testing.assert_allclose(trajectory, [-0.005, 0.005, -0.005, 0.005], rtol=1e-5)

  prox_tx = optax.chain(optax.sgd(LR), optax_l1.l1_prox(1.0, LR))
  history = run(prox_tx, jnp.array([0.005]), [jnp.zeros(1)] * 5)
  assert all(float(p[0]) == 0.0 for p in history)


def test_matches_the_published_fobos_step():
  rng = np.random.default_rng(0)
  params = jnp.asarray(rng.normal(size=(6, 4)), jnp.float32)
  grads = [jnp.asarray(rng.normal(size=(6, 4)), jnp.float32) for _ in range(3)]
  l1, l2 = 20.0, 3.0
  history = run(optax.chain(optax.sgd(LR), optax_l1.l1_prox(l1, LR, l2=l2)), params, grads)
  w = np.asarray(params, np.float64)
  for g, got in zip(grads, history, strict=True):
    w = references.elastic_net(w - LR * np.asarray(g), l1, l2, LR)
    np.testing.assert_array_equal(np.asarray(got) == 0, w == 0)
    np.testing.assert_allclose(np.asarray(got), w, atol=1e-6)
  assert np.mean(w == 0) > 0.2


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_dtype_preserved_and_zeros_exact(dtype):
  params = {"w": jnp.array([0.004, -0.003, 0.5, -0.8], dtype)}
  grads = {"w": jnp.array([0.1, -0.1, 0.0, 0.0], dtype)}
  tx = optax.chain(optax.sgd(LR), optax_l1.l1_prox(1.0, LR))
  state = tx.init(params)
  updates, state = jax.jit(tx.update)(grads, state, params)
  assert updates["w"].dtype == dtype
  new = optax.apply_updates(params, updates)["w"]
  assert new.dtype == dtype
  np.testing.assert_array_equal(np.asarray(new[:2], np.float32), [0.0, 0.0])
  np.testing.assert_allclose(np.asarray(new[2:], np.float32), [0.49, -0.79], atol=5e-3)


def test_float64():
  with enable_x64(True):
    params = jnp.array([0.004, 0.5], jnp.float64)
    tx = optax.chain(optax.sgd(LR), optax_l1.l1_prox(1.0, LR))
    state = tx.init(params)
    updates, _ = jax.jit(tx.update)(jnp.zeros(2, jnp.float64), state, params)
    new = optax.apply_updates(params, updates)
    assert new.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(new), [0.0, 0.49], atol=1e-15)


def test_no_recompilation_on_second_step():
  tx = optax.chain(optax.sgd(LR), optax_l1.l1_prox(1.0, optax.linear_schedule(LR, 0.0, 10)))
  traces = []

  @jax.jit
  def step(params, state):
    traces.append(None)
    updates, state = tx.update(jnp.ones_like(params), state, params)
    return optax.apply_updates(params, updates), state

  params = jnp.ones(3)
  state = tx.init(params)
  for _ in range(3):
    params, state = step(params, state)
  assert len(traces) == 1


def test_inject_hyperparams_gives_identical_updates():
  rng = np.random.default_rng(1)
  params = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
  grads = [jnp.asarray(rng.normal(size=(5, 3)), jnp.float32) for _ in range(4)]
  plain = optax.chain(optax.sgd(0.1), optax_l1.l1_prox(2.0, 0.1, l2=0.5))
  injected = optax.chain(
    optax.sgd(0.1), optax.inject_hyperparams(optax_l1.l1_prox)(l1=2.0, learning_rate=0.1, l2=0.5)
  )
  for a, b in zip(run(plain, params, grads), run(injected, params, grads), strict=True):
    # Same values up to float32 rounding (a constant lr is folded differently from a traced one).
    chex.assert_trees_all_close(a, b, atol=1e-7, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(a) == 0, np.asarray(b) == 0)


def test_schedules_threshold_follows_lr_t_and_l1_t():
  lr = optax.linear_schedule(0.1, 0.01, transition_steps=3)
  l1 = optax.linear_schedule(1.0, 3.0, transition_steps=3)
  params = jnp.array([0.5, -0.3, 2.0, -1.5])
  history = run(optax.chain(optax.sgd(lr), optax_l1.l1_prox(l1, lr)), params, [jnp.zeros(4)] * 4)
  w = np.asarray(params, np.float64)
  for count, got in enumerate(history):
    t = float(lr(count)) * float(l1(count))
    w = references.soft_threshold(w, t)
    np.testing.assert_allclose(np.asarray(got), w, atol=1e-6)


def test_mask_tree_and_callable():
  params = {"kernel": jnp.array([[0.005, 0.5]]), "bias": jnp.array([0.005])}
  grads = jax.tree.map(jnp.zeros_like, params)
  for mask in ({"kernel": True, "bias": False}, lambda p: jax.tree.map(lambda x: x.ndim > 1, p)):
    (new,) = run(optax.chain(optax.sgd(LR), optax_l1.l1_prox(1.0, LR, mask=mask)), params, [grads])
    np.testing.assert_array_equal(new["kernel"], np.float32([[0.0, 0.49]]))
    np.testing.assert_array_equal(new["bias"], params["bias"])


def test_mask_prefix_tree():
  params = {"dense": {"kernel": jnp.array([0.005]), "bias": jnp.array([0.005])}, "out": jnp.ones(1)}
  tx = optax.chain(optax.sgd(LR), optax_l1.l1_prox(1.0, LR, mask={"dense": True, "out": False}))
  (new,) = run(tx, params, [jax.tree.map(jnp.zeros_like, params)])
  assert float(new["dense"]["kernel"][0]) == 0.0 and float(new["dense"]["bias"][0]) == 0.0
  assert float(new["out"][0]) == 1.0


def test_mask_that_does_not_match_raises():
  params = {"kernel": jnp.ones(2), "bias": jnp.ones(2)}
  tx = optax_l1.l1_prox(1.0, LR, mask={"kernel": True, "scale": False})
  with pytest.raises(ValueError, match="mask must have the structure of the params"):
    tx.update(params, tx.init(params), params)


def test_mask_of_arrays_raises():
  params = {"kernel": jnp.ones(2)}
  tx = optax_l1.l1_prox(1.0, LR, mask={"kernel": jnp.array(True)})
  with pytest.raises(TypeError, match="mask leaves must be Python bools"):
    tx.update(params, tx.init(params), params)


def test_works_inside_optax_masked_and_multisteps():
  params = {"kernel": jnp.array([0.005, 0.5]), "bias": jnp.array([0.005])}
  zeros = jax.tree.map(jnp.zeros_like, params)
  inner = optax.chain(optax.sgd(LR), optax_l1.l1_prox(1.0, LR))
  masked = optax.masked(inner, {"kernel": True, "bias": False})
  (new,) = run(masked, params, [zeros])
  np.testing.assert_array_equal(new["kernel"], np.float32([0.0, 0.49]))
  np.testing.assert_array_equal(new["bias"], params["bias"])  # optax.masked: raw zero gradient

  multi = optax.MultiSteps(inner, every_k_schedule=2)
  history = run(multi, params, [zeros] * 4)
  np.testing.assert_array_equal(history[0]["kernel"], params["kernel"])
  np.testing.assert_array_equal(history[1]["kernel"], np.float32([0.0, 0.49]))
  np.testing.assert_array_equal(history[2]["kernel"], history[1]["kernel"])
  np.testing.assert_allclose(history[3]["kernel"], np.float32([0.0, 0.48]), atol=1e-7)
  assert float(history[3]["kernel"][0]) == 0.0


def test_integer_leaves_are_untouched():
  params = {"w": jnp.array([0.005]), "step": jnp.array(3)}
  tx = optax_l1.l1_prox(1.0, LR)
  updates = {"w": jnp.zeros(1), "step": jnp.array(0)}
  out, _ = jax.jit(tx.update)(updates, tx.init(params), params)
  assert out["step"].dtype == params["step"].dtype and int(out["step"]) == 0
  np.testing.assert_array_equal(out["w"], -params["w"])


@pytest.mark.parametrize("name", ["l1", "learning_rate", "l2"])
@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_bad_numbers_rejected_at_construction(name, value):
  kwargs = {"l1": 1.0, "learning_rate": LR, "l2": 0.0, name: value}
  with pytest.raises(ValueError, match=name):
    optax_l1.l1_prox(**kwargs)


def test_update_without_params_explains_how_to_pass_them():
  tx = optax.chain(optax.sgd(LR), optax_l1.l1_prox(1.0, LR))
  params = jnp.ones(2)
  with pytest.raises(ValueError, match=r"tx.update\(grads, state, params\)"):
    tx.update(params, tx.init(params))


def test_sgd_alias_equals_chain_with_l1_prox():
  rng = np.random.default_rng(2)
  params = {"w": jnp.asarray(rng.normal(size=(8, 3)), jnp.float32)}
  grads = [{"w": jnp.asarray(rng.normal(size=(8, 3)), jnp.float32)} for _ in range(4)]
  chained = optax.chain(optax.sgd(0.05), optax_l1.l1_prox(5.0, 0.05, l2=1.0))
  alias = optax_l1.sgd(0.05, l1=5.0, l2=1.0)
  for a, b in zip(run(chained, params, grads), run(alias, params, grads), strict=True):
    chex.assert_trees_all_close(a, b, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(a["w"]) == 0, np.asarray(b["w"]) == 0)


# ----------------------------------------------------------------------------------------------
# group_l1_prox: the group lasso, and the sparse group lasso after l1_prox.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [-1, 0])
def test_group_l1_prox_after_sgd_matches_reference(axis):
  params, grads = problem()
  lr, lam = 0.1, 2.0
  history = run_with_jitted_update(
    optax.chain(optax.sgd(lr), optax_l1.group_l1_prox(lam, lr, axis=axis)), params, grads
  )
  w = np.asarray(params, np.float64)
  for g, got in zip(grads, history, strict=True):
    w = references.group_l1(w - lr * np.asarray(g), lam, lr, axis)
    np.testing.assert_array_equal(np.asarray(got) == 0, w == 0)
    np.testing.assert_allclose(np.asarray(got), w, atol=1e-6)
  zero_groups = np.all(w == 0, axis=tuple(i for i in range(2) if i != axis % 2))
  assert 0 < zero_groups.mean() < 1


def test_sparse_group_lasso_is_soft_then_block_soft():
  params, grads = problem(seed=2)
  lr, l1, lam = 0.1, 0.5, 2.0
  chained = optax.chain(optax.sgd(lr), optax_l1.l1_prox(l1, lr), optax_l1.group_l1_prox(lam, lr))
  alias = optax_l1.sgd(lr, l1=l1, group_l1=lam)
  w = np.asarray(params, np.float64)
  for g, a, b in zip(
    grads,
    run_with_jitted_update(chained, params, grads),
    run_with_jitted_update(alias, params, grads),
    strict=True,
  ):
    w = references.group_l1(references.soft_threshold(w - lr * np.asarray(g), lr * l1), lam, lr)
    for got in (a, b):
      np.testing.assert_array_equal(np.asarray(got) == 0, w == 0)
      np.testing.assert_allclose(np.asarray(got), w, atol=1e-6)
  assert 0 < np.mean(w == 0) < 1 and np.any(np.all(w == 0, axis=0))


def test_group_l1_prox_inject_hyperparams_schedule_and_mask():
  params = {
    "kernel": jnp.asarray(np.random.default_rng(5).normal(size=(4, 6)), jnp.float32),
    "bias": jnp.full((6,), 0.01),
  }
  grads = [jax.tree.map(jnp.zeros_like, params)] * 3
  lr = optax.linear_schedule(0.1, 0.3, 2)
  mask = {"kernel": True, "bias": False}
  plain = run_with_jitted_update(
    optax.chain(optax.sgd(lr), optax_l1.group_l1_prox(1.0, lr, mask=mask)), params, grads
  )
  injected = optax.inject_hyperparams(optax_l1.group_l1_prox, static_args=("axis", "mask"))
  inj = run_with_jitted_update(
    optax.chain(optax.sgd(lr), injected(l1=1.0, learning_rate=lr, mask=mask)), params, grads
  )
  w = np.asarray(params["kernel"], np.float64)
  for count, (a, b) in enumerate(zip(plain, inj, strict=True)):
    w = references.group_l1(w, 1.0, float(lr(count)))
    np.testing.assert_allclose(np.asarray(a["kernel"]), w, atol=1e-6)
    chex.assert_trees_all_close(a, b, atol=1e-7)
    np.testing.assert_array_equal(a["bias"], params["bias"])
  assert np.any(np.all(w == 0, axis=0))


def test_bf16_group_zeros_are_exact():
  params = jnp.asarray(np.random.default_rng(6).normal(size=(4, 6)) * 0.1, jnp.bfloat16)
  tx = optax.chain(optax.sgd(0.1), optax_l1.group_l1_prox(1.0, 0.1))
  (new,) = run_with_jitted_update(tx, params, [jnp.zeros_like(params)])
  assert new.dtype == jnp.bfloat16
  expected = references.group_l1(np.asarray(params, np.float32), 1.0, 0.1)
  np.testing.assert_array_equal(np.asarray(new, np.float32) == 0, expected == 0)
  assert 0 < np.mean(np.all(expected == 0, axis=0)) < 1


# ----------------------------------------------------------------------------------------------
# keep_zeros.
# ----------------------------------------------------------------------------------------------


def test_keep_zeros_keeps_the_pattern_for_many_steps_while_others_move():
  params, grads = problem(seed=7, steps=50)
  (sparse,) = run_with_jitted_update(optax_l1.sgd(0.1, l1=8.0), params, grads[:1])
  zeros = np.asarray(sparse) == 0
  assert 0.2 < zeros.mean() < 0.9
  history = run_with_jitted_update(
    optax.chain(optax.adam(0.05), optax_l1.keep_zeros()), sparse, grads
  )
  final = np.asarray(history[-1])
  assert np.all(final[zeros] == 0)
  assert np.all(final[~zeros] != np.asarray(sparse)[~zeros])  # the rest trained


def test_keep_zeros_needs_params():
  tx = optax_l1.keep_zeros()
  with pytest.raises(ValueError, match="params"):
    tx.update(jnp.ones(2), tx.init(jnp.ones(2)))


# ----------------------------------------------------------------------------------------------
# Bad input, and trees with nothing to shrink.
# ----------------------------------------------------------------------------------------------


PARAMS = {"kernel": jnp.array([[0.5, -1e-3], [2.0, 0.0]]), "bias": jnp.array([1e-3, -0.5])}
TRANSFORMATIONS = {
  "l1_prox": lambda **kw: optax_l1.l1_prox(0.1, 0.1, **kw),
  "group_l1_prox": lambda **kw: optax_l1.group_l1_prox(0.1, 0.1, **kw),
}
# Every last stage, and l1_prox in the chain it ends.
ALL_UPDATES = {
  **TRANSFORMATIONS,
  "keep_zeros": lambda: optax_l1.keep_zeros(),
  "chain_sgd_l1_prox": lambda: optax.chain(optax.sgd(0.1), optax_l1.l1_prox(0.1, 0.1)),
}


def _bad_number_cases():
  for value in BAD_NUMBERS:
    yield pytest.param("learning_rate", value, id=f"group_l1_prox-lr-{value}")
    yield pytest.param("l1", value, id=f"group_l1_prox-l1-{value}")


@pytest.mark.parametrize(("arg", "value"), list(_bad_number_cases()))
def test_bad_strength_raises_at_construction_naming_it(arg, value):
  with pytest.raises(ValueError, match=rf"^{arg} must be a finite number >= 0"):
    optax_l1.group_l1_prox(**{"l1": 0.1, "learning_rate": 0.1, arg: value})


@pytest.mark.parametrize("name", ["group_l1_prox"])
def test_mask_of_the_wrong_structure_raises_naming_mask(name):
  tx = TRANSFORMATIONS[name](mask={"kernel": True, "scale": False})
  with pytest.raises(ValueError, match=r"^mask must have the structure of the params"):
    tx.update(PARAMS, tx.init(PARAMS), PARAMS)


@pytest.mark.parametrize("name", list(ALL_UPDATES))
def test_update_without_params_says_how_to_pass_them(name):
  tx = ALL_UPDATES[name]()
  state = tx.init(PARAMS)
  with pytest.raises(ValueError, match=r"call `tx\.update\(grads, state, params\)`"):
    tx.update(PARAMS, state)
  with pytest.raises(ValueError, match=r"call `tx\.update\(grads, state, params\)`"):
    jax.jit(tx.update)(PARAMS, state, None)


@pytest.mark.parametrize("name", list(ALL_UPDATES))
def test_empty_pytree_gives_empty_updates(name):
  tx = ALL_UPDATES[name]()
  for params in [{}, {"a": None}, ()]:
    updates, _ = tx.update(params, tx.init(params), params)
    assert updates == params


@pytest.mark.parametrize(
  "make",
  [
    lambda: optax_l1.group_l1_prox(0.1, 0.1, axis=2),
    lambda: optax_l1.group_l1_prox(0.1, 0.1, axis=-3),
  ],
  ids=["group_l1_prox-2", "group_l1_prox--3"],
)
def test_group_axis_out_of_range_raises_naming_the_axis(make):
  tx = make()
  params = jnp.ones((3, 4))
  with pytest.raises(ValueError, match=r"^group axis -?\d is out of range for a leaf of shape"):
    tx.update(params, tx.init(params), params)


# Regressions of the first-hour defects (x64, complex, masks, injection, Rngs, untouched rows,
# momentum, errors).


def test_keep_zeros_and_to_bcoo_pass_non_float_leaves_through():
  params = {"w": jnp.array([0.0, 1.0]), "count": jnp.array(3), "key": jax.random.key(0)}
  tx = optax_l1.keep_zeros()
  updates = {"w": jnp.ones(2), "count": jnp.array(1), "key": params["key"]}
  new, _ = tx.update(updates, tx.init(params), params)
  np.testing.assert_array_equal(new["w"], [0.0, 1.0])
  assert (
    optax_l1.to_bcoo(params, mask={"w": True, "count": True, "key": True})["count"]
    is params["count"]
  )


def test_group_l1_prox_with_an_axis_per_leaf_matches_the_reference():
  rng = np.random.default_rng(5)
  kernel, heads = rng.normal(size=(6, 4)), rng.normal(size=(4, 6))
  kernel[0] *= 0.1  # a small group in each: rows (axis 0), blocks of 2 columns
  heads[:, :2] *= 0.1
  params = {"kernel": jnp.asarray(kernel, jnp.float32), "heads": jnp.asarray(heads, jnp.float32)}
  grads = [jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype) * 0.1, params)]
  grads *= 3
  layouts = {"kernel": (0, 1), "heads": (1, 2)}
  axes = {"kernel": 0, "heads": optax_l1.GroupAxis(1, size=2)}
  lr, lam = 0.1, 1.2
  tx = optax.chain(optax.sgd(lr), optax_l1.group_l1_prox(lam, lr, axis=axes))
  state, got = tx.init(params), params
  for g in grads:
    updates, state = jax.jit(tx.update)(g, state, got)
    got = optax.apply_updates(got, updates)
  for name, (axis, size) in layouts.items():
    w = np.asarray(params[name], np.float64)
    for g in grads:
      w = references.group_l1_in_metric(w - lr * np.asarray(g[name]), lam, lr, axis, size)
    np.testing.assert_array_equal(np.asarray(got[name]) == 0, w == 0)
    np.testing.assert_allclose(np.asarray(got[name]), w, atol=1e-6)
    groups = np.moveaxis(w, axis, 0).reshape(w.shape[axis] // size, -1)
    assert 0 < np.all(groups == 0, axis=1).mean() < 1, name
