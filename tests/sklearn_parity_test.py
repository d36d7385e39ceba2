"""Full-batch proximal SGD reaches scikit-learn's Lasso solution on the diabetes data."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.datasets import load_diabetes
from sklearn.linear_model import ElasticNet, Lasso
from sklearn.preprocessing import StandardScaler

import optax_l1

from x64_mode import enable_x64

STEPS = 20_000


@pytest.fixture(scope="module")
def diabetes():
  features, target = load_diabetes(return_X_y=True)
  features = StandardScaler().fit_transform(features)
  target = target - target.mean()
  lipschitz = np.linalg.eigvalsh(features.T @ features / len(target)).max()
  return features, target, 1.0 / lipschitz


def fit(tx, features, target, dtype):
  """Minimises 1/(2n)·‖y − Xw‖² (+ the transformation's penalty) with full-batch steps."""
  x, y = jnp.asarray(features, dtype), jnp.asarray(target, dtype)

  def loss(w):
    return 0.5 * jnp.mean((y - x @ w) ** 2)

  @jax.jit
  def run(w):
    def body(_, carry):
      w, state = carry
      updates, state = tx.update(jax.grad(loss)(w), state, w)
      return optax.apply_updates(w, updates), state

    return jax.lax.fori_loop(0, STEPS, body, (w, tx.init(w)))[0]

  return np.asarray(run(jnp.zeros(x.shape[1], dtype)))


def sklearn_lasso(features, target, alpha):
  model = Lasso(alpha=alpha, fit_intercept=False, tol=1e-14, max_iter=1_000_000)
  return model.fit(features, target).coef_


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.5, 1.0, 5.0])
def test_float64_matches_sklearn_lasso(diabetes, alpha):
  features, target, lr = diabetes
  expected = sklearn_lasso(features, target, alpha)
  assert 0 < np.sum(expected == 0) < len(expected)  # a non-trivial support
  with enable_x64(True):
    coef = fit(optax_l1.sgd(lr, l1=alpha), features, target, jnp.float64)
  np.testing.assert_array_equal(coef == 0, expected == 0)
  np.testing.assert_allclose(coef, expected, atol=1e-9, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.5, 1.0, 5.0])
def test_float32_has_the_same_support(diabetes, alpha):
  features, target, lr = diabetes
  expected = sklearn_lasso(features, target, alpha)
  coef = fit(optax_l1.sgd(lr, l1=alpha), features, target, jnp.float32)
  np.testing.assert_array_equal(coef == 0, expected == 0)
  np.testing.assert_allclose(coef, expected, atol=1e-3, rtol=0)


@pytest.mark.slow
def test_momentum_and_nesterov_reach_the_same_solution(diabetes):
  features, target, lr = diabetes
  expected = sklearn_lasso(features, target, 1.0)
  with enable_x64(True):
    for nesterov in (False, True):
      tx = optax_l1.sgd(lr / 2, l1=1.0, momentum=0.5, nesterov=nesterov)
      coef = fit(tx, features, target, jnp.float64)
      np.testing.assert_array_equal(coef == 0, expected == 0)
      np.testing.assert_allclose(coef, expected, atol=1e-9, rtol=0)


@pytest.mark.slow
def test_elastic_net_matches_sklearn(diabetes):
  # sklearn: 1/(2n)‖y − Xw‖² + α·ρ‖w‖₁ + α(1 − ρ)/2·‖w‖², so l1 = αρ and l2 = α(1 − ρ).
  features, target, lr = diabetes
  alpha, ratio = 2.0, 0.7
  model = ElasticNet(alpha=alpha, l1_ratio=ratio, fit_intercept=False, tol=1e-14, max_iter=10**6)
  expected = model.fit(features, target).coef_
  assert np.any(expected == 0)
  with enable_x64(True):
    tx = optax_l1.sgd(lr, l1=alpha * ratio, l2=alpha * (1 - ratio))
    coef = fit(tx, features, target, jnp.float64)
  np.testing.assert_array_equal(coef == 0, expected == 0)
  np.testing.assert_allclose(coef, expected, atol=1e-9, rtol=0)
