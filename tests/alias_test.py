"""Tests of the ready-made optimizers (``optax_l1.sgd``, ``adam``, …) and ``optax_l1.proximal``.

The references below are plain NumPy (float64) transcriptions of the published updates
(ANCHORS.md), written independently of the library: ProxGen's AdamL1 / AdamW-L1, TensorFlow's
``ProximalAdagradOptimizer``, RMSProp in its own metric, and FOBOS / ISTA with (Nesterov)
momentum. The optax contract is checked as optax's own ``alias_test.py`` does.
"""

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_l1
from optax_l1 import preconditioners

SHAPES = {"w": (7, 5), "b": (5,)}
NUM_STEPS = 10
# float32 against a float64 reference, over NUM_STEPS steps; always with atol (exact zeros).
# Adam's bias correction 1 − β₂ᵗ is computed in float32, as optax does (1 − float32(0.999) is
# 1.3e-5 relative off), which moves weights near a large threshold ηλ₁/d by up to ~1.2e-6.
F32 = {"rtol": 1e-5, "atol": 2e-6}
KERNELS_ONLY = lambda p: jax.tree.map(lambda x: x.ndim > 1, p)  # noqa: E731


# ----------------------------------------------------------------------------------------------
# NumPy references (float64), one (init, step) pair per published method. All are elementwise,
# so they run leaf by leaf: ``step(w, g, state, k)`` with ``k`` the 0-based step number, at which
# the schedules are evaluated (as optax does with the step count before it is incremented).
# ----------------------------------------------------------------------------------------------


def _soft(x, t):
  """soft(x, t) = sign(x)·max(|x| − t, 0)."""
  return np.sign(x) * np.maximum(np.abs(x) - t, 0.0)


def _schedule(h):
  return h if callable(h) else (lambda k: h)


def _ref_adam(lr, l1, l2=0.0, weight_decay=0.0, b1=0.9, b2=0.999, eps=1e-8, *, in_metric=True):
  """ProxGen AdamL1 (Yun et al. 2021), with decoupled weight decay applied before the prox.

  m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; d = √(v/(1−β₂ᵗ)) + ε;
  w ← soft(w − η(m̂/d + μw), ηλ₁/d) / (1 + ηλ₂/d)   (the elastic-net prox in the metric d:
  argmin_y d/(2η)(y − z)² + λ₁|y| + λ₂/2 y²).
  ``in_metric=False`` is the naive chain ``adam`` then ``l1_prox``: threshold ηλ₁.
  """
  lr, l1, l2, weight_decay = map(_schedule, (lr, l1, l2, weight_decay))

  def init(w):
    return np.zeros_like(w), np.zeros_like(w)

  def step(w, g, state, k):
    m, v = state
    t = k + 1
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat = m / (1 - b1**t)
    d = np.sqrt(v / (1 - b2**t)) + eps
    eta = lr(k)
    z = w - eta * (m_hat / d + weight_decay(k) * w)
    if in_metric:
      new = _soft(z, eta * l1(k) / d) / (1 + eta * l2(k) / d)
    else:
      new = _soft(z, eta * l1(k)) / (1 + eta * l2(k))
    return new, (m, v)

  return init, step


def _ref_rmsprop(lr, l1, l2=0.0, decay=0.9, eps=1e-8, eps_in_sqrt=True):
  """RMSProp in its own metric: v ← ρv + (1−ρ)g²; d = √(v+ε) or √v + ε; the prox as Adam's."""
  lr, l1, l2 = map(_schedule, (lr, l1, l2))

  def init(w):
    return np.zeros_like(w)

  def step(w, g, v, k):
    v = decay * v + (1 - decay) * g * g
    d = np.sqrt(v + eps) if eps_in_sqrt else np.sqrt(v) + eps
    eta = lr(k)
    return _soft(w - eta * g / d, eta * l1(k) / d) / (1 + eta * l2(k) / d), v

  return init, step


def _ref_tf_proximal_adagrad(lr, l1, l2=0.0, initial_accumulator_value=0.1):
  """TF1 ProximalAdagrad: n ← n + g²; η̃ = η/√n; w ← soft(w − η̃g, η̃λ₁)/(1 + η̃λ₂). No ε."""
  lr, l1, l2 = map(_schedule, (lr, l1, l2))

  def init(w):
    return np.full_like(w, initial_accumulator_value)

  def step(w, g, n, k):
    n = n + g * g
    eta = lr(k) / np.sqrt(n)
    return _soft(w - eta * g, eta * l1(k)) / (1 + eta * l2(k)), n

  return init, step


