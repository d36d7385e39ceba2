"""Tests of ``optax_l1.fista`` and ``optax_l1.fista_path``, the full-batch proximal solver.

References: scikit-learn's ``Lasso`` (with and without an intercept, and along a path),
``ElasticNet`` and ``MultiTaskLasso`` solutions, liblinear's L1 logistic regression, the
optimality conditions of the group lasso and of MCP (where its objective is convex), and
central finite differences for the implicit derivatives. Then the contract: vmap equals the
loop, paths with warm starts, pytrees and masks, the stopping and non-finite flags, dtypes,
jit, bad input. The solves share compilations (one per function, shapes and configuration),
so the tests reuse a few problems.
"""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression, MultiTaskLasso
from sklearn.preprocessing import StandardScaler

import optax_l1

import references
from x64_mode import enable_x64


def squared_error(w, x, y):
  return 0.5 * jnp.mean((y - x @ w) ** 2)


def logistic_loss(w, x, y):
  return jnp.mean(jnp.logaddexp(0.0, -y * (x @ w)))


@functools.cache
def diabetes():
  features, target = load_diabetes(return_X_y=True)
  return StandardScaler().fit_transform(features), target - target.mean()


@functools.cache
def breast_cancer():
  features, labels = load_breast_cancer(return_X_y=True)
  return StandardScaler().fit_transform(features), 2.0 * labels - 1


def correlated(n=60, p=12, seed=0):
  """A small regression problem with correlated features (AR(1), ρ = 0.7)."""
  rng = np.random.default_rng(seed)
  z = rng.standard_normal((n, p))
  x = np.empty((n, p))
  x[:, 0] = z[:, 0]
  for j in range(1, p):
    x[:, j] = 0.7 * x[:, j - 1] + np.sqrt(1 - 0.7**2) * z[:, j]
  w = np.where(np.arange(p) % 3 == 0, rng.standard_normal(p), 0.0)
  return x, x @ w + 0.1 * rng.standard_normal(n)


def sklearn_lasso(x, y, alpha, **kwargs):
  model = Lasso(alpha=alpha, tol=1e-14, max_iter=10**6, fit_intercept=False, **kwargs)
  return model.fit(x, y).coef_


# ----------------------------------------------------------------------------------------------
# Agreement with scikit-learn, liblinear and skglm (float64).
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.3, 3.0])
def test_lasso_matches_sklearn(alpha):
  x, y = diabetes()
  expected = sklearn_lasso(x, y, alpha)
  assert 0 < np.sum(expected == 0) < len(expected)  # a non-trivial support
  with enable_x64(True):
    w, info = optax_l1.fista(squared_error, jnp.zeros(10), x, y, l1=alpha, tol=1e-10)
  assert bool(info.converged) and not bool(info.nonfinite)
  np.testing.assert_array_equal(np.asarray(w) == 0, expected == 0)
  np.testing.assert_allclose(w, expected, atol=1e-6, rtol=0)
  np.testing.assert_allclose(
    info.value, 0.5 * np.mean((y - x @ expected) ** 2) + alpha * np.abs(expected).sum(), rtol=1e-12
  )


def test_elastic_net_matches_sklearn():
  # sklearn: 1/(2n)‖y − Xw‖² + αρ‖w‖₁ + α(1 − ρ)/2‖w‖², so l1 = αρ and l2 = α(1 − ρ).
  x, y = correlated()
  alpha, ratio = 0.05, 0.6
  model = ElasticNet(alpha=alpha, l1_ratio=ratio, fit_intercept=False, tol=1e-14, max_iter=10**6)
  expected = model.fit(x, y).coef_
  assert 0 < np.sum(expected == 0) < len(expected)
  with enable_x64(True):
    w, info = optax_l1.fista(
      squared_error, jnp.zeros(12), x, y, l1=alpha * ratio, l2=alpha * (1 - ratio), tol=1e-10
    )
  assert bool(info.converged)
  np.testing.assert_array_equal(np.asarray(w) == 0, expected == 0)
  np.testing.assert_allclose(w, expected, atol=1e-6, rtol=0)


