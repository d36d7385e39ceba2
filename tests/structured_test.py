"""Group lasso, sparse group lasso, L0 and keep-zeros, against NumPy references of the formulas."""

import chex
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st

import optax_l1


def np_block_soft(x, t, axis):
  """Reference: max(0, 1 − t/‖x_G‖)·x_G, groups = indices along `axis` (t per group or scalar)."""
  x = np.asarray(x, np.float64)
  axes = tuple(i for i in range(x.ndim) if i != axis % x.ndim)
  norm = np.sqrt(np.sum(x * x, axis=axes, keepdims=True))
  with np.errstate(divide="ignore", invalid="ignore"):
    factor = np.where(norm > 0, np.maximum(0, 1 - t / norm), 0)
  return x * factor


def np_soft(x, t):
  return np.sign(x) * np.maximum(np.abs(x) - t, 0)


@pytest.mark.parametrize(
  "shape,axis", [((6, 5), -1), ((6, 5), 0), ((3, 3, 4, 5), -1), ((3, 3, 4, 5), 2), ((7,), 0)]
)
def test_block_soft_threshold_matches_reference(shape, axis):
  x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
  norms = np.sqrt(
    np.sum(
      x.astype(np.float64) ** 2, axis=tuple(i for i in range(len(shape)) if i != axis % len(shape))
    )
  )
  ordered = np.sort(norms.ravel())
  k = len(ordered) // 2
  t = float(ordered[k - 1] + ordered[k]) / 2  # between two norms: removes about half the groups
  out = np.asarray(jax.jit(lambda x: optax_l1.block_soft_threshold(x, t, axis=axis))(x))
  expected = np_block_soft(x, t, axis)
  np.testing.assert_array_equal(out == 0, expected == 0)
  np.testing.assert_allclose(out, expected, atol=1e-6)
  if len(shape) > 1:
    assert 0 < np.mean(expected == 0) < 1  # some groups removed, some kept


@given(
  x=hnp.arrays(np.float32, (4, 3), elements=st.floats(-5, 5, width=32, allow_subnormal=False)),
  t=st.floats(0, 4, width=32, allow_subnormal=False),
)
def test_block_soft_threshold_properties(x, t):
  out = np.asarray(optax_l1.block_soft_threshold(jnp.asarray(x), t))
  x64 = x.astype(np.float64)
  in_norms, out_norms = np.linalg.norm(x64, axis=0), np.linalg.norm(out, axis=0)
  assert np.all(out_norms <= in_norms * (1 + 1e-6) + 1e-30)  # shrinks every group's norm
  removed = np.all(out == 0, axis=0)
  assert np.all(removed[in_norms < t * (1 - 1e-5)]) and not np.any(
    removed[in_norms > t * (1 + 1e-5)]
  )
  # Directions are kept: out is a non-negative multiple of x, group by group.
  ratio = out_norms / np.where(in_norms > 0, in_norms, 1)
  np.testing.assert_allclose(out, x64 * ratio, rtol=1e-5, atol=1e-6)
  # A zero threshold is the identity.
  np.testing.assert_array_equal(np.asarray(optax_l1.block_soft_threshold(jnp.asarray(x), 0.0)), x)


def test_block_soft_threshold_all_zero_group_has_no_nan_value_or_gradient():
  x = jnp.array([[0.0, 1.0], [0.0, 2.0]])
  out = optax_l1.block_soft_threshold(x, 0.5)
  assert np.all(np.isfinite(out)) and float(out[0, 0]) == 0.0
  grad = jax.grad(lambda x: jnp.sum(optax_l1.block_soft_threshold(x, 0.5)))(x)
  assert np.all(np.isfinite(grad))


def test_block_soft_threshold_axis_out_of_range():
  with pytest.raises(ValueError, match="group axis 2 is out of range for a leaf of shape"):
    optax_l1.block_soft_threshold(jnp.ones((3, 4)), 1.0, axis=2)


