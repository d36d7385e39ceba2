"""NaN and Inf: what they do to the weights, how to skip them, and that the prox never makes one.

The behaviour, stated by the tests below:

- A NaN gradient reaches the weight: ``optax_l1.adam`` turns that weight (and its moments) into
  NaN, as ``optax.adam`` does; the elementwise prox neither hides nor creates it (soft
  thresholding keeps NaN as NaN), and the group prox makes the whole group NaN. An Inf gradient makes Adam's step inf/inf = NaN, and SGD's weight ∓inf.
- ``optax.apply_if_finite(optax_l1.adam(...), max_consecutive_errors=n)`` checks the gradients:
  a non-finite step is skipped with the params, their exact zeros and the optimizer's state
  bitwise untouched, and the next finite step is the one an undisturbed run takes.
- The operators never turn a finite weight into NaN: huge and tiny values, thresholds 0, huge
  and inf, all-zero groups, zero-size arrays; nor do their gradients at all-zero inputs; nor
  does Adam's first step with a zero gradient (v̂ = 0, so d = ε).
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

NAN, INF = float("nan"), float("inf")


def step(tx, params, state, grads):
  updates, state = jax.jit(tx.update)(grads, state, params)
  return optax.apply_updates(params, updates), state


def leaf_bytes(tree):
  return [np.asarray(leaf).tobytes() for leaf in jax.tree.leaves(tree)]


# ----------------------------------------------------------------------------------------------
# NaN and Inf gradients.
# ----------------------------------------------------------------------------------------------


def test_nan_gradient_propagates_into_the_adam_weight_and_its_moments():
  """Behaviour: the NaN reaches the weight and stays there; the other coordinates are unaffected."""
  tx = optax_l1.adam(0.1, l1=0.01)
  params = jnp.array([0.5, -1.0, 1e-4])
  state = tx.init(params)
  params, state = step(tx, params, state, jnp.array([NAN, 0.1, 0.0]))
  np.testing.assert_array_equal(np.isnan(params), [True, False, False])
  assert float(params[2]) == 0.0  # the prox still zeroes the small weight next to it
  assert np.isnan(state.preconditioner.mu[0]) and np.isnan(state.preconditioner.nu[0])
  # The moments are poisoned: later finite gradients never bring the weight back.
  for _ in range(3):
    params, state = step(tx, params, state, jnp.array([0.1, 0.1, 0.1]))
  np.testing.assert_array_equal(np.isnan(params), [True, False, False])


def test_nan_gradient_gives_the_same_nan_pattern_as_optax_adam():
  params = jnp.array([0.5, -1.0, 2.0])
  grads = jnp.array([0.1, NAN, -0.2])
  ours, theirs = optax_l1.adam(0.1, l1=0.01), optax.adam(0.1)
  ours, _ = step(ours, params, ours.init(params), grads)
  theirs, _ = step(theirs, params, theirs.init(params), grads)
  np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))


def test_inf_gradient_makes_adam_nan_and_sgd_infinite():
  params = jnp.array([0.5, -1.0])
  grads = jnp.array([INF, -INF])
  adam = optax_l1.adam(0.1, l1=0.01)
  out, _ = step(adam, params, adam.init(params), grads)
  assert np.all(np.isnan(out))  # m̂/d = inf/inf
  sgd = optax_l1.sgd(0.1, l1=0.01)
  out, _ = step(sgd, params, sgd.init(params), grads)
  np.testing.assert_array_equal(out, [-INF, INF])  # the step is infinite; the prox keeps it


def test_group_prox_propagates_nan():
  x = jnp.array([[NAN, 1.0], [1.0, 1.0]])  # groups are columns: the first holds the NaN
  out = optax_l1.block_soft_threshold(x, 0.5)
  assert np.isnan(out[0, 0])
  tx = optax_l1.adam(0.1, group_l1=0.01)
  params = jnp.array([[0.5, 1.0], [0.5, -1.0]])
  new, _ = step(tx, params, tx.init(params), jnp.array([[NAN, 0.1], [0.1, 0.1]]))
  assert np.isnan(new[0, 0])


# ----------------------------------------------------------------------------------------------
# optax.apply_if_finite skips bad steps.
# ----------------------------------------------------------------------------------------------

MAKERS = {
  "adam": lambda: optax_l1.adam(0.05, l1=0.5),
  "adam_group_l1": lambda: optax_l1.adam(0.05, l1=0.5, group_l1=0.5),
  "sgd_momentum": lambda: optax_l1.sgd(0.05, l1=2.0, momentum=0.9),
  "chain_sgd_l1_prox": lambda: optax.chain(optax.sgd(0.05), optax_l1.l1_prox(2.0, 0.05)),
  "ftrl": lambda: optax_l1.ftrl(0.05, l1=0.5, warm_start=False),
}


def _problem():
  rng = np.random.default_rng(0)
  params = jnp.asarray(rng.normal(size=(6, 4)), jnp.float32)
  grads = [jnp.asarray(rng.normal(size=(6, 4)), jnp.float32) for _ in range(4)]
  return params, grads


@pytest.mark.parametrize(
  ("name", "bad"),
  [
    ("adam", NAN),
    ("adam", INF),
    ("adam_group_l1", NAN),
    ("sgd_momentum", -INF),
    ("chain_sgd_l1_prox", NAN),
    ("ftrl", NAN),
  ],
)
def test_apply_if_finite_skips_the_bad_step_bitwise_and_the_next_one_proceeds(name, bad):
  params, grads = _problem()
  bad_grads = grads[2].at[1, 2].set(bad)
  tx = optax.apply_if_finite(MAKERS[name](), max_consecutive_errors=3)

  clean_params, clean_state = params, tx.init(params)
  for g in grads:
    clean_params, clean_state = step(tx, clean_params, clean_state, g)

  p, state = params, tx.init(params)
  for g in grads[:2]:
    p, state = step(tx, p, state, g)
  zeros_before = np.asarray(p) == 0
  assert zeros_before.any()  # there are exact zeros to keep
  skipped, skipped_state = step(tx, p, state, bad_grads)
  assert leaf_bytes(skipped) == leaf_bytes(p)  # params, exact zeros included, untouched
  assert leaf_bytes(skipped_state.inner_state) == leaf_bytes(state.inner_state)
  assert not bool(skipped_state.last_finite) and int(skipped_state.notfinite_count) == 1
  # The next finite steps are those of a run that never saw the bad gradient.
  for g in grads[2:]:
    skipped, skipped_state = step(tx, skipped, skipped_state, g)
  assert int(skipped_state.notfinite_count) == 0 and int(skipped_state.total_notfinite) == 1
  assert leaf_bytes(skipped) == leaf_bytes(clean_params)
  assert leaf_bytes(skipped_state.inner_state) == leaf_bytes(clean_state.inner_state)


def test_apply_if_finite_gives_up_after_max_consecutive_errors():
  """optax's documented behaviour: after n skipped steps in a row, the bad update is applied."""
  tx = optax.apply_if_finite(optax_l1.adam(0.1, l1=0.01), max_consecutive_errors=2)
  params = jnp.array([0.5, -1.0])
  state = tx.init(params)
  bad = jnp.array([NAN, 0.1])
  for _ in range(2):
    new, state = step(tx, params, state, bad)
    assert leaf_bytes(new) == leaf_bytes(params)
  new, state = step(tx, params, state, bad)
  np.testing.assert_array_equal(np.isnan(new), [True, False])