def test_l1_logistic_regression_matches_liblinear_objective():
  # liblinear: ‖w‖₁ + C Σᵢ log(1 + exp(−yᵢxᵢw)) = nC·(mean log loss + ‖w‖₁/(nC)): C = 1/(nλ).
  x, y = breast_cancer()
  n, strength = len(y), 0.01
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # sklearn >= 1.8 deprecates penalty="l1"
    model = LogisticRegression(
      penalty="l1",
      solver="liblinear",
      C=1 / (n * strength),
      fit_intercept=False,
      tol=1e-12,
      random_state=0,
    )
    expected = model.fit(x, y).coef_.ravel()

  def objective(w):
    return np.mean(np.logaddexp(0, -y * (x @ w))) + strength * np.abs(w).sum()

  with enable_x64(True):
    w, info = optax_l1.fista(logistic_loss, jnp.zeros(30), x, y, l1=strength, tol=1e-9)
  assert bool(info.converged)
  assert 0 < np.sum(np.asarray(w) == 0) < 30
  assert abs(objective(np.asarray(w)) - objective(expected)) <= 1e-8
  assert abs(float(info.value) - objective(np.asarray(w))) <= 1e-12


def test_group_lasso_meets_its_kkt_conditions_and_matches_multitask_lasso():
  # Rows of the (features, tasks) kernel are the groups (group_axis=0): sklearn's
  # MultiTaskLasso, 1/(2n)‖Y − XW‖² + α Σⱼ‖Wⱼ‖₂, is group_l1 = α/√tasks (the √|G| weight).
  x, _ = correlated(n=80, p=12)
  rng = np.random.default_rng(1)
  truth = np.where(np.arange(12)[:, None] % 4 == 0, rng.standard_normal((12, 3)), 0.0)
  y = x @ truth + 0.1 * rng.standard_normal((80, 3))
  alpha = 0.05
  expected = MultiTaskLasso(alpha=alpha, fit_intercept=False, tol=1e-14, max_iter=10**6)
  expected = expected.fit(x, y).coef_.T

  def loss(w, x, y):
    return 0.5 * jnp.sum((y - x @ w) ** 2) / len(y)

  with enable_x64(True):
    w, info = optax_l1.fista(
      loss, jnp.zeros((12, 3)), x, y, group_l1=alpha / np.sqrt(3), group_axis=0, tol=1e-10
    )
    grad = jax.grad(loss)(w, x, y)
  assert bool(info.converged)
  zero_rows = np.all(np.asarray(w) == 0, axis=1)
  assert 0 < zero_rows.sum() < 12 and np.all((np.asarray(w) == 0) == zero_rows[:, None])
  assert references.group_lasso_kkt_violation(grad, w, alpha / np.sqrt(3), axis=0) <= 1e-6
  np.testing.assert_allclose(w, expected, atol=1e-6, rtol=0)


