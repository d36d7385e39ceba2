"""Tests of the Linen digits example (optax_l1/examples/linen_digits.py): exact zeros in a
``TrainState`` step, in bfloat16, and a sparse, accurate trained model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optax_l1.examples import digits, linen_digits


def test_linen_train_step_gives_exact_zeros_and_keeps_bfloat16():
  dtype = jnp.bfloat16  # float32 is the slow test's
  data = digits.load_digits_split()
  x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
  state = linen_digits.create_train_state(jax.random.key(0), hidden=16, l1=1e-2, param_dtype=dtype)
  # (bfloat16's initialisation rounds a few entries to 0.)
  initial_zeros = linen_digits.kernel_zero_fraction(state.params)
  losses = []
  for key in jax.random.split(jax.random.key(1), 10):
    state, loss = linen_digits.train_step(state, key, x, y)
    losses.append(float(loss))
  assert int(state.step) == 10 and np.all(np.isfinite(losses))
  assert all(leaf.dtype == dtype for leaf in jax.tree.leaves(state.params))
  assert initial_zeros + 0.05 < linen_digits.kernel_zero_fraction(state.params) < 1.0
  # The output bias (whose gradient is never 0) is not thresholded, though it started at 0.
  assert jnp.all(state.params["Dense_1"]["bias"] != 0)
  assert losses[-1] < losses[0]


@pytest.mark.slow
def test_linen_train_is_sparse_and_accurate():
  result = linen_digits.train(steps=1000, hidden=64)  # 98.5 % accurate, 55 % zeros
  assert result.exact_zero_fraction > 0.4 and result.test_accuracy > 0.95, result[:2]
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(result.state.params))
  assert int(result.state.step) == 1000