def test_hard_threshold_is_an_argmin_of_its_objective():
  rng = np.random.default_rng(1)
  x = rng.normal(size=200).astype(np.float32) * 2
  t = 1.0
  out = np.asarray(optax_l1.hard_threshold(jnp.asarray(x), t))
  # Per entry: keeping costs t²/2, zeroing costs x²/2: keep exactly when |x| > t.
  np.testing.assert_array_equal(out, np.where(np.abs(x) > t, x, 0))


def run(tx, params, grads):
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


@pytest.mark.parametrize("axis", [-1, 0])
def test_group_l1_prox_after_sgd_matches_reference(axis):
  params, grads = problem()
  lr, lam = 0.1, 2.0
  history = run(
    optax.chain(optax.sgd(lr), optax_l1.group_l1_prox(lam, lr, axis=axis)), params, grads
  )
  w = np.asarray(params, np.float64)
  group_size = w.size // w.shape[axis]
  for g, got in zip(grads, history, strict=True):
    w = np_block_soft(w - lr * np.asarray(g), lr * lam * np.sqrt(group_size), axis)
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
  for g, a, b in zip(grads, run(chained, params, grads), run(alias, params, grads), strict=True):
    w = np_block_soft(np_soft(w - lr * np.asarray(g), lr * l1), lr * lam * np.sqrt(8), -1)
    for got in (a, b):
      np.testing.assert_array_equal(np.asarray(got) == 0, w == 0)
      np.testing.assert_allclose(np.asarray(got), w, atol=1e-6)
  assert 0 < np.mean(w == 0) < 1 and np.any(np.all(w == 0, axis=0))


def np_adam_prox(params, grads, lr, prox, b1=0.9, b2=0.999, eps=1e-8):
  """Reference: Adam's step z = w − lr·m̂/d, then w = prox(z, d), in float64; yields (w, d)."""
  w = np.asarray(params, np.float64)
  m = np.zeros_like(w)
  v = np.zeros_like(w)
  for t, g in enumerate(grads, start=1):
    g = np.asarray(g, np.float64)
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    d = np.sqrt(v / (1 - b2**t)) + eps
    w = prox(w - lr * m / (1 - b1**t) / d, d)
    yield w, d


def test_adam_group_l1_uses_the_step_size_of_each_groups_mean_metric():
  params, grads = problem(seed=3, shape=(10, 6), steps=6, grad_scale=0.1)
  grads = [g.at[0].set(0.0) for g in grads]  # an input that never has a gradient: d = eps
  lr, lam = 0.05, 0.3

  def group_prox(z, d):
    mean_step = lr / np.mean(d, axis=0, keepdims=True)  # one step size per unit: mean metric
    return np_block_soft(z, mean_step * lam * np.sqrt(10), -1)

  history = run(optax_l1.adam(lr, group_l1=lam), params, grads)
  reference = list(np_adam_prox(params, grads, lr, group_prox))
  for got, (w, _) in zip(history, reference, strict=True):
    np.testing.assert_array_equal(np.asarray(got) == 0, w == 0)
    np.testing.assert_allclose(np.asarray(got), w, atol=1e-6)
  w, d = reference[-1]
  assert 0 < np.all(w == 0, axis=0).mean() < 1
  # The arithmetic mean of the step sizes would be dominated by the row with d = eps.
  assert np.mean(lr / d, axis=0).min() > 1e4 * (lr / np.mean(d, axis=0)).max()


def test_adam_l0_is_prox_gen_adam_l0():
  params, grads = problem(seed=4, steps=5, grad_scale=0.1)
  params = params * 0.05
  lr, l0 = 0.01, 0.05

  def hard_prox(z, d):
    return np.where(np.abs(z) > np.sqrt(2 * lr * l0 / d), z, 0)

  history = run(optax_l1.adam(lr, l0=l0), params, grads)
  for got, (w, _) in zip(history, np_adam_prox(params, grads, lr, hard_prox), strict=True):
    np.testing.assert_array_equal(np.asarray(got) == 0, w == 0)
    np.testing.assert_allclose(np.asarray(got), w, atol=1e-6)
  assert 0 < np.mean(w == 0) < 1


