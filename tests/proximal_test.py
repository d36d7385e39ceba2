"""Tests of ``optax_l1.proximal``: any ``Preconditioner`` plugs in (here a user-written AdaBelief),
and what is not one is rejected; then its bad input.

``proximal`` with the built-in preconditioners is also in alias_test.py's tables, beside the
alias it spells out (``proximal(preconditioners.adam())`` is ``optax_l1.adam``).
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_l1
from optax_l1 import preconditioners

import references

# ----------------------------------------------------------------------------------------------
# A user-written preconditioner (AdaBelief) plugs in; an optax optimizer does not.
# ----------------------------------------------------------------------------------------------


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
  reference = references.adabelief(lr, l1, b1=b1, b2=b2, eps=eps, eps_root=1e-16)
  w = references.run(reference, params, grads)[-1]["w"]
  assert 0.1 < np.mean(w == 0) < 0.9
  np.testing.assert_array_equal(got == 0, w == 0)
  np.testing.assert_allclose(got, w, atol=1e-5)


def test_an_optax_optimizer_is_rejected_with_a_pointer_to_the_fix():
  with pytest.raises(TypeError, match=r"preconditioner must be an optax_l1\.preconditioners"):
    optax_l1.proximal(optax.adam(1e-3), 1e-3, l1=1e-4)  # type: ignore[arg-type]


@pytest.mark.parametrize(
  "preconditioner",
  [
    optax.sgd(0.1),
    optax.chain(optax.scale_by_adam(), optax.scale(-0.1)),
    optax.scale_by_rms(),
    preconditioners.adam,  # the factory, not called
    tuple(preconditioners.adam()),  # the right functions, not in a Preconditioner
  ],
  ids=["optax.sgd", "optax.chain", "optax.scale_by_rms", "uncalled_factory", "plain_tuple"],
)
def test_proximal_rejects_what_is_not_a_preconditioner(preconditioner):
  with pytest.raises(TypeError, match=r"^preconditioner must be an optax_l1\.preconditioners"):
    optax_l1.proximal(preconditioner, 0.1, l1=0.1)


# ----------------------------------------------------------------------------------------------
# Bad input.
# ----------------------------------------------------------------------------------------------


NAN, INF = float("nan"), float("inf")
BAD_NUMBERS = [-1.0, NAN, INF]
SHAPES = {"w": (7, 5), "b": (5,)}


# proximal(preconditioners.adam()), with valid defaults a test overrides.
CONSTRUCTORS = {
  "proximal": (
    lambda **kw: optax_l1.proximal(
      preconditioners.adam(), **{"learning_rate": 0.1, "l1": 0.1, **kw}
    ),
    ["learning_rate", "l1", "l2", "weight_decay"],
  ),
}
BAD_HYPERPARAMETERS = [
  pytest.param(name, arg, value, id=f"{name}-{arg}-{value}")
  for name, (_, args) in sorted(CONSTRUCTORS.items())
  for arg in args
  for value in (-1.0, float("nan"), float("inf"))
]


def _problem(seed=0, num_steps=1):
  """As alias_test.py's: params ~ N(0, 0.1²) of shapes SHAPES and gradients ~ N(0, 1)."""
  rng = np.random.default_rng(seed)
  params = {k: jnp.asarray(0.1 * rng.standard_normal(s), np.float32) for k, s in SHAPES.items()}
  grads = [
    {k: jnp.asarray(rng.standard_normal(s), np.float32) for k, s in SHAPES.items()}
    for _ in range(num_steps)
  ]
  return params, grads


@pytest.mark.parametrize(("name", "arg", "value"), BAD_HYPERPARAMETERS)
def test_bad_hyperparameter_raises_at_construction(name, arg, value):
  make, _ = CONSTRUCTORS[name]
  with pytest.raises(ValueError, match=rf"\b{arg}\b"):
    make(**{arg: value})


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_update_without_params_raises(name):
  make, _ = CONSTRUCTORS[name]
  tx = make()
  params, grads = _problem(num_steps=1)
  with pytest.raises(ValueError, match="params"):
    jax.jit(tx.update)(grads[0], tx.init(params))