# ----------------------------------------------------------------------------------------------
# The prox never turns a finite weight into NaN.
# ----------------------------------------------------------------------------------------------

DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16]


def extremes(dtype):
  """Finite values at the edges of a dtype: ±max, ±smallest normal, ±1, 0 and −0."""
  info = jnp.finfo(dtype)
  values = [0.0, -0.0, float(info.tiny), -float(info.tiny), 1.0, -1.0]
  values += [float(info.max), -float(info.max), float(info.max) / 3, -float(info.eps)]
  return jnp.asarray(values, dtype)


THRESHOLDS = [0.0, 1e-30, 1.0, 3e38, INF]


def operators():
  return {
    "soft_threshold": optax_l1.soft_threshold,
    "hard_threshold": optax_l1.hard_threshold,
    "prox_elastic_net": lambda x, t: optax_l1.prox_elastic_net(x, t, l2=t, scaling=1.0),
    "block_soft_threshold": lambda x, t: optax_l1.block_soft_threshold(x, t, axis=0),
  }


def all_operators_at_all_thresholds(x):
  """Every operator at every threshold, in one compiled function (one compilation per input)."""
  ts = jnp.asarray(THRESHOLDS, jnp.float32)
  return {name: jax.vmap(lambda t, op=op: op(x, t))(ts) for name, op in operators().items()}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_operators_keep_finite_values_finite(dtype):
  x = extremes(dtype)
  # Elementwise operators see the values as a row; the block one (groups along axis 0) as
  # groups of one, of two (huge entries, whose squared norm overflows), and of all zeros.
  for xi in [x.reshape(1, -1), x.reshape(2, -1), jnp.zeros((3, 4), dtype)]:
    for name, out in jax.jit(all_operators_at_all_thresholds)(xi).items():
      assert out.dtype == xi.dtype and out.shape == (len(THRESHOLDS), *xi.shape)
      assert np.all(np.isfinite(np.asarray(out, np.float32))), (name, out)