def test_group_axis_per_leaf_and_in_blocks_is_the_group_lasso_of_the_reshaped_problem():
  # Leaf "a" (6, 4) in blocks of 2 rows (GroupAxis(0, 2): 3 groups) and leaf "b" (4, 3) by
  # columns (axis -1): the same solution as "a" reshaped to (3, 8) and "b" transposed, one
  # group per row of each; and the group lasso's KKT conditions hold there.
  x, _ = correlated(n=60, p=36)
  rng = np.random.default_rng(3)
  truth = np.zeros(36)
  truth[:8] = rng.standard_normal(8)  # a's first block of rows
  truth[[24, 27, 30, 33]] = rng.standard_normal(4)  # b's first column
  y = x @ truth + 0.1 * rng.standard_normal(60)
  strength = 0.05

  def blocks(params):
    return jnp.concatenate([params["a"].reshape(-1), params["b"].reshape(-1)])

  def rows(params):
    return jnp.concatenate([params["a"].reshape(-1), params["b"].T.reshape(-1)])

  def loss(params, x, y, flatten):
    return 0.5 * jnp.mean((y - x @ flatten(params)) ** 2)

  layout = {"a": optax_l1.GroupAxis(0, size=2), "b": -1}
  with enable_x64(True):
    ours, info = optax_l1.fista(
      functools.partial(loss, flatten=blocks),
      {"a": jnp.zeros((6, 4)), "b": jnp.zeros((4, 3))},
      x,
      y,
      group_l1=strength,
      group_axis=layout,
      tol=1e-10,
    )
    reshaped = {"a": jnp.zeros((3, 8)), "b": jnp.zeros((3, 4))}
    expected, _ = optax_l1.fista(
      functools.partial(loss, flatten=rows),
      reshaped,
      x,
      y,
      group_l1=strength,
      group_axis=0,
      tol=1e-10,
    )
    grad = jax.grad(loss)(expected, x, y, rows)
  assert bool(info.converged)
  np.testing.assert_allclose(ours["a"].reshape(3, 8), expected["a"], atol=1e-7, rtol=0)
  np.testing.assert_allclose(ours["b"].T, expected["b"], atol=1e-7, rtol=0)
  # Whole blocks of rows of "a" and whole columns of "b" are zero, and only those.
  zero_blocks = np.all(np.asarray(ours["a"]).reshape(3, 8) == 0, axis=1)
  zero_columns = np.all(np.asarray(ours["b"]) == 0, axis=0)
  assert 0 < zero_blocks.sum() < 3 and 0 < zero_columns.sum() < 3
  a, b = np.asarray(ours["a"]).reshape(3, 8), np.asarray(ours["b"])
  assert np.array_equal(a == 0, np.broadcast_to(zero_blocks[:, None], a.shape))
  assert np.array_equal(b == 0, np.broadcast_to(zero_columns[None, :], b.shape))
  for name in ("a", "b"):
    assert references.group_lasso_kkt_violation(grad[name], expected[name], strength, 0) <= 1e-6
  with pytest.raises(ValueError, match=r"params\['a'\].*not a multiple of the group size 4"):
    optax_l1.fista(
      functools.partial(loss, flatten=blocks),
      {"a": jnp.zeros((6, 4)), "b": jnp.zeros((4, 3))},
      x,
      y,
      group_l1=strength,
      group_axis={"a": optax_l1.GroupAxis(0, size=4), "b": -1},
    )


def test_mcp_meets_its_optimality_conditions_where_the_problem_is_convex():
  # With λ_min(XᵀX/n) > 1/γ the MCP objective is convex, and its minimiser the one point where
  # gᵢ + sign(wᵢ)·max(λ − |wᵢ|/γ, 0) = 0 (wᵢ ≠ 0) and |gᵢ| <= λ (wᵢ = 0) (Zhang 2010).
  rng = np.random.default_rng(0)
  x = rng.standard_normal((400, 8))
  y = x @ np.array([2.0, -1.0, 0.5, 0, 0, 0, 0.05, 0]) + 0.1 * rng.standard_normal(400)
  lam, gamma = 0.1, 3.0
  assert np.linalg.eigvalsh(x.T @ x / 400).min() > 1 / gamma
  with enable_x64(True):
    w, info = optax_l1.fista(squared_error, jnp.zeros(8), x, y, mcp=lam, mcp_gamma=gamma, tol=1e-10)
    grad = np.asarray(jax.grad(squared_error)(w, x, y))
    value = float(info.value)
  w = np.asarray(w)
  assert bool(info.converged) and 0 < np.sum(w == 0) < 8
  on = w != 0
  slope = np.sign(w[on]) * np.maximum(lam - np.abs(w[on]) / gamma, 0)
  assert np.abs(grad[on] + slope).max() <= 1e-8
  assert np.all(np.abs(grad[~on]) <= lam)
  np.testing.assert_allclose(w[:3], [2.0, -1.0, 0.5], atol=0.05)  # large weights not shrunk
  expected_value = 0.5 * np.mean((y - x @ w) ** 2) + np.sum(references_mcp(w, lam, gamma))
  np.testing.assert_allclose(value, expected_value, rtol=1e-12)


