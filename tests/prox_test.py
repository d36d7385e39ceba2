"""Tests of the pure proximal operators against closed forms and brute-force argmins."""

import chex
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import optax_l1

soft_threshold = jax.jit(optax_l1.soft_threshold)
prox_elastic_net = jax.jit(optax_l1.prox_elastic_net)

# XLA flushes subnormals to zero on CPU, so they are outside what the operators promise.
finite = st.floats(-10, 10, allow_nan=False, allow_subnormal=False, width=32)
thresholds = st.floats(0, 5, allow_nan=False, allow_subnormal=False, width=32)
vectors = hnp.arrays(np.float32, st.integers(1, 16), elements=finite)


@given(x=vectors, t=thresholds)
def test_soft_threshold_properties(x, t):
  out = np.asarray(soft_threshold(jnp.asarray(x), t))
  assert np.all(np.abs(out) <= np.abs(x))
  assert np.all((out == 0) | (np.sign(out) == np.sign(x)))
  np.testing.assert_array_equal(out == 0, np.abs(x) <= np.float32(t))
  np.testing.assert_allclose(out, np.sign(x) * np.maximum(np.abs(x) - np.float32(t), 0), atol=1e-6)


def _with_thresholds(n):
  return st.tuples(
    hnp.arrays(np.float32, n, elements=finite), hnp.arrays(np.float32, n, elements=thresholds)
  )


@given(x_and_t=st.integers(1, 16).flatmap(_with_thresholds))
def test_soft_threshold_with_a_threshold_per_entry(x_and_t):
  # Adaptive optimizers threshold each coordinate by its own lr·l1/d_i.
  x, t = x_and_t
  out = np.asarray(soft_threshold(jnp.asarray(x), jnp.asarray(t)))
  np.testing.assert_array_equal(out == 0, np.abs(x) <= t)
  np.testing.assert_allclose(out, np.sign(x) * np.maximum(np.abs(x) - t, 0), atol=1e-6)


@given(x=vectors, y=vectors, t=thresholds)
def test_soft_threshold_is_non_expansive(x, y, t):
  n = min(len(x), len(y))
  x, y = x[:n], y[:n]
  px = np.asarray(soft_threshold(jnp.asarray(x), t), np.float64)
  py = np.asarray(soft_threshold(jnp.asarray(y), t), np.float64)
  diff = np.linalg.norm(x.astype(np.float64) - y)
  assert np.linalg.norm(px - py) <= diff * (1 + 1e-6) + 1e-6


@given(x=finite, l1=thresholds, l2=st.floats(0, 3, width=32), s=st.floats(0.0625, 2, width=32))
def test_elastic_net_is_the_argmin_of_its_objective(x, l1, l2, s):
  grid = np.linspace(-12, 12, 480_001)  # spacing 5e-5
  objective = 0.5 * (x - grid) ** 2 + s * (l1 * np.abs(grid) + 0.5 * l2 * grid**2)
  best = grid[np.argmin(objective)]
  out = float(prox_elastic_net(jnp.float32(x), l1, l2, s))
  assert abs(out - best) <= 1e-4


@given(x=finite, t=thresholds)
def test_soft_threshold_is_the_argmin_of_its_objective(x, t):
  grid = np.linspace(-12, 12, 480_001)
  best = grid[np.argmin(0.5 * (x - grid) ** 2 + t * np.abs(grid))]
  assert abs(float(soft_threshold(jnp.float32(x), t)) - best) <= 1e-4


def test_removed_entries_are_positive_zero():
  out = soft_threshold(jnp.array([-0.5, 0.5, -3.0]), 1.0)
  np.testing.assert_array_equal(np.signbit(np.asarray(out)), [False, False, True])


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_low_precision_lands_on_exact_zeros_and_keeps_dtype(dtype):
  x = jnp.array([0.1, -0.1, 0.3, -2.0], dtype)
  out = soft_threshold(x, 0.11)
  assert out.dtype == dtype
  np.testing.assert_array_equal(np.asarray(out, np.float32)[:2], [0.0, 0.0])
  np.testing.assert_allclose(np.asarray(out, np.float32)[2:], [0.19, -1.89], atol=1e-2)


