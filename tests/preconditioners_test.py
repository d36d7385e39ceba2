"""Tests of the built-in preconditioners (``optax_l1.preconditioners``): under jit; bad input.

What a preconditioner does inside an optimizer is tested through the optimizers that use them
(alias_test.py), and a user-written one through ``proximal`` (proximal_test.py).
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_l1
from optax_l1 import preconditioners


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


# ----------------------------------------------------------------------------------------------
# Bad input.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
  ("make", "arg"),
  [
    (lambda: preconditioners.adam(b1=1.0), "b1"),
    (lambda: preconditioners.sgd(momentum=2.0), "momentum"),
  ],
  ids=["precond_adam-b1=1", "precond_sgd-momentum=2"],
)
def test_decay_rate_at_or_above_one_raises(make, arg):
  with pytest.raises(ValueError, match=rf"^{arg} must be < 1"):
    make()


def test_sgd_nesterov_without_momentum_raises():
  # preconditioners.sgd raises, for the alias too.
  with pytest.raises(ValueError, match="momentum"):
    optax_l1.sgd(0.1, l1=0.1, nesterov=True)
  with pytest.raises(ValueError, match="momentum"):
    preconditioners.sgd(nesterov=True)


# Regressions of the first-hour defects (x64, complex, masks, injection, Rngs, untouched rows,
# momentum, errors).


@pytest.mark.parametrize(
  "make",
  [
    lambda: optax_l1.adam(1e-3, l1=1e-5),
    lambda: optax_l1.adamw(1e-3, l1=1e-5),
    lambda: optax_l1.adam(1e-3, l1=1e-5, nesterov=True),
    lambda: optax_l1.rmsprop(1e-3, l1=1e-5, eps_in_sqrt=False),
    lambda: optax_l1.rmsprop(1e-3, l1=1e-5),
    lambda: optax_l1.adagrad(1e-3, l1=1e-5),
  ],
  ids=["adam", "adamw", "nadam", "rmsprop_eps_outside", "rmsprop", "adagrad"],
)
def test_embedding_rows_without_a_gradient_survive_the_first_step(make):
  table = jax.random.normal(jax.random.key(0), (100, 16))  # an embedding table
  tokens = jnp.arange(10)  # the first batch touches rows 0-9 only
  grads = jax.grad(lambda t: jnp.sum(t[tokens] ** 2))(table)
  tx = make()
  updates, _ = tx.update(grads, tx.init(table), table)
  before, after = np.asarray(table), np.asarray(optax.apply_updates(table, updates))
  assert not np.any(after[10:] == 0)
  # They shrink by at most lr·λ/d0 with d0 = sqrt(eps) (1e-4): 1e-4 here.
  assert np.max(np.abs(before[10:] - after[10:])) <= 1e-4 + 1e-6  # + float32 rounding


def test_a_weight_that_never_has_a_gradient_shrinks_at_lr_l1_over_sqrt_eps():
  params = jnp.array([0.5, -0.5])
  tx = optax_l1.adam(1e-3, l1=1e-3)
  state = tx.init(params)
  for _ in range(3):
    updates, state = tx.update(jnp.zeros(2), state, params)
    params = optax.apply_updates(params, updates)
  np.testing.assert_allclose(params, [0.5 - 3 * 1e-2, -0.5 + 3 * 1e-2], rtol=1e-5)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_threshold_warms_up_from_the_plain_threshold(nesterov):
  kernel = jax.random.normal(jax.random.key(0), (256, 256)) * 0.05
  grads = jax.random.normal(jax.random.key(1), (256, 256)) * 0.01
  zeros = {}
  for momentum in (None, 0.99):
    tx = optax_l1.sgd(0.05, l1=1e-2, momentum=momentum, nesterov=nesterov and bool(momentum))
    updates, _ = tx.update(grads, tx.init(kernel), kernel)
    zeros[momentum] = float(jnp.mean(optax.apply_updates(kernel, updates) == 0))
  # Step 1: threshold lr·λ (× (1 + β) with Nesterov, whose direction is (1 + β) g).
  if nesterov:
    assert zeros[0.99] < 2.5 * zeros[None] + 0.01
  else:
    assert zeros[0.99] == zeros[None]


def test_momentum_scale_is_one_minus_beta_to_the_k_over_one_minus_beta():
  precondition = optax_l1.preconditioners.sgd(0.9)
  grads = jnp.ones(3)
  state = precondition.init(grads)
  for k in range(1, 6):
    direction, scale, state = precondition.update(grads, state, jnp.int32(k))
    np.testing.assert_allclose(scale, (1 - 0.9**k) / (1 - 0.9), rtol=1e-6)
    np.testing.assert_allclose(direction, (1 - 0.9**k) / (1 - 0.9), rtol=1e-6)  # the trace