def _ref_proximal_sgd(lr, l1, l2=0.0, momentum=None, nesterov=False, weight_decay=0.0):
  """FOBOS / ISTA (TF1 ProximalGradientDescent), the prox at the point optax.sgd steps to.

  t ← g + βt; direction p = t (or g + βt with Nesterov); w ← soft(w − ηp, ηλ₁/c)/(1 + ηλ₂/c),
  with c = 1 − β under momentum (c = 1 without), as documented in ``optax_l1.sgd``: momentum's
  steps are 1/(1 − β) times longer at equilibrium, and with c = 1 the fixed point would be the
  minimiser of f + (1 − β)λ₁‖w‖₁ (see test_sgd_momentum_converges_to_the_lasso_solution).
  """
  lr, l1, l2, weight_decay = map(_schedule, (lr, l1, l2, weight_decay))
  c = 1.0 if momentum is None else 1.0 - momentum

  def init(w):
    return np.zeros_like(w)

  def step(w, g, trace, k):
    if momentum is None:
      direction = g
    else:
      trace = g + momentum * trace
      direction = g + momentum * trace if nesterov else trace
    eta = lr(k)
    z = w - eta * (direction + weight_decay(k) * w)
    return _soft(z, eta * l1(k) / c) / (1 + eta * l2(k) / c), trace

  return init, step


def _ref_run(ref, params, grads_seq):
  """The reference's trajectory: a list (one per step) of dicts of float64 arrays."""
  init, step = ref
  params = {k: np.asarray(v, np.float64) for k, v in params.items()}
  state = {k: init(v) for k, v in params.items()}
  trajectory = []
  for k, grads in enumerate(grads_seq):
    for name in params:
      g = np.asarray(grads[name], np.float64)
      params[name], state[name] = step(params[name], g, state[name], k)
    trajectory.append(dict(params))
  return trajectory


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


def _run(tx, params, grads_seq):
  """Runs ``tx.update`` under jit; returns the lists of params and of updates after each step.

  Every run also checks the optax contract that the second and later steps reuse the first
  step's compilation (the state keeps its structure, shapes, dtypes and weak types).
  """
  traces = 0

  @jax.jit
  def step(params, state, grads):
    nonlocal traces
    traces += 1
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), updates, state

  state = tx.init(params)
  trajectory, all_updates = [], []
  for grads in grads_seq:
    params, updates, state = step(params, state, grads)
    trajectory.append(params)
    all_updates.append(updates)
  assert traces == 1, f"update was traced {traces} times in {len(grads_seq)} steps"
  return trajectory, all_updates


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
    _ref_adam(0.01, 1.0),
    id="adam",
  ),
  pytest.param(
    lambda: optax_l1.adam(0.01, b1=0.8, b2=0.99, eps=1e-3, l1=1.0, l2=0.5),
    _ref_adam(0.01, 1.0, l2=0.5, b1=0.8, b2=0.99, eps=1e-3),
    id="adam_l2_custom_betas",
  ),
  # AdamW: decoupled decay before the prox.
  pytest.param(
    lambda: optax_l1.adamw(0.01, weight_decay=0.5, l1=1.0),
    _ref_adam(0.01, 1.0, weight_decay=0.5),
    id="adamw",
  ),
  pytest.param(
    lambda: optax_l1.proximal(preconditioners.adam(), 0.01, l1=1.0, l2=0.5, weight_decay=0.5),
    _ref_adam(0.01, 1.0, l2=0.5, weight_decay=0.5),
    id="proximal_adam_weight_decay",
  ),
  # TF ProximalAdagrad (eps=0), with L2.
  pytest.param(
    lambda: optax_l1.adagrad(0.05, eps=0.0, l1=1.0, l2=2.0),
    _ref_tf_proximal_adagrad(0.05, 1.0, l2=2.0),
    id="adagrad_tf",
  ),
  pytest.param(
    lambda: optax_l1.proximal(preconditioners.adagrad(0.1, eps=0.0), 0.05, l1=1.0, l2=2.0),
    _ref_tf_proximal_adagrad(0.05, 1.0, l2=2.0),
    id="proximal_adagrad_tf",
  ),
  # RMSProp, d = √v + ε and the default d = √(v + ε); ε large enough to tell them apart.
  pytest.param(
    lambda: optax_l1.rmsprop(0.003, eps=0.1, eps_in_sqrt=False, l1=2.0),
    _ref_rmsprop(0.003, 2.0, eps=0.1, eps_in_sqrt=False),
    id="rmsprop_eps_outside_sqrt",
  ),
  pytest.param(
    lambda: optax_l1.rmsprop(0.003, eps=0.1, l1=2.0, l2=0.5),
    _ref_rmsprop(0.003, 2.0, l2=0.5, eps=0.1, eps_in_sqrt=True),
    id="rmsprop_eps_in_sqrt",
  ),
  pytest.param(
    lambda: optax_l1.rmsprop(0.003, l1=1.0),
    _ref_rmsprop(0.003, 1.0),
    id="rmsprop_defaults",
  ),
  pytest.param(
    lambda: optax_l1.proximal(preconditioners.rmsprop(0.8, 1e-2, eps_in_sqrt=False), 0.003, l1=1.0),
    _ref_rmsprop(0.003, 1.0, decay=0.8, eps=1e-2, eps_in_sqrt=False),
    id="proximal_rmsprop",
  ),
  # Proximal SGD: plain, momentum, Nesterov, with L2.
  pytest.param(
    lambda: optax_l1.sgd(0.01, l1=1.0, l2=0.5),
    _ref_proximal_sgd(0.01, 1.0, l2=0.5),
    id="sgd",
  ),
  pytest.param(
    lambda: optax_l1.sgd(0.01, l1=0.2, l2=0.5, momentum=0.9),
    _ref_proximal_sgd(0.01, 0.2, l2=0.5, momentum=0.9),
    id="sgd_momentum",
  ),
  pytest.param(
    lambda: optax_l1.sgd(0.01, l1=0.2, l2=0.5, momentum=0.9, nesterov=True),
    _ref_proximal_sgd(0.01, 0.2, l2=0.5, momentum=0.9, nesterov=True),
    id="sgd_nesterov",
  ),
  pytest.param(
    lambda: optax_l1.proximal(
      preconditioners.sgd(0.5, nesterov=True), 0.01, l1=1.0, l2=0.5, weight_decay=0.3
    ),
    _ref_proximal_sgd(0.01, 1.0, l2=0.5, momentum=0.5, nesterov=True, weight_decay=0.3),
    id="proximal_sgd_nesterov_weight_decay",
  ),
]