# proximal(preconditioners.adam()) without penalties, and proximal(preconditioners.rmsprop())
# with one, with valid defaults a test overrides.
FACTORIES = {
  "proximal": lambda **kw: optax_l1.proximal(
    preconditioners.adam(), **{"learning_rate": 0.1, **kw}
  ),
}
TRANSFORMATIONS = {
  "proximal": lambda **kw: optax_l1.proximal(preconditioners.rmsprop(), 0.1, l1=0.1, **kw),
}
PARAMS = {"kernel": jnp.array([[0.5, -1e-3], [2.0, 0.0]]), "bias": jnp.array([1e-3, -0.5])}


def _bad_number_cases():
  for name in FACTORIES:
    for arg in ("group_l1", "l0"):
      for value in BAD_NUMBERS:
        yield pytest.param(name, arg, value, id=f"{name}-{arg}-{value}")


@pytest.mark.parametrize(("name", "arg", "value"), list(_bad_number_cases()))
def test_bad_strength_raises_at_construction_naming_it(name, arg, value):
  with pytest.raises(ValueError, match=rf"^{arg} must be a finite number >= 0"):
    FACTORIES[name](**{arg: value})


@pytest.mark.parametrize("name", list(TRANSFORMATIONS))
def test_mask_of_the_wrong_structure_raises_naming_mask(name):
  tx = TRANSFORMATIONS[name](mask={"kernel": True, "scale": False})
  with pytest.raises(ValueError, match=r"^mask must have the structure of the params"):
    tx.update(PARAMS, tx.init(PARAMS), PARAMS)


@pytest.mark.parametrize("name", list(TRANSFORMATIONS))
def test_update_without_params_says_how_to_pass_them(name):
  tx = TRANSFORMATIONS[name]()
  state = tx.init(PARAMS)
  with pytest.raises(ValueError, match=r"call `tx\.update\(grads, state, params\)`"):
    tx.update(PARAMS, state)
  with pytest.raises(ValueError, match=r"call `tx\.update\(grads, state, params\)`"):
    jax.jit(tx.update)(PARAMS, state, None)


@pytest.mark.parametrize("name", list(TRANSFORMATIONS))
def test_empty_pytree_gives_empty_updates_in_the_optimizers(name):
  tx = TRANSFORMATIONS[name]()
  updates, _ = tx.update({}, tx.init({}), {})
  assert updates == {}


@pytest.mark.parametrize(
  ("make", "others"),
  [
    (
      lambda: optax_l1.proximal(preconditioners.sgd(), 0.1, l0=0.1, group_l1=0.1, l1=0.1),
      "l1, group_l1",
    ),
  ],
  ids=["proximal-l1_group_l1"],
)
def test_l0_with_another_penalty_raises(make, others):
  with pytest.raises(ValueError, match=f"^l0 cannot be combined with {others}:"):
    make()


# Regressions of the first-hour defects (x64, complex, masks, injection, Rngs, untouched rows,
# momentum, errors).


def test_a_preconditioner_may_return_one_scale_for_all_leaves():
  base = optax_l1.preconditioners.sgd()

  def update(grads, state, count):
    direction, _, state = base.update(grads, state, count)
    return direction, 2.0, state

  params = {"a": jnp.array([0.05, 1.0]), "b": jnp.array([0.05, -1.0])}
  scalar = optax_l1.proximal(
    optax_l1.preconditioners.Preconditioner(base.init, update), 0.1, l1=0.2
  )
  grads = jax.tree.map(jnp.zeros_like, params)
  updates, _ = scalar.update(grads, scalar.init(params), params)
  new = optax.apply_updates(params, updates)  # threshold 0.1 · 0.2 · 2 = 0.04 per weight
  np.testing.assert_allclose(new["a"], [0.01, 0.96], rtol=1e-6)

  def bad(grads, state, count):
    direction, _, state = base.update(grads, state, count)
    return direction, [1.0, 2.0, 3.0], state

  wrong = optax_l1.proximal(optax_l1.preconditioners.Preconditioner(base.init, bad), 0.1, l1=0.2)
  with pytest.raises(
    ValueError, match=r"the scale of preconditioner\.update must have the structure"
  ):
    wrong.update(grads, wrong.init(params), params)
