"""Tests of the digits example: the data split, the mask, and the trained sparsity."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import optax_l1
from optax_l1.examples import digits

L1 = 1e-3
SEED = 0


def test_load_digits_split_shapes_and_standardisation():
  x_train, y_train, x_test, y_test = digits.load_digits_split(seed=SEED, test_fraction=0.3)
  assert x_train.shape == (1257, 64) and x_test.shape == (540, 64)
  assert x_train.dtype == x_test.dtype == np.float32
  assert y_train.shape == (1257,) and y_test.shape == (540,)
  assert set(np.unique(y_train)) == set(np.unique(y_test)) == set(range(10))
  # The scaler is fitted on the training images: zero mean, unit variance there (pixels that
  # are constant in the training set stay at 0), but not exactly on the test images.
  np.testing.assert_allclose(x_train.mean(axis=0), 0.0, atol=1e-5)
  std = x_train.std(axis=0)
  assert np.all((np.abs(std - 1) < 1e-4) | (std == 0)) and np.sum(std == 0) < 5
  assert not np.allclose(x_test.mean(axis=0), 0.0, atol=1e-3)
  # Stratified: each class is ~30 % held out.
  np.testing.assert_allclose(np.bincount(y_test) / np.bincount(y_train), 3 / 7, atol=0.03)


def test_kernel_mask_selects_weight_matrices():
  model = digits.MLP(8, rngs=nnx.Rngs(0))
  params = nnx.state(model, nnx.Param)
  mask = digits.kernel_mask(params)
  assert jax.tree.leaves(mask) == [False, True, False, True]  # bias, kernel per layer
  assert all(type(leaf) is bool for leaf in jax.tree.leaves(mask))
  assert jax.tree.leaves(digits.kernel_mask(nnx.as_pure(params))) == jax.tree.leaves(mask)

  # As a mask of optax_l1.adam, a huge l1 zeroes the kernels and leaves the biases alone.
  optimizer = nnx.Optimizer(
    model, optax_l1.adam(0.1, l1=1e3, mask=digits.kernel_mask), wrt=nnx.Param
  )
  model.linear1.bias[...] = jnp.full((8,), 0.5)

  @nnx.jit
  def step(model, optimizer, x, y):
    optimizer.update(model, nnx.grad(digits.loss_fn)(model, x, y))

  step(model, optimizer, jnp.ones((4, 64)), jnp.arange(4))
  assert jnp.all(model.linear1.kernel[...] == 0) and jnp.all(model.linear2.kernel[...] == 0)
  assert jnp.all(model.linear1.bias[...] != 0)


def test_make_optimizer_rejects_unknown_method():
  with pytest.raises(ValueError, match="method must be one of"):
    digits.make_optimizer("lasso", L1, 1e-3)


def test_train_logs_history_without_changing_the_run():
  result = digits.train("prox", steps=20, hidden=16, log_every=10)
  assert [step for step, _ in result.history] == [0, 10, 20]
  assert result.history[-1][1] == result.exact_zero_fraction
  assert result.nonzero_params == round((1 - result.exact_zero_fraction) * (64 * 16 + 16 * 10))
  unlogged = digits.train("prox", steps=20, hidden=16)
  assert unlogged.history == []
  jax.tree.map(np.testing.assert_array_equal, result.params, unlogged.params)


@pytest.fixture(scope="module")
def trained():
  """The 3000-step runs of benchmarks/sparsity_accuracy.py at λ = 1e-3, trained once."""
  return {method: digits.train(method, l1=L1, seed=SEED) for method in ("prox", "penalty", "naive")}


@pytest.mark.slow
def test_prox_adam_is_sparse_and_accurate(trained):
  result = trained["prox"]
  assert result.exact_zero_fraction >= 0.90, result
  assert result.test_accuracy >= 0.96, result


@pytest.mark.slow
def test_penalty_in_the_loss_gives_no_exact_zeros(trained):
  result = trained["penalty"]
  assert result.exact_zero_fraction < 0.01, result
  # ... though it does make most kernel entries small.
  assert result.small_fraction > 0.5, result


@pytest.mark.slow
def test_adam_chained_with_l1_prox_under_thresholds(trained):
  naive, prox = trained["naive"], trained["prox"]
  assert naive.exact_zero_fraction < 0.1 * prox.exact_zero_fraction, (naive, prox)


@pytest.mark.slow
def test_target_method_reaches_the_sparsity_asked_for():
  result = digits.train("target", steps=600, target_sparsity=0.9, seed=SEED)
  assert abs(result.exact_zero_fraction - 0.9) <= 1 / 18_944 + 1e-9, result
  assert result.l1 == 0.0 and result.test_accuracy >= 0.93, result