@pytest.mark.parametrize(("make_tx", "ref"), REFERENCE_CASES)
def test_matches_numpy_reference_of_published_update(make_tx, ref):
  params, grads = _problem()
  expected = _ref_run(ref, params, grads)
  # The problem is meant to exercise the threshold: a good share of exact zeros, not all.
  assert 0.2 < _zero_fraction(expected[-1]) < 0.95, _zero_fraction(expected[-1])
  actual, _ = _run(make_tx(), params, grads)
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
  return _run(twin(_MASKS.get(mask_kind)), *_problem(seed=TWIN_SEED))


# 7. l1 = l2 = 0: the optax twin.
@pytest.mark.parametrize("name", TWIN_IDS)
def test_without_penalty_equals_optax_twin(name):
  ours, _ = TWINS[name]
  actual, actual_updates = _run(ours(l1=0.0, l2=0.0), *_problem(seed=TWIN_SEED))
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
  actual, actual_updates = _run(tx, *_problem(seed=TWIN_SEED))
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
  (actual,), _ = _run(tx, params, grads)
  (expected,), _ = _run(optax.adam(0.01), params, grads)
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
  (expected,) = _ref_run(_ref_adam(0.1, 1.0), params, grads)
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
  "sgd_momentum": (
    lambda: optax_l1.sgd(0.05, l1=0.2, momentum=0.9),
    _ref_proximal_sgd(0.05, 0.2, momentum=0.9),
  ),
  "adam": (lambda: optax_l1.adam(0.05, l1=1.0, l2=0.5), _ref_adam(0.05, 1.0, l2=0.5)),
  "adamw": (
    lambda: optax_l1.adamw(0.05, weight_decay=0.5, l1=1.0),
    _ref_adam(0.05, 1.0, weight_decay=0.5),
  ),
  "rmsprop": (lambda: optax_l1.rmsprop(0.01, l1=1.0), _ref_rmsprop(0.01, 1.0)),
  "adagrad": (
    lambda: optax_l1.adagrad(0.1, eps=0.0, l1=1.0, l2=1.0),
    _ref_tf_proximal_adagrad(0.1, 1.0, l2=1.0),
  ),
}
ALIAS_IDS = sorted(ALIAS_CASES)