def test_operators_keep_finite_float64_finite():
  with enable_x64(True):
    x = extremes(jnp.float64).reshape(2, -1)
    for name, op in operators().items():
      out = jax.vmap(lambda t, op=op: op(x, t))(jnp.asarray([*THRESHOLDS, 1.7e308]))
      assert out.dtype == jnp.float64
      assert np.all(np.isfinite(out)), (name, out)


def test_block_soft_threshold_of_all_zero_groups_is_zero_for_any_threshold():
  x = jnp.zeros((4, 3)).at[:, 1].set(jnp.array([3.0, 0.0, 4.0, 0.0]))  # column norms 0, 5, 0
  for t in [0.0, 1.0, 10.0, INF]:
    out = np.asarray(optax_l1.block_soft_threshold(x, t))
    np.testing.assert_array_equal(out[:, [0, 2]], 0.0)
    assert np.all(np.isfinite(out))
  np.testing.assert_allclose(np.asarray(optax_l1.block_soft_threshold(x, 1.0))[:, 1], x[:, 1] * 0.8)


def test_block_soft_threshold_shrinks_groups_whose_squares_overflow():
  x = jnp.array([[1e20], [1e20]], jnp.float32)  # one group, norm 1.414e20
  out = np.asarray(optax_l1.block_soft_threshold(x, 1e19, axis=-1), np.float64)
  expected = references.block_soft_threshold(x, 1e19, axis=-1)  # in float64: no overflow
  np.testing.assert_allclose(out, expected, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_operators_on_zero_size_arrays(dtype):
  for shape in [(0,), (3, 0), (0, 2, 3)]:
    x = jnp.zeros(shape, dtype)
    for name, op in operators().items():
      out = op(x, 1.0)
      assert out.shape == shape and out.dtype == dtype, (name, shape)


@jax.jit
def gradients_at_zero(x):
  """d/dx and d/dt of sum(P(x, t)² + P(x, t)) for every operator, at t = 0 and t = 1."""

  def loss(x, t, op):
    out = op(x, t)
    return jnp.sum(out**2) + jnp.sum(out)

  return {
    (name, t): jax.grad(loss, argnums=(0, 1))(x, jnp.float32(t), op)
    for name, op in operators().items()
    for t in (0.0, 1.0)
  }


def test_gradients_at_all_zero_inputs_have_no_nan():
  for (name, t), (grad_x, grad_t) in gradients_at_zero(jnp.zeros((3, 2))).items():
    assert np.all(np.isfinite(grad_x)) and np.isfinite(grad_t), (name, t)
    if t > 0:  # zeros stay zeros under a positive threshold: the output does not move
      np.testing.assert_array_equal(grad_x, 0.0, err_msg=name)


# ----------------------------------------------------------------------------------------------
# Optimizer steps that divide by small numbers.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
  "make",
  [
    lambda: optax_l1.adam(0.1, l1=1.0),
    lambda: optax_l1.adam(0.1, l1=1.0, eps_root=1e-16),
    lambda: optax_l1.adam(0.1, group_l1=1.0),
    lambda: optax_l1.adam(0.1, l0=100.0),  # threshold sqrt(2·0.1·100/√ε) = 447
    lambda: optax_l1.adamw(0.1, l1=1.0, l2=1.0),
    lambda: optax_l1.rmsprop(0.1, l1=1.0),
    lambda: optax_l1.rmsprop(0.1, l1=1.0, eps_in_sqrt=False),
    lambda: optax_l1.adagrad(0.1, l1=1.0, initial_accumulator_value=0.0),
  ],
  ids=[
    "adam",
    "adam_eps_root",
    "adam_group_l1",
    "adam_l0",
    "adamw_l2",
    "rmsprop",
    "rmsprop_eps_outside",
    "adagrad_from_zero",
  ],
)
def test_first_step_with_a_zero_gradient_is_finite_and_zeroes_the_weight(make):
  """v̂ = 0, so the metric is its floor √ε and the threshold ηλ/√ε = 1000 ηλ·10 is large: the
  weights land on exactly zero, and nothing is divided by zero."""
  tx = make()
  params = jnp.array([[0.5, -2.0], [1e-3, 0.0], [100.0, -1e-30]], jnp.float32)
  new, state = step(tx, params, tx.init(params), jnp.zeros_like(params))
  assert np.all(np.isfinite(new))
  assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(state))
  np.testing.assert_array_equal(new, 0.0)
  assert not np.any(np.signbit(new))  # +0.0, never −0.0