def references_mcp(w, lam, gamma):
  """MCP's value per weight (Zhang 2010): λ|w| − w²/(2γ) up to γλ, γλ²/2 beyond."""
  t = np.abs(w)
  return np.where(t <= gamma * lam, lam * t - t * t / (2 * gamma), gamma * lam * lam / 2)


def test_pytree_params_with_a_mask_match_sklearn_with_an_intercept():
  # The intercept, left out of the penalty by the mask (or by a per-leaf strength of 0), is
  # sklearn's fit_intercept=True.
  x, y = diabetes()
  y = y + 150.0
  expected = Lasso(alpha=1.0, tol=1e-14, max_iter=10**6).fit(x, y)

  def loss(params, x, y):
    return 0.5 * jnp.mean((y - x @ params["w"] - params["b"]) ** 2)

  with enable_x64(True):
    start = {"b": jnp.zeros(()), "w": jnp.zeros(10)}
    masks = [{"b": False, "w": True}, lambda p: jax.tree.map(lambda v: v.ndim > 0, p)]
    fits = [optax_l1.fista(loss, start, x, y, l1=1.0, mask=mask, tol=1e-10) for mask in masks]
    fits.append(optax_l1.fista(loss, start, x, y, l1={"b": 0.0, "w": 1.0}, tol=1e-10))
  for params, info in fits:
    assert bool(info.converged)
    np.testing.assert_array_equal(np.asarray(params["w"]) == 0, expected.coef_ == 0)
    np.testing.assert_allclose(params["w"], expected.coef_, atol=1e-6, rtol=0)
    np.testing.assert_allclose(params["b"], expected.intercept_, atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------------------------
# float32 and float64.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtypes_are_kept_and_float32_reaches_the_lasso_solution(dtype):
  x, y = correlated()
  expected = sklearn_lasso(x, y, 0.02)
  tol = 1e-5 if dtype == "float32" else 1e-10  # float32: the default
  with enable_x64(dtype == "float64"):
    w, info = optax_l1.fista(
      squared_error,
      jnp.zeros(12, dtype),
      jnp.asarray(x, dtype),
      jnp.asarray(y, dtype),
      l1=0.02,
      tol=tol,
    )
  assert w.dtype == dtype and info.value.dtype == dtype and info.error.dtype == dtype
  assert bool(info.converged)
  np.testing.assert_array_equal(np.asarray(w) == 0, expected == 0)
  np.testing.assert_allclose(w, expected, atol=1e-4 if dtype == "float32" else 1e-6, rtol=0)


# ----------------------------------------------------------------------------------------------
# A regularisation path: vmap, fista_path, jit.
# ----------------------------------------------------------------------------------------------


def test_vmap_over_a_grid_of_strengths_equals_the_loop():
  x, y = diabetes()
  grid = jnp.array([5.0, 1.0, 0.3, 0.05])
  with enable_x64(True):

    def solve(l1):
      return optax_l1.fista(squared_error, jnp.zeros(10), x, y, l1=l1, tol=1e-10)

    batched, info = jax.jit(jax.vmap(solve))(grid)
    looped = [solve(l1)[0] for l1 in grid]
  assert info.iterations.shape == (4,) and np.all(np.asarray(info.converged))
  np.testing.assert_allclose(batched, np.stack(looped), atol=1e-9, rtol=0)
  assert len({int((np.asarray(w) == 0).sum()) for w in looped}) > 1  # supports differ


def test_fista_path_warm_starts_equal_independent_solves_and_sklearn():
  x, y = diabetes()
  alphas = np.array([10.0, 3.0, 1.0, 0.3])
  with enable_x64(True):
    path, info = optax_l1.fista_path(squared_error, jnp.zeros(10), x, y, l1=alphas, tol=1e-10)
    cold = [optax_l1.fista(squared_error, jnp.zeros(10), x, y, l1=a, tol=1e-10) for a in alphas]
  assert path.shape == (4, 10) and info.iterations.shape == (4,)
  assert np.all(np.asarray(info.converged))
  np.testing.assert_allclose(path, np.stack([w for w, _ in cold]), atol=1e-8, rtol=0)
  for w, alpha in zip(np.asarray(path), alphas, strict=True):
    np.testing.assert_allclose(w, sklearn_lasso(x, y, alpha), atol=1e-6, rtol=0)
  # Warm starts pay: fewer steps in all than from zeros each time.
  assert int(info.iterations.sum()) < sum(int(i.iterations) for _, i in cold)


def test_fista_path_with_a_fixed_strength_and_a_pytree_path():
  x, y = correlated()
  params = {"a": jnp.zeros(6), "b": jnp.zeros(6)}

  def loss(p, x, y):
    return squared_error(jnp.concatenate([p["a"], p["b"]]), x, y)

  strengths = {"l1": {"a": jnp.array([0.1, 0.01]), "b": 0.05}, "l2": 0.01}
  path, info = jax.jit(lambda x, y: optax_l1.fista_path(loss, params, x, y, **strengths))(x, y)
  assert path["a"].shape == path["b"].shape == (2, 6) and np.all(np.asarray(info.converged))
  last, _ = optax_l1.fista(loss, params, x, y, l1={"a": 0.01, "b": 0.05}, l2=0.01)
  np.testing.assert_allclose(path["a"][1], last["a"], atol=1e-4)
  np.testing.assert_allclose(path["b"][1], last["b"], atol=1e-4)


# ----------------------------------------------------------------------------------------------
# Implicit derivatives against central finite differences (float64, no support change).
# ----------------------------------------------------------------------------------------------


def _central_difference(fn, at, h):
  return (fn(at + h) - fn(at - h)) / (2 * h)


def _check_against_central_differences(fn, at, h=1e-6):
  """jax.grad of ``fn(*at)[0]`` (jitted, with aux ``(params, info)``) against central
  differences in each argument, where the shifted solves converge and keep their support."""
  value_and_grad = jax.jit(jax.value_and_grad(fn, argnums=tuple(range(len(at))), has_aux=True))
  (_, (w0, _)), grads = value_and_grad(*at)
  numeric = []
  for i in range(len(at)):
    values = []
    for shift in (h, -h):
      (value, (w, info)), _ = value_and_grad(*at[:i], at[i] + shift, *at[i + 1 :])
      assert bool(info.converged)
      for leaf, leaf0 in zip(jax.tree.leaves(w), jax.tree.leaves(w0), strict=True):
        np.testing.assert_array_equal(np.asarray(leaf) == 0, np.asarray(leaf0) == 0)
      values.append(float(value))
    numeric.append((values[0] - values[1]) / (2 * h))
  assert any(np.any(np.asarray(leaf) == 0) for leaf in jax.tree.leaves(w0))  # a support
  np.testing.assert_allclose(grads, numeric, rtol=1e-3)
  return grads


def test_derivatives_with_respect_to_strengths_and_data_match_finite_differences():
  # A validation loss of a sparse group lasso with an L2 term (groups: rows of a (12, 2)
  # kernel), as a function of l1, group_l1, l2 and the training targets along a direction.
  x, _ = correlated(n=80)
  rng = np.random.default_rng(1)
  y = x[:, :3] @ np.array([[1.0, 0.5], [0.0, -1.0], [0.3, 0.2]]) + 0.1 * rng.standard_normal(
    (80, 2)
  )
  x_val, y_val = x[:40] + 0.1, y[:40]
  direction = rng.standard_normal(y.shape)

  def loss(w, x, y):
    return 0.5 * jnp.mean(jnp.sum((y - x @ w) ** 2, axis=1))

  def validation(l1, group_l1, l2, t, start):
    w, info = optax_l1.fista(
      loss, start, x, y + t * direction, l1=l1, group_l1=group_l1, l2=l2, group_axis=0, tol=1e-12
    )
    return loss(w, x_val, y_val), (w, info)

  with enable_x64(True):
    start = jnp.zeros((12, 2))
    grads = _check_against_central_differences(
      lambda *v: validation(*v, start), (0.01, 0.02, 0.01, 0.0)
    )
    assert all(g != 0 for g in grads)
    # No derivative with respect to the start: the solution does not depend on it.
    zero = jax.grad(lambda s: validation(0.01, 0.02, 0.01, 0.0, s)[0])(jnp.ones((12, 2)))
  np.testing.assert_array_equal(zero, np.zeros((12, 2)))


def test_derivatives_of_a_logistic_regression_with_respect_to_the_data():
  # d/dt of a summary of the L1 logistic solution on the features x + t·direction, and on the
  # labels' weights y·(1 + t·e₃) (any real y is a valid argument of the loss).
  x, y = breast_cancer()
  x, y = x[:200, :8], y[:200]
  direction = np.random.default_rng(0).standard_normal(x.shape)
  e = np.zeros_like(y)
  e[3] = 1.0

  def summary(t, s):
    xt, yt = x + t * direction, y * (1 + s * e)
    w, info = optax_l1.fista(logistic_loss, jnp.zeros(8), xt, yt, l1=0.02, tol=1e-12)
    return jnp.sum(w * jnp.arange(1.0, 9.0)), (w, info)

  with enable_x64(True):
    _check_against_central_differences(summary, (0.0, 0.0))


# ----------------------------------------------------------------------------------------------
# Stopping: the budget, non-finite values, a fixed step, ISTA.
# ----------------------------------------------------------------------------------------------


def test_a_budget_too_small_reports_not_converged():
  x, y = diabetes()
  with enable_x64(True):
    w, info = optax_l1.fista(squared_error, jnp.zeros(10), x, y, l1=0.3, maxiter=3, tol=1e-8)
  assert int(info.iterations) == 3 and not bool(info.converged) and not bool(info.nonfinite)
  assert float(info.error) > 1e-8 and np.all(np.isfinite(w))


def test_a_nan_from_fun_stops_the_loop_with_the_flag():
  x, y = correlated()

  def poisoned(w, x, y):  # NaN once the first weight passes 0.1
    return squared_error(w, x, y) + jnp.where(w[0] > 0.1, jnp.nan, 0.0)

  w, info = optax_l1.fista(poisoned, jnp.zeros(12), x, y, l1=0.01, stepsize=0.1)
  assert bool(info.nonfinite) and not bool(info.converged)
  assert 0 < int(info.iterations) < 1000
  assert np.all(np.isfinite(w)) and float(w[0]) <= 0.1  # the last finite iterate
  # NaN in the data: the start is not finite, no step is taken.
  x_nan = x.copy()
  x_nan[0, 0] = np.nan
  w, info = optax_l1.fista(squared_error, jnp.ones(12), x_nan, y, l1=0.01)
  assert bool(info.nonfinite) and int(info.iterations) == 0
  np.testing.assert_array_equal(w, np.ones(12))


def test_a_line_search_that_finds_no_finite_value_stops_with_the_flag():
  x, y = correlated()

  def nowhere_finite(w, x, y):  # finite only at the start
    return squared_error(w, x, y) + jnp.where(jnp.any(w != 0), jnp.inf, 0.0)

  w, info = optax_l1.fista(nowhere_finite, jnp.zeros(12), x, y, l1=1e-4, maxls=5)
  assert bool(info.nonfinite) and int(info.iterations) == 1
  np.testing.assert_array_equal(w, np.zeros(12))


@pytest.mark.parametrize("acceleration", [True, False])
def test_a_fixed_step_and_ista_reach_the_same_solution(acceleration):
  x, y = correlated()
  lipschitz = np.linalg.eigvalsh(x.T @ x / len(y)).max()
  with enable_x64(True):
    w, info = optax_l1.fista(
      squared_error,
      jnp.zeros(12),
      x,
      y,
      l1=0.02,
      stepsize=1 / lipschitz,
      acceleration=acceleration,
      tol=1e-9,
      maxiter=20_000,
    )
  assert bool(info.converged) and float(info.stepsize) == pytest.approx(1 / lipschitz)
  # A fixed step calls fun once a step (value and gradient together), plus the start.
  assert int(info.evaluations) == int(info.iterations) + 1
  np.testing.assert_allclose(w, sklearn_lasso(x, y, 0.02), atol=1e-6, rtol=0)


def test_restart_takes_fewer_steps_on_an_ill_conditioned_problem():
  x, y = diabetes()
  with enable_x64(True):
    steps = {
      restart: optax_l1.fista(squared_error, jnp.zeros(10), x, y, l1=0.3, restart=restart)[1]
      for restart in (True, False)
    }
  assert bool(steps[True].converged) and bool(steps[False].converged)
  assert int(steps[True].iterations) < int(steps[False].iterations)


# ----------------------------------------------------------------------------------------------
# Bad input: clear errors at the call, naming the argument.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
  ("kwargs", "error", "match"),
  [
    ({"l1": -0.1}, ValueError, "l1 must be a finite number >= 0"),
    ({"l2": float("inf")}, ValueError, "l2 must be a finite number >= 0"),
    ({"group_l1": float("nan")}, ValueError, "group_l1 must be a finite number >= 0"),
    ({"l1": {"w": -1.0}}, ValueError, r"l1\['w'\] must be a finite number >= 0"),
    ({"l1": lambda count: 0.1}, TypeError, "l1 must be a number or a scalar array"),
    ({"l0": 0.1, "l1": 0.1}, ValueError, "l0 cannot be combined with l1"),
    ({"stepsize": 0.0}, ValueError, "stepsize must be a finite number > 0"),
    ({"stepsize": -1.0}, ValueError, "stepsize must be a finite number > 0"),
    ({"maxiter": 0}, ValueError, "maxiter must be an int >= 1"),
    ({"maxiter": 10.0}, TypeError, "maxiter must be an int >= 1"),
    ({"maxls": 0}, ValueError, "maxls must be an int >= 1"),
    ({"tol": -1e-3}, ValueError, "tol must be a finite number >= 0"),
    ({"mask": {"v": True}}, ValueError, "mask must have the structure of the params"),
    ({"group_l1": 0.1, "group_axis": 1.5}, TypeError, "group_axis must be a Python int"),
  ],
)
def test_bad_arguments_raise_at_the_call(kwargs, error, match):
  with pytest.raises(error, match=match):
    optax_l1.fista(lambda p: jnp.sum(p["w"] ** 2), {"w": jnp.ones(3)}, **kwargs)