@pytest.mark.parametrize("name", ALIAS_IDS)
def test_bfloat16_dtype_preserved_and_zeros_exact(name):
  make_tx, ref = ALIAS_CASES[name]
  params, grads = _problem(seed=4, num_steps=5, dtype=jnp.bfloat16)
  trajectory, updates = _run(make_tx(), params, grads)
  for p, u in zip(trajectory, updates, strict=True):
    chex.assert_trees_all_equal_dtypes(p, params)
    chex.assert_trees_all_equal_dtypes(u, params)
  # One step from the same bf16 inputs: the zero decisions are taken in float32, so the zero
  # set is the reference's, and removed weights are exactly 0.0 in bfloat16.
  (expected,) = _ref_run(ref, params, grads[:1])
  assert _zero_fraction(expected) > 0.1
  _assert_same_zeros(trajectory[0], expected)
  chex.assert_trees_all_close(_as_f64(trajectory[0]), expected, rtol=1e-2, atol=2e-3)
  assert _zero_fraction(trajectory[-1]) > 0.1


@pytest.mark.parametrize("name", ["sgd_momentum", "adam", "adagrad"])
def test_float64_dtype_preserved_and_zeros_exact(name):
  make_tx, ref = ALIAS_CASES[name]
  with jax.enable_x64(True):
    params, grads = _problem(seed=5, num_steps=5, dtype=jnp.float64)
    tx = make_tx()
    trajectory, updates = _run(tx, params, grads)
    for p, u in zip(trajectory, updates, strict=True):
      chex.assert_trees_all_equal_dtypes(p, params)
      chex.assert_trees_all_equal_dtypes(u, params)
    expected = _ref_run(ref, params, grads)
    assert _zero_fraction(expected[-1]) > 0.1
    _assert_trajectories_match(trajectory, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["sgd_momentum", "adam"])