def test_huge_finite_gradients_give_finite_adaptive_steps():
  """g² overflows to inf, so d = inf and the step m̂/d is 0: finite, no NaN."""
  params = jnp.array([0.5, -1.0, 0.0])
  grads = jnp.array([3e38, -3e38, 1e30])
  for tx in [optax_l1.adam(0.1, l1=0.1), optax_l1.rmsprop(0.1, l1=0.1), optax_l1.adagrad(0.1)]:
    new, _ = step(tx, params, tx.init(params), grads)
    assert np.all(np.isfinite(new)), new


def test_zero_eps_with_a_zero_gradient_is_nan_as_in_optax():
  """eps=0 is accepted (as by optax); 0/0 then makes the step NaN where the gradient is 0."""
  params = jnp.array([1.0, 0.5])
  grads = jnp.array([0.0, 1.0])
  ours, theirs = optax_l1.adam(0.1, eps=0.0, l1=0.1), optax.adam(0.1, eps=0.0)
  ours, _ = step(ours, params, ours.init(params), grads)
  theirs, _ = step(theirs, params, theirs.init(params), grads)
  np.testing.assert_array_equal(np.isnan(ours), [True, False])
  np.testing.assert_array_equal(np.isnan(theirs), [True, False])


def test_nan_weight_does_not_leak_into_other_weights():
  """Elementwise penalties keep a NaN weight to itself, in every optimizer."""
  params = {"w": jnp.array([NAN, 0.5, 1e-4]), "b": jnp.array([1.0])}
  grads = {"w": jnp.array([0.1, 0.1, 0.0]), "b": jnp.array([0.1])}
  for tx in [
    optax_l1.sgd(0.1, l1=0.01, momentum=0.9),
    optax_l1.adam(0.1, l1=0.01),
    optax_l1.adamw(0.1, l1=0.01),
    optax_l1.rmsprop(0.1, l1=0.01),
    optax_l1.adagrad(0.1, l1=0.01),
  ]:
    new, _ = step(tx, params, tx.init(params), grads)
    np.testing.assert_array_equal(np.isnan(new["w"]), [True, False, False])
    assert float(new["w"][2]) == 0.0
    chex.assert_tree_all_finite(new["b"])