def test_float64():
  with jax.enable_x64(True):
    x = jnp.array([1e-12, 1.0 + 1e-12], jnp.float64)
    out = optax_l1.soft_threshold(x, 1.0)
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(out), [0.0, 1e-12], atol=1e-20, rtol=1e-4)


def test_pytree_with_scalar_array_and_tree_thresholds():
  x = {"a": jnp.array([1.0, -2.0, 3.0]), "b": (jnp.array([[0.5, -0.5]]),)}
  chex.assert_trees_all_close(
    soft_threshold(x, 1.0),
    {"a": jnp.array([0.0, -1.0, 2.0]), "b": (jnp.array([[0.0, 0.0]]),)},
    atol=0,
  )
  per_leaf = {"a": 2.5, "b": (jnp.array([0.25, 1.0]),)}  # the second broadcasts per column
  chex.assert_trees_all_close(
    soft_threshold(x, per_leaf),
    {"a": jnp.array([0.0, 0.0, 0.5]), "b": (jnp.array([[0.25, 0.0]]),)},
    atol=0,
  )


def test_threshold_tree_that_does_not_match_raises():
  x = {"a": jnp.ones(2), "b": jnp.ones(2)}
  with pytest.raises(ValueError, match="threshold must have the structure of the params"):
    optax_l1.soft_threshold(x, {"a": 1.0, "c": 1.0})


def test_integer_and_bool_leaves_are_untouched():
  x = {"i": jnp.array([1, -5, 0]), "b": jnp.array([True, False]), "f": jnp.array([0.5])}
  out = soft_threshold(x, 1.0)
  assert out["i"].dtype == x["i"].dtype and out["b"].dtype == jnp.bool_
  np.testing.assert_array_equal(out["i"], x["i"])
  np.testing.assert_array_equal(out["b"], x["b"])
  np.testing.assert_array_equal(out["f"], [0.0])


def test_elastic_net_closed_form():
  x = jnp.array([-3.0, -0.4, 0.0, 0.4, 3.0])
  out = prox_elastic_net(x, 0.5, 2.0, 0.5)
  expected = np.sign(x) * np.maximum(np.abs(x) - 0.25, 0) / (1 + 1.0)
  chex.assert_trees_all_close(out, jnp.asarray(expected), atol=1e-7)


def test_operators_are_differentiable():
  grad = jax.grad(lambda x: jnp.sum(optax_l1.soft_threshold(x, 1.0) ** 2))(jnp.array([0.5, 2.0]))
  chex.assert_trees_all_close(grad, jnp.array([0.0, 2.0]), atol=1e-7)


def test_nan_stays_nan():
  out = np.asarray(soft_threshold(jnp.array([jnp.nan, 0.5, jnp.inf]), 1.0))
  assert np.isnan(out[0]) and out[1] == 0.0 and out[2] == np.inf


def test_nan_threshold_gives_nan_rather_than_zeros():
  # A NaN l1 injected by inject_hyperparams must not silently zero the weights: NaN updates
  # are what optax.apply_if_finite detects.
  x = jnp.array([0.0, 0.5, -3.0])
  for t in (jnp.float32(jnp.nan), jnp.array([1.0, jnp.nan, 1.0])):
    out = np.asarray(soft_threshold(x, t))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(np.broadcast_to(t, x.shape)))


def test_negative_threshold_does_what_the_docstring_says():
  # Not validated when traced; documented: a threshold of −c adds c to every entry.
  out = jax.jit(optax_l1.soft_threshold)(jnp.array([-2.0, 0.0, 0.1, 2.0]), jnp.float32(-0.5))
  np.testing.assert_array_equal(out, np.float32([-1.5, 0.5, 0.6, 2.5]))
