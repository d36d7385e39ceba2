"""A user-written preconditioner plugs into `optax_l1.proximal` (here: AdaBelief)."""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_l1


class BeliefState(NamedTuple):
  mu: optax.Updates
  nu: optax.Updates


def adabelief(b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16):
  """AdaBelief's step (Zhuang et al. 2020) written against the public Preconditioner protocol."""

  def init(params):
    return BeliefState(optax.tree.zeros_like(params), optax.tree.zeros_like(params))

  def update(grads, state, count):
    mu = jax.tree.map(lambda g, m: b1 * m + (1 - b1) * g, grads, state.mu)
    nu = jax.tree.map(
      lambda g, m, v: b2 * v + (1 - b2) * (g - m) ** 2 + eps_root, grads, mu, state.nu
    )
    c1, c2 = 1 - b1**count, 1 - b2**count
    scale = jax.tree.map(lambda v: 1 / (jnp.sqrt(v / c2) + eps), nu)
    direction = jax.tree.map(lambda m, s: m / c1 * s, mu, scale)
    return direction, scale, BeliefState(mu, nu)

  return optax_l1.preconditioners.Preconditioner(init, update)


def run(tx, params, grads):
  state = tx.init(params)
  step = jax.jit(tx.update)
  for g in grads:
    updates, state = step(g, state, params)
    params = optax.apply_updates(params, updates)
  return params


@pytest.fixture
def problem():
  rng = np.random.default_rng(0)
  params = {"w": jnp.asarray(rng.normal(size=(6, 5)), jnp.float32)}
  grads = [{"w": jnp.asarray(rng.normal(size=(6, 5)) * 0.1, jnp.float32)} for _ in range(6)]
  return params, grads


def test_custom_preconditioner_without_penalty_is_optax_adabelief(problem):
  params, grads = problem
  ours = run(optax_l1.proximal(adabelief(), 0.01), params, grads)
  theirs = run(optax.adabelief(0.01), params, grads)
  chex.assert_trees_all_close(ours, theirs, atol=1e-6, rtol=1e-5)


def test_custom_preconditioner_thresholds_in_its_own_metric(problem):
  params, grads = problem
  lr, l1, b1, b2, eps = 0.01, 0.5, 0.9, 0.999, 1e-16
  got = np.asarray(run(optax_l1.proximal(adabelief(), lr, l1=l1), params, grads)["w"])
  w = np.asarray(params["w"], np.float64)
  m = np.zeros_like(w)
  v = np.zeros_like(w)
  for t, g in enumerate(grads, start=1):
    g = np.asarray(g["w"], np.float64)
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * (g - m) ** 2 + 1e-16
    d = np.sqrt(v / (1 - b2**t)) + eps
    z = w - lr * m / (1 - b1**t) / d
    w = np.sign(z) * np.maximum(np.abs(z) - lr * l1 / d, 0)
  assert 0.1 < np.mean(w == 0) < 0.9
  np.testing.assert_array_equal(got == 0, w == 0)
  np.testing.assert_allclose(got, w, atol=1e-5)


def test_an_optax_optimizer_is_rejected_with_a_pointer_to_the_fix():
  with pytest.raises(TypeError, match=r"preconditioner must be an optax_l1\.preconditioners"):
    optax_l1.proximal(optax.adam(1e-3), 1e-3, l1=1e-4)  # type: ignore[arg-type]


@pytest.mark.parametrize(
  "make",
  [
    optax_l1.preconditioners.sgd,
    optax_l1.preconditioners.adam,
    optax_l1.preconditioners.rmsprop,
    optax_l1.preconditioners.adagrad,
  ],
)
def test_builtin_preconditioners_under_jit(make):
  params = {"w": jnp.array([0.5, -1e-4, 2.0])}
  preconditioner = make()
  state = preconditioner.init(params)
  direction, scale, state = jax.jit(preconditioner.update)(params, state, jnp.int32(1))
  chex.assert_trees_all_equal_shapes(direction, params)
  if scale is not None:
    assert np.all(np.asarray(scale["w"]) > 0)


def test_sgd_momentum_must_be_below_one():
  with pytest.raises(ValueError, match="momentum must be < 1"):
    optax_l1.preconditioners.sgd(momentum=1.0)