def test_l0_with_l1_is_rejected():
  with pytest.raises(ValueError, match="l0 cannot be combined with l1"):
    optax_l1.adam(1e-3, l1=1e-4, l0=1e-4)


@pytest.mark.parametrize("name", ["group_l1", "l0"])
def test_bad_numbers_rejected(name):
  with pytest.raises(ValueError, match=name):
    optax_l1.adam(1e-3, **{name: -1.0})
  with pytest.raises(ValueError, match=name):
    optax_l1.sgd(1e-3, l1=0.0, **{name: float("nan")})


def test_group_l1_prox_inject_hyperparams_schedule_and_mask():
  params = {
    "kernel": jnp.asarray(np.random.default_rng(5).normal(size=(4, 6)), jnp.float32),
    "bias": jnp.full((6,), 0.01),
  }
  grads = [jax.tree.map(jnp.zeros_like, params)] * 3
  lr = optax.linear_schedule(0.1, 0.3, 2)
  mask = {"kernel": True, "bias": False}
  plain = run(optax.chain(optax.sgd(lr), optax_l1.group_l1_prox(1.0, lr, mask=mask)), params, grads)
  injected = optax.inject_hyperparams(optax_l1.group_l1_prox, static_args=("axis", "mask"))
  inj = run(
    optax.chain(optax.sgd(lr), injected(l1=1.0, learning_rate=lr, mask=mask)), params, grads
  )
  w = np.asarray(params["kernel"], np.float64)
  for count, (a, b) in enumerate(zip(plain, inj, strict=True)):
    w = np_block_soft(w, float(lr(count)) * 1.0 * 2.0, -1)
    np.testing.assert_allclose(np.asarray(a["kernel"]), w, atol=1e-6)
    chex.assert_trees_all_close(a, b, atol=1e-7)
    np.testing.assert_array_equal(a["bias"], params["bias"])
  assert np.any(np.all(w == 0, axis=0))


def test_group_axis_out_of_range_names_the_axis():
  tx = optax_l1.adam(1e-3, group_l1=1.0, group_axis=3)
  params = jnp.ones((2, 2))
  with pytest.raises(ValueError, match="group axis 3 is out of range"):
    tx.update(params, tx.init(params), params)


def test_bf16_group_zeros_are_exact():
  params = jnp.asarray(np.random.default_rng(6).normal(size=(4, 6)) * 0.1, jnp.bfloat16)
  tx = optax.chain(optax.sgd(0.1), optax_l1.group_l1_prox(1.0, 0.1))
  (new,) = run(tx, params, [jnp.zeros_like(params)])
  assert new.dtype == jnp.bfloat16
  expected = np_block_soft(np.asarray(params, np.float32), 0.1 * 1.0 * 2.0, -1)
  np.testing.assert_array_equal(np.asarray(new, np.float32) == 0, expected == 0)
  assert 0 < np.mean(np.all(expected == 0, axis=0)) < 1


def test_keep_zeros_keeps_the_pattern_for_many_steps_while_others_move():
  params, grads = problem(seed=7, steps=50)
  (sparse,) = run(optax_l1.sgd(0.1, l1=8.0), params, grads[:1])
  zeros = np.asarray(sparse) == 0
  assert 0.2 < zeros.mean() < 0.9
  history = run(optax.chain(optax.adam(0.05), optax_l1.keep_zeros()), sparse, grads)
  final = np.asarray(history[-1])
  assert np.all(final[zeros] == 0)
  assert np.all(final[~zeros] != np.asarray(sparse)[~zeros])  # the rest trained


def test_keep_zeros_needs_params():
  tx = optax_l1.keep_zeros()
  with pytest.raises(ValueError, match="params"):
    tx.update(jnp.ones(2), tx.init(jnp.ones(2)))