def test_float64_matches_reference_to_float64_precision(name):
  make_tx, ref = ALIAS_CASES[name]
  with jax.enable_x64(True):
    params, grads = _problem(seed=5, num_steps=3, dtype=jnp.float64)
    trajectory, _ = _run(make_tx(), params, grads)
    expected = _ref_run(ref, params, grads)
    _assert_trajectories_match(trajectory, expected, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# 3. inject_hyperparams and 4. no recompilation.
# ----------------------------------------------------------------------------------------------

INJECT_CASES = {
  "sgd_nesterov": (
    optax_l1.sgd,
    {"learning_rate": 0.01, "l1": 0.2, "l2": 0.5, "momentum": 0.9, "nesterov": True},
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
  plain, plain_updates = _run(factory(**kwargs), params, grads)
  injected, injected_updates = _run(optax.inject_hyperparams(factory)(**kwargs), params, grads)
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
  # (_run checks the trace count in every test; here also jax.jit's own cache.)
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


def _linear(init, end, steps):
  """optax.linear_schedule's closed form, evaluated at the 0-based step k."""
  return lambda k: init + (end - init) * min(k, steps) / steps


SCHEDULE_CASES = [
  pytest.param(
    lambda lr, l1: optax_l1.adam(lr, l1=l1),
    lambda lr, l1: _ref_adam(lr, l1),
    6.0,
    id="adam",
  ),
  pytest.param(
    lambda lr, l1: optax_l1.adamw(lr, weight_decay=optax.linear_schedule(0.5, 0.0, 8), l1=l1),
    lambda lr, l1: _ref_adam(lr, l1, weight_decay=_linear(0.5, 0.0, 8)),
    6.0,
    id="adamw",
  ),
  pytest.param(
    lambda lr, l1: optax_l1.rmsprop(lr, l1=l1),
    lambda lr, l1: _ref_rmsprop(lr, l1),
    4.0,
    id="rmsprop",
  ),
  pytest.param(
    lambda lr, l1: optax_l1.adagrad(lr, eps=0.0, l1=l1, l2=optax.linear_schedule(0.0, 4.0, 8)),
    lambda lr, l1: _ref_tf_proximal_adagrad(lr, l1, l2=_linear(0.0, 4.0, 8)),
    6.0,
    id="adagrad",
  ),
  pytest.param(
    lambda lr, l1: optax_l1.sgd(lr, l1=l1, momentum=0.9, nesterov=True),
    lambda lr, l1: _ref_proximal_sgd(lr, l1, momentum=0.9, nesterov=True),
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
  ref = make_ref(_linear(lr_init, lr_end, steps), _linear(l1_init, l1_end, steps))
  params, grads = _problem(seed=9)
  expected = _ref_run(ref, params, grads)
  assert _zero_fraction(expected[0]) == 0
  assert 0.2 < _zero_fraction(expected[-1]) < 0.95, _zero_fraction(expected[-1])
  actual, _ = _run(tx, params, grads)
  _assert_trajectories_match(actual, expected, **F32)


# ----------------------------------------------------------------------------------------------
# 8. Composability with optax's wrappers.
# ----------------------------------------------------------------------------------------------


def test_chain_after_clip_by_global_norm():
  params, grads = _problem(seed=10, grad_scale=3.0)
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax_l1.adam(0.01, l1=1.0))

  def clip(g):
    norm = math.sqrt(sum(float(np.sum(np.asarray(x, np.float64) ** 2)) for x in g.values()))
    assert norm > 1.0  # the clipping is active
    return {k: np.asarray(x, np.float64) / norm for k, x in g.items()}

  expected = _ref_run(_ref_adam(0.01, 1.0), params, [clip(g) for g in grads])
  assert _zero_fraction(expected[-1]) > 0.2
  actual, _ = _run(tx, params, grads)
  _assert_trajectories_match(actual, expected, **F32)


def test_multi_steps_changes_params_every_second_step():
  params, grads = _problem(seed=11, num_steps=8)
  tx = optax.MultiSteps(optax_l1.adam(0.01, l1=2.0), every_k_schedule=2)
  mean_grads = [
    {k: (np.asarray(a[k], np.float64) + np.asarray(b[k], np.float64)) / 2 for k in SHAPES}
    for a, b in zip(grads[0::2], grads[1::2], strict=True)
  ]
  expected = _ref_run(_ref_adam(0.01, 2.0), params, mean_grads)
  assert _zero_fraction(expected[-1]) > 0.2
  actual, _ = _run(tx, params, grads)
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
  actual, updates = _run(tx, params, grads)
  expected = _ref_run(_ref_adam(0.01, 1.0), {"w": params["w"]}, [{"w": g["w"]} for g in grads])
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


def test_sgd_nesterov_without_momentum_raises():
  with pytest.raises(ValueError, match="momentum"):
    optax_l1.sgd(0.1, l1=0.1, nesterov=True)
  with pytest.raises(ValueError, match="momentum"):
    preconditioners.sgd(nesterov=True)


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


# Momentum's threshold: ηλ₁/(1 − β), so that the fixed point is the Lasso solution.


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_converges_to_the_lasso_solution(nesterov):
  # f(w) = ½ Σ aᵢ (wᵢ − bᵢ)², full batch: argmin f + λ₁‖w‖₁ = soft(b, λ₁/a) in closed form.
  a = np.array([1.0, 2.0, 0.5, 1.0, 4.0, 1.0])
  b = np.array([1.0, -0.3, 0.2, -2.0, 0.1, 0.45])
  l1, beta, lr, num_steps = 0.5, 0.9, 0.02, 1500
  lasso = _soft(b, l1 / a)
  wrong = _soft(b, (1 - beta) * l1 / a)  # what a threshold of ηλ₁ would converge to

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
  naive, _ = _run(naive_tx, params, grads)
  ours, _ = _run(optax_l1.adam(lr, l1=l1), params, grads)

  # The closed forms say which coordinates each method zeroes ...
  naive_ref = _ref_run(_ref_adam(lr, l1, in_metric=False), params, grads)
  ours_ref = _ref_run(_ref_adam(lr, l1), params, grads)
  _assert_trajectories_match(naive, naive_ref, **F32)
  _assert_trajectories_match(ours, ours_ref, **F32)
  # ... and Adam's step m̂/d is ~1 per coordinate whatever the gradient's scale, while the
  # threshold ηλ₁/d grows as 1/|g|: the tiny-gradient coordinates all go to zero at once.
  zeros_naive, zeros_ours = _zero_fraction(naive[-1]), _zero_fraction(ours[-1])
  assert zeros_naive < zeros_ours
  for name in SHAPES:
    assert np.all(np.asarray(ours[-1][name])[..., tiny[name]] == 0)
  assert zeros_naive < 0.25 < 0.5 <= zeros_ours