def test_fun_that_does_not_return_a_scalar_raises():
  with pytest.raises(
    TypeError, match=r"fun must return a real floating-point scalar.*float32\[3\]"
  ):
    optax_l1.fista(lambda w: w**2, jnp.ones(3), l1=0.1)
  with pytest.raises(TypeError, match="fun must return a real floating-point scalar"):
    optax_l1.fista(lambda w: (jnp.sum(w), w), jnp.ones(3), l1=0.1)
  with pytest.raises(TypeError, match="fun must be a function"):
    optax_l1.fista("loss", jnp.ones(3))


@pytest.mark.parametrize("start", [jnp.arange(3), {"w": jnp.ones(3), "n": 3}, jnp.ones(3, bool)])
def test_params_that_are_not_float_raise(start):
  with pytest.raises(TypeError, match="init_params must be real floating-point arrays"):
    optax_l1.fista(lambda p: 0.0 * jnp.sum(jnp.asarray(jax.tree.leaves(p)[0], float)), start)


@pytest.mark.parametrize(
  ("kwargs", "match"),
  [
    ({"l1": 0.1}, "needs at least one strength given as a 1-D array"),
    ({"l1": jnp.ones((2, 2))}, r"l1 has shape \(2, 2\): a path of strengths is a 1-D array"),
    ({"l1": jnp.ones(2), "l2": jnp.ones(3)}, "must have one length"),
    ({"l1": jnp.array([0.1, -0.1])}, r"l1\[1\] must be a finite number >= 0"),
  ],
)
def test_bad_paths_raise(kwargs, match):
  with pytest.raises(ValueError, match=match):
    optax_l1.fista_path(lambda w: jnp.sum(w**2), jnp.ones(3), **kwargs)
