"""Tests of the ready-made optimizers (``optax_l1.sgd``, ``adam``, …) and ``optax_l1.proximal``.

Each optimizer, as the alias and as ``proximal(preconditioners.X())``, against the NumPy
(float64) reference of its published update in ``references`` (ANCHORS.md): ProxGen's AdamL1 /
AdamW-L1 (and AdamL0, the group lasso in Adam's metric), TensorFlow's
``ProximalAdagradOptimizer``, RMSProp in its own metric, and FOBOS / ISTA with (Nesterov)
momentum. The optax contract is checked as optax's own ``alias_test.py`` does; then bad input,
and the optimizers through Flax's ``nnx.Optimizer`` and Linen's ``TrainState``.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen, nnx
from flax.training import train_state

import optax_l1
from optax_l1 import preconditioners

import references
from jitted_run import run_jitted
from x64_mode import enable_x64

SHAPES = {"w": (7, 5), "b": (5,)}
NUM_STEPS = 10
# float32 against a float64 reference, over NUM_STEPS steps; always with atol (exact zeros).
# Adam's bias correction 1 − β₂ᵗ is computed in float32, as optax does (1 − float32(0.999) is
# 1.3e-5 relative off), which moves weights near a large threshold ηλ₁/d by up to ~1.2e-6.
F32 = {"rtol": 1e-5, "atol": 2e-6}
KERNELS_ONLY = lambda p: jax.tree.map(lambda x: x.ndim > 1, p)  # noqa: E731


# ----------------------------------------------------------------------------------------------
# Running the library, always under jax.jit.
# ----------------------------------------------------------------------------------------------


def _problem(seed=0, num_steps=NUM_STEPS, dtype=np.float32, grad_scale=1.0):
  """Params ~ N(0, 0.1²) of shapes SHAPES and ``num_steps`` random gradients ~ N(0, 1)."""
  rng = np.random.default_rng(seed)
  params = {k: jnp.asarray(0.1 * rng.standard_normal(s), dtype) for k, s in SHAPES.items()}
  grads = [
    {k: jnp.asarray(grad_scale * rng.standard_normal(s), dtype) for k, s in SHAPES.items()}
    for _ in range(num_steps)
  ]
  return params, grads


def _as_f64(tree):
  return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def _assert_same_zeros(actual, expected, where=""):
  for name in expected:
    a, e = np.asarray(actual[name], np.float64), np.asarray(expected[name])
    assert np.array_equal(a == 0, e == 0), (
      f"zero sets of {name!r} differ{where}: library {int((a == 0).sum())} zeros, "
      f"reference {int((e == 0).sum())}; mismatch at {np.argwhere((a == 0) != (e == 0)).tolist()}"
    )


def _assert_trajectories_match(actual, expected, **tol):
  assert len(actual) == len(expected)
  for k, (a, e) in enumerate(zip(actual, expected, strict=True)):
    _assert_same_zeros(a, e, where=f" at step {k}")
    chex.assert_trees_all_close(_as_f64(a), e, **tol)


def _zero_fraction(params):
  leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(params)]
  return sum(int((x == 0).sum()) for x in leaves) / sum(x.size for x in leaves)


# ----------------------------------------------------------------------------------------------
# 1. Each optimizer against the NumPy reference of its published update.
# ----------------------------------------------------------------------------------------------

REFERENCE_CASES = [
  # AdamL1 (ProxGen), as the alias and as proximal(preconditioners.adam()).
  pytest.param(
    lambda: optax_l1.adam(0.01, l1=1.0),
    references.adam(0.01, 1.0),
    id="adam",
  ),
  pytest.param(
    lambda: optax_l1.adam(0.01, b1=0.8, b2=0.99, eps=1e-3, l1=1.0, l2=0.5),
    references.adam(0.01, 1.0, l2=0.5, b1=0.8, b2=0.99, eps=1e-3),
    id="adam_l2_custom_betas",
  ),
  # AdamW: decoupled decay before the prox.
  pytest.param(
    lambda: optax_l1.adamw(0.01, weight_decay=0.5, l1=1.0),
    references.adam(0.01, 1.0, weight_decay=0.5),
    id="adamw",
  ),
  pytest.param(
    lambda: optax_l1.proximal(preconditioners.adam(), 0.01, l1=1.0, l2=0.5, weight_decay=0.5),
    references.adam(0.01, 1.0, l2=0.5, weight_decay=0.5),
    id="proximal_adam_weight_decay",
  ),
  # TF ProximalAdagrad (eps=0), with L2.
  pytest.param(
    lambda: optax_l1.adagrad(0.05, eps=0.0, l1=1.0, l2=2.0),
    references.adagrad(0.05, 1.0, l2=2.0),
    id="adagrad_tf",
  ),
  pytest.param(
    lambda: optax_l1.proximal(preconditioners.adagrad(0.1, eps=0.0), 0.05, l1=1.0, l2=2.0),
    references.adagrad(0.05, 1.0, l2=2.0),
    id="proximal_adagrad_tf",
  ),
  # RMSProp, d = √v + ε and the default d = √(v + ε); ε large enough to tell them apart.
  pytest.param(
    lambda: optax_l1.rmsprop(0.003, eps=0.1, eps_in_sqrt=False, l1=2.0),
    references.rmsprop(0.003, 2.0, eps=0.1, eps_in_sqrt=False),
    id="rmsprop_eps_outside_sqrt",
  ),
  pytest.param(
    lambda: optax_l1.rmsprop(0.003, eps=0.1, l1=2.0, l2=0.5),
    references.rmsprop(0.003, 2.0, l2=0.5, eps=0.1, eps_in_sqrt=True),
    id="rmsprop_eps_in_sqrt",
  ),
  pytest.param(
    lambda: optax_l1.rmsprop(0.003, l1=1.0),
    references.rmsprop(0.003, 1.0),
    id="rmsprop_defaults",
  ),
  pytest.param(
    lambda: optax_l1.proximal(preconditioners.rmsprop(0.8, 1e-2, eps_in_sqrt=False), 0.003, l1=1.0),
    references.rmsprop(0.003, 1.0, decay=0.8, eps=1e-2, eps_in_sqrt=False),
    id="proximal_rmsprop",
  ),
  # Proximal SGD: plain, momentum, Nesterov, with L2.
  pytest.param(
    lambda: optax_l1.sgd(0.01, l1=1.0, l2=0.5),
    references.sgd(0.01, 1.0, l2=0.5),
    id="sgd",
  ),
  pytest.param(
    lambda: optax_l1.sgd(0.01, l1=0.2, l2=0.5, momentum=0.9),
    references.sgd(0.01, 0.2, l2=0.5, momentum=0.9),
    id="sgd_momentum",
  ),
  pytest.param(
    lambda: optax_l1.sgd(0.01, l1=0.4, l2=0.5, momentum=0.9, nesterov=True),
    references.sgd(0.01, 0.4, l2=0.5, momentum=0.9, nesterov=True),
    id="sgd_nesterov",
  ),
  pytest.param(
    lambda: optax_l1.proximal(
      preconditioners.sgd(0.5, nesterov=True), 0.01, l1=1.0, l2=0.5, weight_decay=0.3
    ),
    references.sgd(0.01, 1.0, l2=0.5, momentum=0.5, nesterov=True, weight_decay=0.3),
    id="proximal_sgd_nesterov_weight_decay",
  ),
]


@pytest.mark.parametrize(("make_tx", "ref"), REFERENCE_CASES)
def test_matches_numpy_reference_of_published_update(make_tx, ref):
  params, grads = _problem()
  expected = references.run(ref, params, grads)
  # The problem is meant to exercise the threshold: a good share of exact zeros, not all.
  assert 0.2 < _zero_fraction(expected[-1]) < 0.95, _zero_fraction(expected[-1])
  actual, _ = run_jitted(make_tx(), params, grads)
  _assert_trajectories_match(actual, expected, **F32)


# ----------------------------------------------------------------------------------------------
# Aliases with their optax twins (optimizer factory taking l1/l2/mask, twin factory of mask).
# ----------------------------------------------------------------------------------------------

TWINS = {
  "sgd": (lambda **kw: optax_l1.sgd(0.01, **kw), lambda mask: optax.sgd(0.01)),
  "sgd_momentum": (
    lambda **kw: optax_l1.sgd(0.01, momentum=0.9, **kw),
    lambda mask: optax.sgd(0.01, momentum=0.9),
  ),
  "sgd_nesterov": (
    lambda **kw: optax_l1.sgd(0.01, momentum=0.9, nesterov=True, **kw),
    lambda mask: optax.sgd(0.01, momentum=0.9, nesterov=True),
  ),
  "adam": (lambda **kw: optax_l1.adam(0.01, **kw), lambda mask: optax.adam(0.01)),
  "nadam": (
    lambda **kw: optax_l1.adam(0.01, nesterov=True, **kw),
    lambda mask: optax.adam(0.01, nesterov=True),
  ),
  "adamw": (
    lambda **kw: optax_l1.adamw(0.01, weight_decay=0.1, **kw),
    lambda mask: optax.adamw(0.01, weight_decay=0.1, mask=mask),
  ),
  "rmsprop": (lambda **kw: optax_l1.rmsprop(0.003, **kw), lambda mask: optax.rmsprop(0.003)),
  "rmsprop_eps_outside_sqrt": (
    lambda **kw: optax_l1.rmsprop(0.003, eps=1e-3, eps_in_sqrt=False, **kw),
    lambda mask: optax.rmsprop(0.003, eps=1e-3, eps_in_sqrt=False),
  ),
  "adagrad": (lambda **kw: optax_l1.adagrad(0.05, **kw), lambda mask: optax.adagrad(0.05)),
  "proximal_sgd_momentum": (
    lambda **kw: optax_l1.proximal(preconditioners.sgd(0.9), 0.01, **kw),
    lambda mask: optax.sgd(0.01, momentum=0.9),
  ),
}
TWIN_IDS = sorted(TWINS)


TWIN_SEED = 1


@functools.cache
def _twin_run(name, mask_kind=None):
  """The optax twin's trajectory on the TWIN_SEED problem, computed once per session.

  Only ``optax.adamw`` takes a mask (for its decay); the other twins ignore it.
  """
  _, twin = TWINS[name]
  if name != "adamw":
    mask_kind = None
  return run_jitted(twin(_MASKS.get(mask_kind)), *_problem(seed=TWIN_SEED))


# 7. l1 = l2 = 0: the optax twin.
@pytest.mark.parametrize("name", TWIN_IDS)
def test_without_penalty_equals_optax_twin(name):
  ours, _ = TWINS[name]
  actual, actual_updates = run_jitted(ours(l1=0.0, l2=0.0), *_problem(seed=TWIN_SEED))
  expected, expected_updates = _twin_run(name)
  chex.assert_trees_all_close(actual_updates, expected_updates, rtol=1e-5, atol=1e-7)
  chex.assert_trees_all_close(actual, expected, **F32)
  assert _zero_fraction(actual[-1]) == 0


# 5. Masks: the kernel penalised, the bias left to the plain optimizer.
_MASKS = {"pytree": {"w": True, "b": False}, "callable": KERNELS_ONLY}
MASK_CASES = [
  *((name, "pytree") for name in ("sgd_nesterov", "adam", "adamw", "rmsprop", "adagrad")),
  *((name, "callable") for name in ("adamw", "proximal_sgd_momentum")),
]


@pytest.mark.parametrize(("name", "mask_kind"), MASK_CASES)
def test_mask_leaves_unmasked_leaves_to_the_optax_twin(name, mask_kind):
  ours, _ = TWINS[name]
  # A large l1: the penalised kernel is mostly zeros, the bias must not notice.
  tx = ours(l1=5.0, l2=1.0, mask=_MASKS[mask_kind])
  actual, actual_updates = run_jitted(tx, *_problem(seed=TWIN_SEED))
  expected, expected_updates = _twin_run(name, mask_kind)
  for a, e, a_u, e_u in zip(actual, expected, actual_updates, expected_updates, strict=True):
    chex.assert_trees_all_close(a_u["b"], e_u["b"], rtol=1e-5, atol=1e-7)
    chex.assert_trees_all_close(a["b"], e["b"], **F32)
    assert not np.any(np.asarray(a["b"]) == 0)
  assert np.mean(np.asarray(actual[-1]["w"]) == 0) > 0.5


def test_mask_prefix_of_nested_params():
  rng = np.random.default_rng(3)
  params = {
    "dense": {"kernel": jnp.asarray(0.1 * rng.standard_normal((4, 3)), jnp.float32)},
    "head": {"kernel": jnp.asarray(0.1 * rng.standard_normal((3, 2)), jnp.float32)},
  }
  grads = [jax.tree.map(lambda x: jnp.asarray(rng.standard_normal(x.shape), x.dtype), params)]
  tx = optax_l1.adam(0.01, l1=100.0, mask={"dense": True, "head": False})
  (actual,), _ = run_jitted(tx, params, grads)
  (expected,), _ = run_jitted(optax.adam(0.01), params, grads)
  chex.assert_trees_all_close(actual["head"], expected["head"], rtol=1e-6, atol=1e-7)
  assert np.all(np.asarray(actual["dense"]["kernel"]) == 0)


@pytest.mark.parametrize(
  "mask",
  [
    {"w": True, "c": False},
    {"w": True},
    [True, False],
    lambda p: {"w": True, "b": {"x": False}},
  ],
  ids=["wrong_key", "missing_key", "list", "callable_wrong_structure"],
)
def test_mask_with_wrong_structure_raises(mask):
  params, grads = _problem(num_steps=1)
  tx = optax_l1.adam(0.01, l1=0.1, mask=mask)
  with pytest.raises(ValueError, match="mask"):
    jax.jit(tx.update)(grads[0], tx.init(params), params)


# ----------------------------------------------------------------------------------------------
# 2. Exact zeros and dtypes.
# ----------------------------------------------------------------------------------------------


def test_exact_zeros_after_apply_updates():
  params, grads = _problem(num_steps=1)
  tx = optax_l1.adam(0.1, l1=1.0)
  updates, _ = jax.jit(tx.update)(grads[0], tx.init(params), params)
  new = optax.apply_updates(params, updates)
  (expected,) = references.run(references.adam(0.1, 1.0), params, grads)
  for name in SHAPES:
    zeros = expected[name] == 0
    assert zeros.any()
    # The update removes exactly the weight: w + (−w) == 0.0, bit for bit (and never −0.0).
    np.testing.assert_array_equal(
      np.asarray(updates[name])[zeros], -np.asarray(params[name])[zeros]
    )
    assert np.all(np.asarray(new[name])[zeros] == 0)
    assert not np.any(np.signbit(np.asarray(new[name])[zeros]))


ALIAS_CASES = {
  # name: (optimizer factory, reference) with a share of zeros after one step.
  # λ = 2: the first step's threshold is ηλ (momentum's factor warms up from 1), so 0.1.
  "sgd_momentum": (
    lambda: optax_l1.sgd(0.05, l1=2.0, momentum=0.9),
    references.sgd(0.05, 2.0, momentum=0.9),
  ),
  "adam": (lambda: optax_l1.adam(0.05, l1=1.0, l2=0.5), references.adam(0.05, 1.0, l2=0.5)),
  "adamw": (
    lambda: optax_l1.adamw(0.05, weight_decay=0.5, l1=1.0),
    references.adam(0.05, 1.0, weight_decay=0.5),
  ),
  "rmsprop": (lambda: optax_l1.rmsprop(0.01, l1=1.0), references.rmsprop(0.01, 1.0)),
  "adagrad": (
    lambda: optax_l1.adagrad(0.1, eps=0.0, l1=1.0, l2=1.0),
    references.adagrad(0.1, 1.0, l2=1.0),
  ),
}
ALIAS_IDS = sorted(ALIAS_CASES)


@pytest.mark.parametrize("name", ALIAS_IDS)
def test_bfloat16_dtype_preserved_and_zeros_exact(name):
  make_tx, ref = ALIAS_CASES[name]
  params, grads = _problem(seed=4, num_steps=5, dtype=jnp.bfloat16)
  trajectory, updates = run_jitted(make_tx(), params, grads)
  for p, u in zip(trajectory, updates, strict=True):
    chex.assert_trees_all_equal_dtypes(p, params)
    chex.assert_trees_all_equal_dtypes(u, params)
  # One step from the same bf16 inputs: the zero decisions are taken in float32, so the zero
  # set is the reference's, and removed weights are exactly 0.0 in bfloat16.
  (expected,) = references.run(ref, params, grads[:1])
  assert _zero_fraction(expected) > 0.1
  _assert_same_zeros(trajectory[0], expected)
  chex.assert_trees_all_close(_as_f64(trajectory[0]), expected, rtol=1e-2, atol=2e-3)
  assert _zero_fraction(trajectory[-1]) > 0.1


@pytest.mark.parametrize("name", ["sgd_momentum", "adam", "adagrad"])
def test_float64_dtype_preserved_and_zeros_exact(name):
  make_tx, ref = ALIAS_CASES[name]
  with enable_x64(True):
    params, grads = _problem(seed=5, num_steps=5, dtype=jnp.float64)
    tx = make_tx()
    trajectory, updates = run_jitted(tx, params, grads)
    for p, u in zip(trajectory, updates, strict=True):
      chex.assert_trees_all_equal_dtypes(p, params)
      chex.assert_trees_all_equal_dtypes(u, params)
    expected = references.run(ref, params, grads)
    assert _zero_fraction(expected[-1]) > 0.1
    _assert_trajectories_match(trajectory, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["sgd_momentum", "adam"])
def test_float64_matches_reference_to_float64_precision(name):
  make_tx, ref = ALIAS_CASES[name]
  with enable_x64(True):
    params, grads = _problem(seed=5, num_steps=3, dtype=jnp.float64)
    trajectory, _ = run_jitted(make_tx(), params, grads)
    expected = references.run(ref, params, grads)
    _assert_trajectories_match(trajectory, expected, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# 3. inject_hyperparams and 4. no recompilation.
# ----------------------------------------------------------------------------------------------

INJECT_CASES = {
  "sgd_nesterov": (
    optax_l1.sgd,
    {"learning_rate": 0.01, "l1": 1.0, "l2": 0.5, "momentum": 0.9, "nesterov": True},
  ),
  "adam": (optax_l1.adam, {"learning_rate": 0.01, "l1": 1.0, "l2": 0.5}),
  "adamw": (optax_l1.adamw, {"learning_rate": 0.01, "l1": 1.0, "weight_decay": 0.5}),
  "rmsprop": (optax_l1.rmsprop, {"learning_rate": 0.003, "l1": 1.0, "eps_in_sqrt": False}),
  "adagrad": (optax_l1.adagrad, {"learning_rate": 0.05, "l1": 0.5, "l2": 2.0}),
}
INJECT_IDS = sorted(INJECT_CASES)


@pytest.mark.parametrize("name", INJECT_IDS)
def test_inject_hyperparams_gives_identical_updates(name):
  factory, kwargs = INJECT_CASES[name]
  params, grads = _problem(seed=6, num_steps=5)
  plain, plain_updates = run_jitted(factory(**kwargs), params, grads)
  injected, injected_updates = run_jitted(
    optax.inject_hyperparams(factory)(**kwargs), params, grads
  )
  assert _zero_fraction(plain[-1]) > 0.1
  for p, i in zip(plain, injected, strict=True):
    _assert_same_zeros(i, p)
  # Injected decays are float32 arrays, so 1 − β is rounded in float32 rather than in Python
  # (1 − float32(0.999) is 1.3e-5 relative off): optax's own aliases differ by as much.
  chex.assert_trees_all_close(injected_updates, plain_updates, rtol=1e-4, atol=1e-7)
  chex.assert_trees_all_close(injected, plain, rtol=1e-4, atol=1e-7)


def test_inject_hyperparams_changed_in_state_takes_effect_without_retracing():
  params, grads = _problem(seed=7, num_steps=4)
  tx = optax.inject_hyperparams(optax_l1.adam)(learning_rate=0.01, l1=1.0)
  traces = 0

  @jax.jit
  def step(params, state, g):
    nonlocal traces
    traces += 1
    updates, state = tx.update(g, state, params)
    return optax.apply_updates(params, updates), state

  state = tx.init(params)
  dtype = state.hyperparams["l1"].dtype
  state.hyperparams["l1"] = jnp.asarray(0.0, dtype)  # no penalty: exactly optax.adam.
  twin = optax.adam(0.01)
  twin_state, twin_params = twin.init(params), params
  p = params
  for g in grads:
    p, state = step(p, state, g)
    twin_updates, twin_state = jax.jit(twin.update)(g, twin_state, twin_params)
    twin_params = optax.apply_updates(twin_params, twin_updates)
  chex.assert_trees_all_close(p, twin_params, **F32)
  state.hyperparams["l1"] = jnp.asarray(100.0, dtype)  # everything goes to zero, same trace.
  p, state = step(p, state, grads[0])
  assert _zero_fraction(p) == 1.0
  assert traces == 1


NO_RETRACE_CASES = {
  "adam_callable_mask": lambda: optax_l1.adam(0.01, l1=1.0, mask=KERNELS_ONLY),
  # A callable mask is not a schedule: inject_hyperparams must be told (as for optax.adamw).
  "inject_adamw_callable_mask": lambda: optax.inject_hyperparams(
    optax_l1.adamw, static_args="mask"
  )(learning_rate=0.01, l1=1.0, weight_decay=0.1, mask=KERNELS_ONLY),
  "inject_sgd_nesterov": lambda: optax.inject_hyperparams(optax_l1.sgd)(
    learning_rate=0.01, l1=1.0, momentum=0.9, nesterov=True
  ),
}


@pytest.mark.parametrize("name", sorted(NO_RETRACE_CASES))
def test_no_recompilation_on_later_steps(name):
  # (run_jitted checks the trace count in every test; here also jax.jit's own cache.)
  tx = NO_RETRACE_CASES[name]()
  params, grads = _problem(seed=8, num_steps=3)
  step = jax.jit(tx.update)
  state = tx.init(params)
  for g in grads:
    updates, state = step(g, state, params)
    params = optax.apply_updates(params, updates)
  assert step._cache_size() == 1
  assert _zero_fraction(params) > 0


# ----------------------------------------------------------------------------------------------
# 6. Schedules for learning_rate and l1 (and l2 / weight_decay).
# ----------------------------------------------------------------------------------------------


SCHEDULE_CASES = [
  pytest.param(
    lambda lr, l1: optax_l1.adam(lr, l1=l1),
    lambda lr, l1: references.adam(lr, l1),
    6.0,
    id="adam",
  ),
  pytest.param(
    lambda lr, l1: optax_l1.adamw(lr, weight_decay=optax.linear_schedule(0.5, 0.0, 8), l1=l1),
    lambda lr, l1: references.adam(lr, l1, weight_decay=references.linear_schedule(0.5, 0.0, 8)),
    6.0,
    id="adamw",
  ),
  pytest.param(
    lambda lr, l1: optax_l1.rmsprop(lr, l1=l1),
    lambda lr, l1: references.rmsprop(lr, l1),
    4.0,
    id="rmsprop",
  ),
  pytest.param(
    lambda lr, l1: optax_l1.adagrad(lr, eps=0.0, l1=l1, l2=optax.linear_schedule(0.0, 4.0, 8)),
    lambda lr, l1: references.adagrad(lr, l1, l2=references.linear_schedule(0.0, 4.0, 8)),
    6.0,
    id="adagrad",
  ),
  pytest.param(
    lambda lr, l1: optax_l1.sgd(lr, l1=l1, momentum=0.9, nesterov=True),
    lambda lr, l1: references.sgd(lr, l1, momentum=0.9, nesterov=True),
    0.5,
    id="sgd_nesterov",
  ),
]


@pytest.mark.parametrize(("make_tx", "make_ref", "l1_end"), SCHEDULE_CASES)
def test_schedules_for_learning_rate_and_l1(make_tx, make_ref, l1_end):
  # lr decays, l1 ramps up from 0 (no zeros at the first step), over 8 of the 10 steps.
  lr_init, lr_end, l1_init, steps = 0.01, 0.002, 0.0, 8
  tx = make_tx(
    optax.linear_schedule(lr_init, lr_end, steps), optax.linear_schedule(l1_init, l1_end, steps)
  )
  ref = make_ref(
    references.linear_schedule(lr_init, lr_end, steps),
    references.linear_schedule(l1_init, l1_end, steps),
  )
  params, grads = _problem(seed=9)
  expected = references.run(ref, params, grads)
  assert _zero_fraction(expected[0]) == 0
  assert 0.2 < _zero_fraction(expected[-1]) < 0.95, _zero_fraction(expected[-1])
  actual, _ = run_jitted(tx, params, grads)
  _assert_trajectories_match(actual, expected, **F32)


# ----------------------------------------------------------------------------------------------
# 8. Composability with optax's wrappers.
# ----------------------------------------------------------------------------------------------


def test_chain_after_clip_by_global_norm():
  params, grads = _problem(seed=10, grad_scale=3.0)
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax_l1.adam(0.01, l1=1.0))

  assert all(references.global_norm(g) > 1.0 for g in grads)  # the clipping is active
  clipped = [references.clip_by_global_norm(g, 1.0) for g in grads]
  expected = references.run(references.adam(0.01, 1.0), params, clipped)
  assert _zero_fraction(expected[-1]) > 0.2
  actual, _ = run_jitted(tx, params, grads)
  _assert_trajectories_match(actual, expected, **F32)


def test_multi_steps_changes_params_every_second_step():
  params, grads = _problem(seed=11, num_steps=8)
  tx = optax.MultiSteps(optax_l1.adam(0.01, l1=2.0), every_k_schedule=2)
  mean_grads = [
    {k: (np.asarray(a[k], np.float64) + np.asarray(b[k], np.float64)) / 2 for k in SHAPES}
    for a, b in zip(grads[0::2], grads[1::2], strict=True)
  ]
  expected = references.run(references.adam(0.01, 2.0), params, mean_grads)
  assert _zero_fraction(expected[-1]) > 0.2
  actual, _ = run_jitted(tx, params, grads)
  previous = params
  for k, p in enumerate(actual):
    if k % 2 == 0:  # accumulating: params untouched, bit for bit.
      chex.assert_trees_all_equal(p, previous)
    else:
      _assert_same_zeros(p, expected[k // 2], where=f" at micro-step {k}")
      chex.assert_trees_all_close(_as_f64(p), expected[k // 2], **F32)
    previous = p


def test_inside_optax_masked():
  params, grads = _problem(seed=12)
  tx = optax.masked(optax_l1.adam(0.01, l1=1.0), {"w": True, "b": False})
  actual, updates = run_jitted(tx, params, grads)
  expected = references.run(
    references.adam(0.01, 1.0), {"w": params["w"]}, [{"w": g["w"]} for g in grads]
  )
  assert _zero_fraction(expected[-1]) > 0.2
  _assert_trajectories_match([{"w": p["w"]} for p in actual], expected, **F32)
  # optax.masked passes the masked-out leaves' incoming updates through untouched.
  for u, g in zip(updates, grads, strict=True):
    chex.assert_trees_all_equal(u["b"], g["b"])


# ----------------------------------------------------------------------------------------------
# 9. Bad input.
# ----------------------------------------------------------------------------------------------

CONSTRUCTORS = {
  "sgd": (
    lambda **kw: optax_l1.sgd(**{"learning_rate": 0.1, "l1": 0.1, **kw}),
    ["learning_rate", "l1", "l2"],
  ),
  "adam": (
    lambda **kw: optax_l1.adam(**{"learning_rate": 0.1, "l1": 0.1, **kw}),
    ["learning_rate", "l1", "l2"],
  ),
  "adamw": (
    lambda **kw: optax_l1.adamw(**{"learning_rate": 0.1, "l1": 0.1, **kw}),
    ["learning_rate", "l1", "l2", "weight_decay"],
  ),
  "rmsprop": (
    lambda **kw: optax_l1.rmsprop(**{"learning_rate": 0.1, "l1": 0.1, **kw}),
    ["learning_rate", "l1", "l2"],
  ),
  "adagrad": (
    lambda **kw: optax_l1.adagrad(**{"learning_rate": 0.1, "l1": 0.1, **kw}),
    ["learning_rate", "l1", "l2"],
  ),
}
BAD_HYPERPARAMETERS = [
  pytest.param(name, arg, value, id=f"{name}-{arg}-{value}")
  for name, (_, args) in sorted(CONSTRUCTORS.items())
  for arg in args
  for value in (-1.0, float("nan"), float("inf"))
]


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


@pytest.mark.parametrize("momentum", [-0.1, 1.0, float("nan")])
def test_sgd_bad_momentum_raises(momentum):
  with pytest.raises(ValueError, match="momentum"):
    optax_l1.sgd(0.1, l1=0.1, momentum=momentum)


@pytest.mark.parametrize(
  ("make", "arg"),
  [
    (lambda: optax_l1.adam(0.1, b1=-0.5, l1=0.1), "b1"),
    (lambda: optax_l1.rmsprop(0.1, eps=float("nan"), l1=0.1), "eps"),
    (
      lambda: optax_l1.adagrad(0.1, initial_accumulator_value=-1.0, l1=0.1),
      "initial_accumulator_value",
    ),
  ],
  ids=["adam_b1", "rmsprop_eps", "adagrad_initial_accumulator_value"],
)
def test_bad_optimizer_hyperparameter_raises(make, arg):
  with pytest.raises(ValueError, match=rf"\b{arg}\b"):
    make()


# ----------------------------------------------------------------------------------------------
# 9b. Bad strengths, decay rates and constants at construction; masks; missing params.
# ----------------------------------------------------------------------------------------------


def test_l0_with_l1_is_rejected():
  with pytest.raises(ValueError, match="l0 cannot be combined with l1"):
    optax_l1.adam(1e-3, l1=1e-4, l0=1e-4)


@pytest.mark.parametrize("name", ["group_l1", "l0"])
def test_bad_numbers_rejected(name):
  with pytest.raises(ValueError, match=name):
    optax_l1.adam(1e-3, **{name: -1.0})
  with pytest.raises(ValueError, match=name):
    optax_l1.sgd(1e-3, l1=0.0, **{name: float("nan")})


def test_group_axis_out_of_range_names_the_axis():
  tx = optax_l1.adam(1e-3, group_l1=1.0, group_axis=3)
  params = jnp.ones((2, 2))
  with pytest.raises(ValueError, match="group axis 3 is out of range"):
    tx.update(params, tx.init(params), params)


NAN, INF = float("nan"), float("inf")
BAD_NUMBERS = [-1.0, NAN, INF]


# The aliases, with valid defaults a test overrides.
FACTORIES = {
  "sgd": lambda **kw: optax_l1.sgd(**{"learning_rate": 0.1, "l1": 0.0, **kw}),
  "adam": lambda **kw: optax_l1.adam(**{"learning_rate": 0.1, **kw}),
  "adamw": lambda **kw: optax_l1.adamw(**{"learning_rate": 0.1, **kw}),
  "rmsprop": lambda **kw: optax_l1.rmsprop(**{"learning_rate": 0.1, **kw}),
  "adagrad": lambda **kw: optax_l1.adagrad(**{"learning_rate": 0.1, **kw}),
}
OPTIMIZERS = ["sgd", "adam", "adamw", "rmsprop", "adagrad"]
# (factory, argument, value) triples that test_bad_numbers_rejected already checks.
COVERED_ELSEWHERE = {
  ("adam", "group_l1", -1.0),
  ("adam", "l0", -1.0),
  ("sgd", "group_l1", NAN),
  ("sgd", "l0", NAN),
}


def _bad_number_cases():
  for name in OPTIMIZERS:
    for arg in ("group_l1", "l0"):
      for value in BAD_NUMBERS:
        if not any(
          (n, a) == (name, arg) and (v == value or (np.isnan(v) and np.isnan(value)))
          for n, a, v in COVERED_ELSEWHERE
        ):
          yield pytest.param(name, arg, value, id=f"{name}-{arg}-{value}")


@pytest.mark.parametrize(("name", "arg", "value"), list(_bad_number_cases()))
def test_bad_strength_raises_at_construction_naming_it(name, arg, value):
  with pytest.raises(ValueError, match=rf"^{arg} must be a finite number >= 0"):
    FACTORIES[name](**{arg: value})


@pytest.mark.parametrize(
  ("make", "arg"),
  [
    (lambda: optax_l1.adam(0.1, b1=1.0), "b1"),
    (lambda: optax_l1.adam(0.1, b2=1.0), "b2"),
    (lambda: optax_l1.adam(0.1, b1=1.5), "b1"),
    (lambda: optax_l1.adamw(0.1, b2=1.5), "b2"),
    (lambda: optax_l1.sgd(0.1, l1=0.1, momentum=1.5), "momentum"),
  ],
  ids=["adam-b1=1", "adam-b2=1", "adam-b1=1.5", "adamw-b2=1.5", "sgd-momentum=1.5"],
)
def test_decay_rate_at_or_above_one_raises(make, arg):
  with pytest.raises(ValueError, match=rf"^{arg} must be < 1"):
    make()


@pytest.mark.parametrize(
  ("make", "arg"),
  [
    (lambda v: optax_l1.adam(0.1, eps=v), "eps"),
    (lambda v: optax_l1.adamw(0.1, eps_root=v), "eps_root"),
    (lambda v: optax_l1.rmsprop(0.1, decay=v), "decay"),
    (lambda v: optax_l1.rmsprop(0.1, initial_scale=v), "initial_scale"),
    (lambda v: optax_l1.adagrad(0.1, eps=v), "eps"),
  ],
  ids=["adam-eps", "adamw-eps_root", "rmsprop-decay", "rmsprop-initial_scale", "adagrad-eps"],
)
@pytest.mark.parametrize("value", BAD_NUMBERS)
def test_bad_optimizer_constant_raises_naming_it(make, arg, value):
  with pytest.raises(ValueError, match=rf"^{arg} must be a finite number >= 0"):
    make(value)


@pytest.mark.parametrize("decay", [1.0, 1.5])
def test_rmsprop_decay_at_or_above_one_raises(decay):
  with pytest.raises(ValueError, match="decay"):
    optax_l1.rmsprop(0.1, decay=decay, l1=0.1)


@pytest.mark.parametrize(
  ("value", "error", "message"),
  [
    (
      [0.1, 0.2],
      ValueError,
      r"^l1 must be a scalar \(a number or an optax schedule\), got shape \(2,\)",
    ),
    (object(), TypeError, r"^l1 must be a number or an optax schedule \(>= 0\)"),
    (1j, TypeError, r"^l1 must be a number or an optax schedule \(>= 0\)"),
    (jnp.float32(-1.0), ValueError, r"^l1 must be a finite number >= 0"),
  ],
  ids=["list", "object", "complex", "negative_jax_scalar"],
)
def test_l1_that_is_not_a_number_raises_naming_it(value, error, message):
  with pytest.raises(error, match=message):
    optax_l1.adam(0.1, l1=value)


@pytest.mark.parametrize("arg", ["l1", "learning_rate"])
def test_string_hyperparameter_raises_at_construction(arg):
  with pytest.raises(TypeError, match=arg):
    optax_l1.adam(**{"learning_rate": 0.1, "l1": 0.1, arg: "0.1"})


def test_injected_hyperparameters_are_checked_when_built_but_not_when_traced():
  params = jnp.array([0.5, -1.0])
  injected = optax.inject_hyperparams(optax_l1.adam)
  # Numbers given to inject_hyperparams reach the factory as concrete arrays: checked.
  with pytest.raises(ValueError, match=r"^l1 must be a finite number >= 0"):
    injected(learning_rate=0.1, l1=-1.0).init(params)
  # A value changed in the state arrives traced in update: used as given (see l1_prox's docs),
  # so a negative l1 adds |threshold| to every weight. A coordinate that has had no gradient
  # yet has Adam's metric floored at sqrt(eps), so the threshold is 0.1 * -1 / 1e-4 = -1e3.
  tx = injected(learning_rate=0.1, l1=0.1)
  state = tx.init(params)
  state.hyperparams["l1"] = jnp.asarray(-1.0)
  updates, _ = jax.jit(tx.update)(jnp.zeros(2), state, params)
  np.testing.assert_allclose(optax.apply_updates(params, updates), params + 1e3, rtol=1e-6)


def test_a_schedule_returning_a_negative_l1_is_not_checked():
  params = jnp.array([0.5, -1.0])
  tx = optax_l1.sgd(0.1, l1=lambda count: -1.0)
  updates, _ = tx.update(jnp.zeros(2), tx.init(params), params)
  # soft(x, -c) = x + c: the threshold -0.1 adds 0.1 to every weight (see soft_threshold).
  np.testing.assert_allclose(optax.apply_updates(params, updates), [0.6, -0.9], rtol=1e-6)


PARAMS = {"kernel": jnp.array([[0.5, -1e-3], [2.0, 0.0]]), "bias": jnp.array([1e-3, -0.5])}
TRANSFORMATIONS = {
  "sgd": lambda **kw: optax_l1.sgd(0.1, l1=0.1, **kw),
  "adam": lambda **kw: optax_l1.adam(0.1, l1=0.1, **kw),
  "adamw": lambda **kw: optax_l1.adamw(0.1, l1=0.1, **kw),
  "rmsprop": lambda **kw: optax_l1.rmsprop(0.1, l1=0.1, **kw),
  "adagrad": lambda **kw: optax_l1.adagrad(0.1, l1=0.1, **kw),
}


@pytest.mark.parametrize("name", ["sgd", "adamw", "rmsprop", "adagrad"])
def test_mask_of_the_wrong_structure_raises_naming_mask(name):
  tx = TRANSFORMATIONS[name](mask={"kernel": True, "scale": False})
  with pytest.raises(ValueError, match=r"^mask must have the structure of the params"):
    tx.update(PARAMS, tx.init(PARAMS), PARAMS)


@pytest.mark.parametrize(
  "mask",
  [
    {"kernel": 1, "bias": 0},
    lambda p: jax.tree.map(lambda x: jnp.any(x != 0), p),  # arrays, not Python bools
    {"kernel": "yes", "bias": "no"},
  ],
  ids=["ints", "callable_returning_arrays", "strings"],
)
def test_mask_with_leaves_that_are_not_bools_raises_type_error(mask):
  tx = optax_l1.adam(0.1, l1=0.1, mask=mask)
  with pytest.raises(TypeError, match=r"^mask leaves must be Python bools"):
    tx.update(PARAMS, tx.init(PARAMS), PARAMS)


def test_mask_of_numpy_bools_is_accepted():
  tx = optax_l1.adam(0.1, l1=0.1, mask={"kernel": np.bool_(True), "bias": np.bool_(False)})
  expected = optax_l1.adam(0.1, l1=0.1, mask={"kernel": True, "bias": False})
  got, _ = tx.update(PARAMS, tx.init(PARAMS), PARAMS)
  want, _ = expected.update(PARAMS, expected.init(PARAMS), PARAMS)
  jax.tree.map(np.testing.assert_array_equal, got, want)


ALL_UPDATES = {
  **{name: make for name, make in TRANSFORMATIONS.items()},
  "adam_group_l1": lambda: optax_l1.adam(0.1, group_l1=0.1),
  "inject_adam": lambda: optax.inject_hyperparams(optax_l1.adam)(learning_rate=0.1, l1=0.1),
}


@pytest.mark.parametrize("name", list(ALL_UPDATES))
def test_update_without_params_says_how_to_pass_them(name):
  tx = ALL_UPDATES[name]()
  state = tx.init(PARAMS)
  with pytest.raises(ValueError, match=r"call `tx\.update\(grads, state, params\)`"):
    tx.update(PARAMS, state)
  with pytest.raises(ValueError, match=r"call `tx\.update\(grads, state, params\)`"):
    jax.jit(tx.update)(PARAMS, state, None)


def test_learning_rate_zero_is_a_no_op():
  params = jnp.array([0.5, 1e-9, 0.0, -2.0])
  for tx in [optax_l1.adam(0.0, l1=0.1), optax_l1.sgd(0.0, l1=10.0, momentum=0.9)]:
    updates, _ = tx.update(jnp.ones(4), tx.init(params), params)
    np.testing.assert_array_equal(optax.apply_updates(params, updates), params)


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop", "adagrad"])
def test_empty_pytree_gives_empty_updates_in_the_optimizers(name):
  tx = ALL_UPDATES[name]()
  updates, _ = tx.update({}, tx.init({}), {})
  assert updates == {}


@pytest.mark.parametrize(
  "make",
  [
    lambda: optax_l1.adam(0.1, group_l1=0.1, group_axis=-3),
    lambda: optax_l1.sgd(0.1, l1=0.0, group_l1=0.1, group_axis=2),
    lambda: optax_l1.adagrad(0.1, group_l1=0.1, group_axis=5),
  ],
  ids=["adam--3", "sgd-2", "adagrad-5"],
)
def test_group_axis_out_of_range_raises_naming_the_axis(make):
  tx = make()
  params = jnp.ones((3, 4))
  with pytest.raises(ValueError, match=r"^group axis -?\d is out of range for a leaf of shape"):
    tx.update(params, tx.init(params), params)


def test_group_axis_out_of_range_for_a_bias_suggests_mask_which_fixes_it():
  params = {"kernel": jnp.ones((3, 4)), "bias": jnp.ones(4)}
  tx = optax_l1.adam(0.1, group_l1=0.1, group_axis=1)
  with pytest.raises(ValueError, match=r"group axis 1 is out of range .* shape \(4,\).*`mask`"):
    tx.update(params, tx.init(params), params)
  tx = optax_l1.adam(0.1, group_l1=0.1, group_axis=1, mask={"kernel": True, "bias": False})
  updates, _ = tx.update(params, tx.init(params), params)
  assert updates["bias"].shape == (4,)


@pytest.mark.parametrize(
  ("make", "others"),
  [
    (lambda: optax_l1.rmsprop(0.1, l0=0.1, l2=0.1), "l2"),
    (lambda: optax_l1.adagrad(0.1, l0=0.1, group_l1=0.1), "group_l1"),
    (lambda: optax_l1.adamw(0.1, l0=0.1, l1=0.1, l2=0.1), "l1, l2"),
    (lambda: optax_l1.sgd(0.1, l0=0.1, l1=optax.constant_schedule(0.1)), "l1"),
    (lambda: optax_l1.sgd(0.1, l0=optax.constant_schedule(0.1), l1=0.1), "l1"),
  ],
  ids=[
    "rmsprop-l2",
    "adagrad-group_l1",
    "adamw-l1_l2",
    "sgd-l1_schedule",
    "sgd-l0_schedule",
  ],
)
def test_l0_with_another_penalty_raises(make, others):
  with pytest.raises(ValueError, match=f"^l0 cannot be combined with {others}:"):
    make()


def test_l0_with_zero_convex_penalties_is_allowed():
  optax_l1.sgd(0.1, l1=0.0, l2=0.0, group_l1=0.0, l0=0.1)
  optax_l1.sgd(0.1, l1=None, l2=None, group_l1=None, l0=0.1)
  optax_l1.adam(0.1, l1=jnp.float32(0.0), l0=0.1)  # a concrete zero is known to be off
  with pytest.raises(ValueError, match="l0 cannot be combined with l1"):
    optax_l1.adam(0.1, l1=jnp.float32(0.1), l0=0.1)  # a concrete array is checked as a number


# ----------------------------------------------------------------------------------------------
# 9c. Momentum's threshold: ηλ₁/(1 − β), so that the fixed point is the Lasso solution.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_converges_to_the_lasso_solution(nesterov):
  # f(w) = ½ Σ aᵢ (wᵢ − bᵢ)², full batch: argmin f + λ₁‖w‖₁ = soft(b, λ₁/a) in closed form.
  a = np.array([1.0, 2.0, 0.5, 1.0, 4.0, 1.0])
  b = np.array([1.0, -0.3, 0.2, -2.0, 0.1, 0.45])
  l1, beta, lr, num_steps = 0.5, 0.9, 0.02, 1500
  lasso = references.soft_threshold(b, l1 / a)
  wrong = references.soft_threshold(
    b, (1 - beta) * l1 / a
  )  # what a threshold of ηλ₁ would converge to

  def solve(tx):
    def body(_, carry):
      w, state = carry
      updates, state = tx.update(jnp.asarray(a, jnp.float32) * (w - b), state, w)
      return optax.apply_updates(w, updates), state

    w0 = jnp.zeros(a.shape, jnp.float32)
    return jax.jit(lambda w: jax.lax.fori_loop(0, num_steps, body, (w, tx.init(w)))[0])(w0)

  ours = solve(optax_l1.sgd(lr, l1=l1, momentum=beta, nesterov=nesterov))
  naive = solve(
    optax.chain(optax.sgd(lr, momentum=beta, nesterov=nesterov), optax_l1.l1_prox(l1, lr))
  )
  assert np.array_equal(np.asarray(ours) == 0, lasso == 0)
  chex.assert_trees_all_close(np.asarray(ours, np.float64), lasso, rtol=1e-5, atol=1e-5)
  chex.assert_trees_all_close(np.asarray(naive, np.float64), wrong, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# 10. The adaptive trap: a threshold of ηλ₁ after Adam is too small where gradients are tiny.
# ----------------------------------------------------------------------------------------------


def test_naive_chain_after_adam_gives_fewer_zeros_than_adam_l1():
  lr, l1, num_steps = 0.01, 0.05, 5
  params, grads = _problem(seed=13, num_steps=num_steps)
  # Half of the kernel's columns and of the bias see gradients a thousand times smaller.
  tiny = {"w": np.arange(5) % 2 == 0, "b": np.arange(5) % 2 == 0}
  grads = [{k: jnp.where(tiny[k], 1e-3 * g[k], g[k]) for k in SHAPES} for g in grads]

  naive_tx = optax.chain(optax.adam(lr), optax_l1.l1_prox(l1, lr))
  naive, _ = run_jitted(naive_tx, params, grads)
  ours, _ = run_jitted(optax_l1.adam(lr, l1=l1), params, grads)

  # The closed forms say which coordinates each method zeroes ...
  naive_ref = references.run(references.adam(lr, l1, in_metric=False), params, grads)
  ours_ref = references.run(references.adam(lr, l1), params, grads)
  _assert_trajectories_match(naive, naive_ref, **F32)
  _assert_trajectories_match(ours, ours_ref, **F32)
  # ... and Adam's step m̂/d is ~1 per coordinate whatever the gradient's scale, while the
  # threshold ηλ₁/d grows as 1/|g|: the tiny-gradient coordinates all go to zero at once.
  zeros_naive, zeros_ours = _zero_fraction(naive[-1]), _zero_fraction(ours[-1])
  assert zeros_naive < zeros_ours
  for name in SHAPES:
    assert np.all(np.asarray(ours[-1][name])[..., tiny[name]] == 0)
  assert zeros_naive < 0.25 < 0.5 <= zeros_ours


# ----------------------------------------------------------------------------------------------
# 11. Structured penalties in Adam's metric: the group lasso (mean metric) and AdamL0.
# ----------------------------------------------------------------------------------------------


def _matrix_problem(seed=0, shape=(8, 6), steps=5, grad_scale=1.0):
  """Params ~ N(0, 1) of one ``shape`` and ``steps`` gradients ~ N(0, grad_scale²)."""
  rng = np.random.default_rng(seed)
  params = jnp.asarray(rng.normal(size=shape), jnp.float32)
  grads = [jnp.asarray(rng.normal(size=shape) * grad_scale, jnp.float32) for _ in range(steps)]
  return params, grads


def test_adam_group_l1_uses_the_step_size_of_each_groups_mean_metric():
  params, grads = _matrix_problem(seed=3, shape=(10, 6), steps=6, grad_scale=0.1)
  grads = [g.at[0].set(0.0) for g in grads]  # an input that never has a gradient: d = √eps
  lr, lam = 0.05, 0.3

  step_sizes = []  # Adam's η/d at each step

  def group_prox(z, s, k):
    step_sizes.append(s)
    mean_step = 1 / np.mean(1 / s, axis=0, keepdims=True)  # one per unit: the mean metric
    return references.group_l1(z, lam, mean_step)

  history, _ = run_jitted(optax_l1.adam(lr, group_l1=lam), params, grads)
  reference = references.run(references.adam(lr, prox=group_prox), params, grads)
  for got, w in zip(history, reference, strict=True):
    np.testing.assert_array_equal(np.asarray(got) == 0, w == 0)
    np.testing.assert_allclose(np.asarray(got), w, atol=1e-6)
  w, s = reference[-1], step_sizes[-1]
  assert 0 < np.all(w == 0, axis=0).mean() < 1
  # The arithmetic mean of the step sizes would be dominated by the row with d = √eps (its step
  # η/√eps = 500 against η/d < 1 for the others).
  assert np.mean(s, axis=0).min() > 30 * (1 / np.mean(1 / s, axis=0)).max()


def test_adam_l0_is_prox_gen_adam_l0():
  params, grads = _matrix_problem(seed=4, steps=5, grad_scale=0.1)
  params = params * 0.05
  lr, l0 = 0.01, 0.05

  def hard_prox(z, s, k):
    return references.hard_threshold(z, np.sqrt(2 * s * l0))

  history, _ = run_jitted(optax_l1.adam(lr, l0=l0), params, grads)
  reference = references.run(references.adam(lr, prox=hard_prox), params, grads)
  for got, w in zip(history, reference, strict=True):
    np.testing.assert_array_equal(np.asarray(got) == 0, w == 0)
    np.testing.assert_allclose(np.asarray(got), w, atol=1e-6)
  assert 0 < np.mean(w == 0) < 1


# ----------------------------------------------------------------------------------------------
# 12. Through Flax: NNX's Optimizer and Linen's TrainState give exact zeros.
# ----------------------------------------------------------------------------------------------


def test_nnx_optimizer_step_gives_exact_zeros_in_kernels_only():
  model = nnx.Linear(4, 3, rngs=nnx.Rngs(0))
  model.bias[...] = jnp.full((3,), 0.01)
  kernel_before = np.asarray(model.kernel[...])
  l1, lr = 1.0, 0.1  # Adam's first step moves each weight by lr; the threshold is lr·l1/d
  optimizer = nnx.Optimizer(model, optax_l1.adam(lr, l1=l1, mask=KERNELS_ONLY), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer, x):
    grads = nnx.grad(lambda m: jnp.mean(m(x) ** 2))(model)
    optimizer.update(model, grads)

  x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 4)), jnp.float32)
  step(model, optimizer, x)
  kernel = np.asarray(model.kernel[...])
  assert np.mean(kernel == 0) > 0.25
  # Survivors moved by at most lr (Adam's step) + lr·l1/d shrinkage towards zero.
  assert np.all((kernel == 0) | (np.abs(kernel) < np.abs(kernel_before)))
  np.testing.assert_array_less(0, np.abs(np.asarray(model.bias[...])))  # unpenalised

  sparsity = optax_l1.sparsity(nnx.state(model, nnx.Param))
  assert sparsity.zeros == int(np.sum(kernel == 0))


class Linear(linen.Module):
  @linen.compact
  def __call__(self, x):
    return linen.Dense(3)(x)


def test_linen_train_state_apply_gradients_gives_exact_zeros():
  model = Linear()
  x = jnp.asarray(np.random.default_rng(1).normal(size=(8, 4)), jnp.float32)
  params = model.init(jax.random.key(0), x)["params"]
  state = train_state.TrainState.create(
    apply_fn=model.apply, params=params, tx=optax_l1.sgd(0.1, l1=5.0, mask=KERNELS_ONLY)
  )

  @jax.jit
  def step(state):
    grads = jax.grad(lambda p: jnp.mean(state.apply_fn({"params": p}, x) ** 2))(state.params)
    return state.apply_gradients(grads=grads)

  state = step(state)
  kernel = np.asarray(state.params["Dense_0"]["kernel"])
  assert np.mean(kernel == 0) > 0.25
  assert optax_l1.sparsity(state.params).fraction > 0
  assert isinstance(state.opt_state, optax_l1.ProximalState)
  assert int(state.opt_state.count) == 1
  assert isinstance(optax.tree.get(state.opt_state, "count"), jax.Array)


# Regressions of the first-hour defects (x64, complex, masks, injection, Rngs, untouched rows,
# momentum, errors).


INJECTED = {
  "adam": (optax_l1.adam, {"learning_rate": 0.1, "l1": 0.01}),
  "adamw": (optax_l1.adamw, {"learning_rate": 0.1, "l1": 0.01}),
  "rmsprop": (optax_l1.rmsprop, {"learning_rate": 0.1, "l1": 0.01}),
  "adagrad": (optax_l1.adagrad, {"learning_rate": 0.1, "l1": 0.01}),
  "sgd": (optax_l1.sgd, {"learning_rate": 0.1, "l1": 0.01}),
  "l1_prox": (optax_l1.l1_prox, {"l1": 0.01, "learning_rate": 0.1}),
}


def _primitives(tx, params):
  grads = jax.tree.map(jnp.ones_like, params)
  return [e.primitive.name for e in jax.make_jaxpr(tx.update)(grads, tx.init(params), params).eqns]


@pytest.mark.parametrize("name", list(INJECTED))
def test_injected_optimizer_computes_only_the_penalties_asked_for(name):
  factory, kwargs = INJECTED[name]
  params = {"w": jnp.ones((3, 4)), "scale": jnp.ones(())}  # a 0-d leaf, no group axis
  injected = optax.inject_hyperparams(factory)(**kwargs)
  state = injected.init(params)
  assert not {"l2", "group_l1", "l0"} & set(state.hyperparams)
  updates, _ = jax.jit(injected.update)(jax.tree.map(jnp.ones_like, params), state, params)
  direct = factory(**kwargs)
  expected, _ = direct.update(jax.tree.map(jnp.ones_like, params), direct.init(params), params)
  for a, b in zip(jax.tree.leaves(updates), jax.tree.leaves(expected), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-6)
  # No arithmetic for the penalties left off: fewer operations than with all of them
  # injected as zeros, and none of the group norm's reductions.
  off = {"l2": 0.0} if name == "l1_prox" else {"l2": 0.0, "group_l1": 0.0, "l0": 0.0}
  everything = optax.inject_hyperparams(factory)(**kwargs, **off)
  ours = _primitives(injected, {"w": params["w"]})
  assert len(ours) < len(_primitives(everything, {"w": params["w"]}))
  assert "reduce_max" not in ours


@pytest.mark.parametrize(
  "build,match",
  [
    (lambda: optax_l1.adam(1e-3, b2=jnp.array(1.5)), "b2 must be < 1"),
    (lambda: optax_l1.adam(1e-3, b1=np.float32(1.0)), "b1 must be < 1"),
    (lambda: optax_l1.adam(1e-3, eps=jnp.array(-1.0)), "eps must be a finite number"),
    (lambda: optax_l1.rmsprop(1e-3, decay=jnp.array(1.0)), "decay must be < 1"),
    (lambda: optax_l1.sgd(1e-3, l1=0.1, momentum=jnp.array(1.2)), "momentum must be < 1"),
    (lambda: optax_l1.adam(1e-3, l1=jnp.array(0.1), l0=0.1), "l0 cannot be combined with l1"),
    (lambda: optax_l1.adam(1e-3, l1=jnp.array(-0.1)), "l1 must be a finite number"),
  ],
)
def test_concrete_arrays_are_checked_like_numbers(build, match):
  with pytest.raises(ValueError, match=match):
    build()


@pytest.mark.parametrize(
  "build,name",
  [
    (lambda s: optax_l1.adam(1e-3, b1=s), "b1"),
    (lambda s: optax_l1.adam(1e-3, eps=s), "eps"),
    (lambda s: optax_l1.rmsprop(1e-3, decay=s), "decay"),
    (lambda s: optax_l1.adagrad(1e-3, initial_accumulator_value=s), "initial_accumulator_value"),
    (lambda s: optax_l1.sgd(1e-3, l1=0.1, momentum=s), "momentum"),
  ],
)
def test_constants_given_a_schedule_raise_naming_inject_hyperparams(build, name):
  with pytest.raises(TypeError, match=rf"{name} must be a number.*inject_hyperparams"):
    build(optax.constant_schedule(0.5))


def test_b1_can_be_scheduled_through_inject_hyperparams():
  tx = optax.inject_hyperparams(optax_l1.adam)(
    learning_rate=0.1, b1=optax.linear_schedule(0.5, 0.9, 10)
  )
  params = jnp.ones(2)
  updates, _state = jax.jit(tx.update)(jnp.ones(2), tx.init(params), params)
  assert np.all(np.isfinite(updates))
