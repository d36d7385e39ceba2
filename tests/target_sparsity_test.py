"""Target sparsity: the schedule, the controller reaching and holding the target, the frozen
support after the ramp, and the optax contract (jit, masks, inject_hyperparams, chains)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_l1


def kernels(params):
  return jax.tree.map(lambda x: x.ndim > 1, params)


def test_polynomial_sparsity_is_tfmots_cubic_ramp():
  ramp = optax_l1.polynomial_sparsity(0.8, begin_step=10, end_step=110, initial=0.2)
  for t in (0, 10, 35, 60, 110, 500):
    p = min(max((t - 10) / 100, 0.0), 1.0)
    np.testing.assert_allclose(float(ramp(t)), 0.8 + (0.2 - 0.8) * (1 - p) ** 3, rtol=1e-6)
  assert float(jax.jit(ramp)(jnp.int32(60))) == pytest.approx(float(ramp(60)))
  linear = optax_l1.polynomial_sparsity(0.5, begin_step=0, end_step=10, power=1)
  assert float(linear(5)) == pytest.approx(0.25)


@pytest.mark.parametrize(
  "kwargs,match",
  [
    ({"final": 1.0, "begin_step": 0, "end_step": 10}, "final must be a fraction"),
    ({"final": -0.1, "begin_step": 0, "end_step": 10}, "final must be a fraction"),
    ({"final": 0.5, "begin_step": 10, "end_step": 10}, "end_step .* must be greater"),
    ({"final": 0.5, "begin_step": 0, "end_step": 10, "initial": 0.6}, "initial .* must be <="),
    ({"final": 0.5, "begin_step": -1, "end_step": 10}, "begin_step must be an int"),
    ({"final": 0.5, "begin_step": 0, "end_step": 10, "power": 0}, "power must be"),
  ],
)
def test_polynomial_sparsity_rejects_bad_ramps(kwargs, match):
  final = kwargs.pop("final")
  with pytest.raises(ValueError, match=match):
    optax_l1.polynomial_sparsity(final, **kwargs)


@pytest.mark.parametrize(
  "build,error,match",
  [
    (lambda: optax_l1.adam(1e-3, target_sparsity=1.0), ValueError, "target_sparsity must be"),
    (
      lambda: optax_l1.adam(1e-3, target_sparsity=0.5, l1=1e-3),
      ValueError,
      "cannot be combined with l1",
    ),
    (
      lambda: optax_l1.sgd(1e-3, l1=1e-3, target_sparsity=0.5),
      ValueError,
      "cannot be combined with l1",
    ),
    (lambda: optax_l1.adam(1e-3, target_sparsity=0.5, l0=1e-3), ValueError, "with l0"),
    (
      lambda: optax_l1.adam(1e-3, target_sparsity=0.5, sparsity_penalty="l2"),
      ValueError,
      "sparsity_penalty must be",
    ),
    (
      lambda: optax_l1.adam(1e-3, target_sparsity=0.5, sparsity_penalty="mcp", target_groups=True),
      ValueError,
      "target_groups",
    ),
    (
      lambda: optax_l1.adam(1e-3, target_sparsity=0.5, mask={"w": False}),
      ValueError,
      "mask selects no",
    ),
    (lambda: optax_l1.adam(1e-3, target_sparsity=0.5, freeze_step=-1), ValueError, "freeze_step"),
  ],
)
def test_bad_target_requests_raise_at_construction(build, error, match):
  with pytest.raises(error, match=match):
    build()


def test_a_mask_function_selecting_nothing_raises_at_init():
  tx = optax_l1.adam(1e-3, target_sparsity=0.5, mask=lambda p: jax.tree.map(lambda _: False, p))
  with pytest.raises(ValueError, match="mask selects no"):
    tx.init({"w": jnp.ones((2, 2))})


def _toy(seed=0, n=400):
  """Least squares with many irrelevant features: gradients differ from weight to weight."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(256, n)).astype(np.float32)
  w_true = np.where(rng.random(n) < 0.2, rng.normal(size=n), 0.0).astype(np.float32)
  y = x @ w_true + 0.1 * rng.normal(size=256).astype(np.float32)
  return jnp.asarray(x), jnp.asarray(y)


def _train(tx, steps, n=400, record=None):
  x, y = _toy(n=n)
  params = {"w": jnp.zeros((n, 1)) + 0.01, "b": jnp.zeros(1)}
  params = {"w": jax.random.normal(jax.random.key(0), (n, 1)) * 0.1, "b": jnp.zeros(1)}
  loss = lambda p: jnp.mean((x @ p["w"][:, 0] + p["b"][0] - y) ** 2)  # noqa: E731
  state = tx.init(params)

  @jax.jit
  def step(params, state):
    updates, state = tx.update(jax.grad(loss)(params), state, params)
    return optax.apply_updates(params, updates), state

  history = []
  for _ in range(steps):
    params, state = step(params, state)
    history.append(float(jnp.mean(params["w"] == 0)))
  return params, state, np.array(history)


@pytest.mark.parametrize("penalty", ["l0", "l1", "mcp"])
@pytest.mark.parametrize("make", [optax_l1.adam, optax_l1.rmsprop, optax_l1.adagrad])
def test_the_controller_reaches_and_holds_a_constant_target(make, penalty):
  tx = make(
    1e-2, target_sparsity=0.7, sparsity_penalty=penalty, mask=kernels, target_update_every=1
  )
  params, state, history = _train(tx, 300)
  # Each step's strength is the target quantile (exact here: 400 weights), so every step
  # lands on the target, to one weight.
  assert np.max(np.abs(history - 0.7)) <= 1 / 400 + 1e-6
  assert float(optax_l1.target_strength(state)) > 0
  assert np.all(np.asarray(params["b"]) != 0)  # outside the mask: untouched by the penalty


def test_sgd_follows_a_target_too():
  tx = optax_l1.sgd(1e-2, l1=None, target_sparsity=0.5, mask=kernels, target_update_every=1)
  _, _, history = _train(tx, 200)
  assert np.max(np.abs(history - 0.5)) <= 1 / 400 + 1e-6


def test_the_ramp_is_followed_and_the_support_frozen_at_its_end():
  ramp = optax_l1.polynomial_sparsity(0.8, begin_step=20, end_step=120)
  tx = optax_l1.adam(1e-2, target_sparsity=ramp, mask=kernels, target_update_every=1)
  x, y = _toy()
  params = {"w": jax.random.normal(jax.random.key(0), (400, 1)) * 0.1, "b": jnp.zeros(1)}
  loss = lambda p: jnp.mean((x @ p["w"][:, 0] + p["b"][0] - y) ** 2)  # noqa: E731
  state = tx.init(params)
  step = jax.jit(lambda p, s: tx.update(jax.grad(loss)(p), s, p))
  zeros, supports, errors = [], [], []
  for t in range(200):
    updates, state = step(params, state)
    params = optax.apply_updates(params, updates)
    fraction = float(jnp.mean(params["w"] == 0))
    zeros.append(fraction)
    supports.append(np.asarray(params["w"] == 0))
    errors.append(abs(fraction - float(ramp(t))))
  assert max(zeros[:20]) == 0  # before the ramp, no zeros
  assert max(errors[20:121]) <= 2 / 400  # the ramp followed, to the rounding of 400 weights
  assert zeros[120] == pytest.approx(0.8, abs=1 / 400)  # exact at its end
  for support in supports[121:]:  # then the zero set is fixed
    np.testing.assert_array_equal(support, supports[120])
  strength = float(optax_l1.target_strength(state))
  # After the freeze the survivors train without shrinkage: the gradient of the loss alone
  # moves them (no threshold), so their loss keeps falling below the last shrunk iterate's.
  assert strength > 0


def test_the_hard_threshold_re_estimates_every_ten_steps_and_at_the_freeze():
  ramp = optax_l1.polynomial_sparsity(0.8, begin_step=20, end_step=125)
  tx = optax_l1.adam(1e-2, target_sparsity=ramp, mask=kernels)  # l0: every 10 steps by default
  x, y = _toy()
  params = {"w": jax.random.normal(jax.random.key(0), (400, 1)) * 0.1, "b": jnp.zeros(1)}
  loss = lambda p: jnp.mean((x @ p["w"][:, 0] + p["b"][0] - y) ** 2)  # noqa: E731
  state = tx.init(params)
  step = jax.jit(lambda p, s: tx.update(jax.grad(loss)(p), s, p))
  strengths, zeros = [], []
  for _ in range(160):
    updates, state = step(params, state)
    params = optax.apply_updates(params, updates)
    strengths.append(float(optax_l1.target_strength(state)))
    zeros.append(float(jnp.mean(params["w"] == 0)))
  changed = {t for t in range(1, 160) if strengths[t] != strengths[t - 1]}
  assert changed and changed <= {t for t in range(160) if t % 10 == 0} | {125}
  assert 125 in changed  # the freeze step gets its own estimate: its target exactly
  assert zeros[125] == pytest.approx(0.8, abs=1 / 400)
  for t in range(20, 126, 10):  # each estimate removes the fraction the ramp asks for then
    assert zeros[t] == pytest.approx(float(ramp(t)), abs=1 / 400)
  assert strengths[126:] == [strengths[125]] * 34  # frozen: no estimate after the freeze


def test_the_update_interval_is_validated_and_works_under_inject_hyperparams():
  for bad, error in ((0, ValueError), (2.5, TypeError), (True, TypeError)):
    with pytest.raises(error, match="target_update_every"):
      optax_l1.adam(1e-3, target_sparsity=0.5, target_update_every=bad)
  params = {"w": jax.random.normal(jax.random.key(0), (50, 4))}
  injected = optax.inject_hyperparams(optax_l1.adam, static_args="mask")(
    learning_rate=0.1, target_sparsity=0.6, target_update_every=3
  )
  direct = optax_l1.adam(0.1, target_sparsity=0.6, target_update_every=3)
  grads = {"w": 0.1 * jnp.ones((50, 4))}
  results = []
  for tx in (direct, injected):
    state, p = tx.init(params), params
    for _ in range(5):
      updates, state = jax.jit(tx.update)(grads, state, p)
      p = optax.apply_updates(p, updates)
    results.append(p)
  np.testing.assert_allclose(results[1]["w"], results[0]["w"], rtol=1e-6)


def test_the_ranked_sample_keeps_the_moments_of_the_sampled_coordinates():
  # Over 65,536 penalised coordinates the controller ranks a sample; it keeps the optimizer's
  # moments on it, which must stay those of the full state at the sampled coordinates.
  from optax_l1 import _target_sparsity

  rng = np.random.default_rng(0)
  params = {"w": jnp.asarray(rng.normal(size=(300, 700)), jnp.float32), "b": jnp.zeros(700)}
  tx = optax_l1.adam(1e-2, target_sparsity=0.9, mask=kernels, target_update_every=1)
  state = tx.init(params)
  step = jax.jit(tx.update)
  for _ in range(4):
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
    updates, state = step(grads, state, params)
    params = optax.apply_updates(params, updates)
  inner = state.preconditioner
  sample = state.target.sample
  stride = _target_sparsity.sample_stride(params, kernels(params))
  assert stride > 1
  for moment in ("mu", "nu"):
    expected = _target_sparsity.take_sample(getattr(inner, moment), params, kernels(params), stride)
    assert getattr(sample, moment).shape == expected.shape
    assert abs(expected.size - 210_000 / stride) <= 16  # one coordinate in `stride`
    np.testing.assert_allclose(getattr(sample, moment), expected, rtol=1e-6)
  # and the sample is spread over the whole kernel: the target holds on all 210,000 weights
  assert float(jnp.mean(params["w"] == 0)) == pytest.approx(0.9, abs=0.005)


def test_a_preconditioner_whose_state_is_not_diagonal_ranks_the_points_instead():
  base = optax_l1.preconditioners.adam()

  def init(params):
    return (base.init(params), jnp.zeros(3))  # an array that is not one per parameter

  def update(grads, state, count):
    direction, scale, inner = base.update(grads, state[0], count)
    return direction, scale, (inner, state[1] + 1.0)

  tx = optax_l1.proximal(
    optax_l1.preconditioners.Preconditioner(init, update), 1e-2, target_sparsity=0.7
  )
  params = {"w": jax.random.normal(jax.random.key(1), (40, 10))}
  state = tx.init(params)
  assert state.target.sample is None
  updates, state = jax.jit(tx.update)({"w": jnp.ones((40, 10))}, state, params)
  new = optax.apply_updates(params, updates)
  assert float(jnp.mean(new["w"] == 0)) == pytest.approx(0.7, abs=1 / 400)


def test_without_freezing_the_controller_keeps_shrinking_after_the_ramp():
  ramp = optax_l1.polynomial_sparsity(0.6, begin_step=0, end_step=50)
  l1 = {"target_sparsity": ramp, "sparsity_penalty": "l1", "mask": kernels}  # L1 shrinks
  frozen, _, _ = _train(optax_l1.adam(1e-2, **l1), 120)
  free, _, history = _train(optax_l1.adam(1e-2, freeze_support=False, **l1), 120)
  assert np.max(np.abs(history[60:] - 0.6)) <= 1 / 400 + 1e-6
  # Frozen survivors are refitted without shrinkage: larger in magnitude than the shrunk ones.
  kept = np.asarray(frozen["w"] != 0) & np.asarray(free["w"] != 0)
  assert np.mean(np.abs(frozen["w"])[kept]) > np.mean(np.abs(free["w"])[kept])


@pytest.mark.parametrize("penalty", ["l0", "l1"])
def test_group_target_removes_the_wanted_fraction_of_units(penalty):
  rng = np.random.default_rng(0)
  params = {"kernel": jnp.asarray(rng.normal(size=(16, 40)), jnp.float32), "bias": jnp.zeros(40)}
  tx = optax_l1.adam(
    1e-2, target_sparsity=0.75, target_groups=True, sparsity_penalty=penalty, mask=kernels
  )
  state = tx.init(params)
  grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32) * 0.1, params)
  for _ in range(5):
    updates, state = jax.jit(tx.update)(grads, state, params)
    params = optax.apply_updates(params, updates)
  dead = np.all(np.asarray(params["kernel"]) == 0, axis=0)
  assert dead.sum() == 30  # 75 % of 40 output units, whole columns


def test_group_hard_threshold_ranks_units_by_their_norm_not_by_the_metric():
  # Column j has norm ~ j + 1 and gradients ~ 10^-j: weighting the norms by Adam's metric
  # (≈ |g|) would remove the large, slowly-moving columns; the norm removes the small ones.
  rng = np.random.default_rng(0)
  kernel = rng.normal(size=(8, 6)) * np.arange(1, 7) / np.sqrt(8)
  grads = rng.normal(size=(8, 6)) * 10.0 ** -np.arange(6)
  params = {"kernel": jnp.asarray(kernel, jnp.float32)}
  tx = optax_l1.adam(1e-3, target_sparsity=0.5, target_groups=True)
  updates, _ = jax.jit(tx.update)(
    {"kernel": jnp.asarray(grads, jnp.float32)}, tx.init(params), params
  )
  new = np.asarray(optax.apply_updates(params, updates)["kernel"])
  np.testing.assert_array_equal(np.all(new == 0, axis=0), [True, True, True, False, False, False])


def test_target_sparsity_under_inject_hyperparams_and_chains():
  params = {"w": jax.random.normal(jax.random.key(0), (50, 4)), "b": jnp.ones(4)}
  grads = jax.tree.map(lambda p: 0.1 * jnp.ones_like(p), params)
  direct = optax_l1.adam(0.1, target_sparsity=0.6, mask=kernels)
  injected = optax.inject_hyperparams(optax_l1.adam, static_args="mask")(
    learning_rate=0.1, target_sparsity=0.6, mask=kernels
  )
  chained = optax.chain(optax.clip_by_global_norm(10.0), direct)
  results = []
  for tx in (direct, injected, chained):
    updates, state = jax.jit(tx.update)(grads, tx.init(params), params)
    results.append(optax.apply_updates(params, updates))
    assert float(optax_l1.target_strength(state)) > 0
  for other in results[1:]:
    np.testing.assert_allclose(other["w"], results[0]["w"], rtol=1e-6)
  assert float(jnp.mean(results[0]["w"] == 0)) == pytest.approx(0.6, abs=1 / 200)


def test_target_strength_needs_exactly_one_controller():
  with pytest.raises(ValueError, match="0 target-sparsity states"):
    optax_l1.target_strength(optax_l1.adam(0.1).init(jnp.ones(2)))


@pytest.mark.parametrize("penalty", ["l0", "l1"])
def test_group_target_ranks_groups_of_every_leaf_in_its_own_layout(penalty):
  # Four groups in each leaf, 24 entries each: a conv kernel's input channels (axis -2 of
  # (window, in, out)) and the heads of an Equinox-style (out, heads · head_dim) weight, blocks
  # of 3 columns. No gradient: the point is the weights, every step size the same, so both
  # penalties remove the half of the 8 groups with the smallest norms, over both leaves.
  rng = np.random.default_rng(3)
  norms = rng.permutation(np.arange(1.0, 9.0))
  conv = rng.normal(size=(3, 4, 8))
  conv /= np.linalg.norm(conv, axis=(0, 2), keepdims=True)
  conv *= norms[:4][None, :, None]
  heads = rng.normal(size=(8, 12)).reshape(8, 4, 3)
  heads /= np.linalg.norm(heads, axis=(0, 2), keepdims=True)
  heads = (heads * norms[4:][None, :, None]).reshape(8, 12)
  params = {"conv": jnp.asarray(conv, jnp.float32), "heads": jnp.asarray(heads, jnp.float32)}
  axes = {"conv": -2, "heads": optax_l1.GroupAxis(1, size=3)}
  tx = optax_l1.adam(
    1e-3, target_sparsity=0.5, target_groups=True, sparsity_penalty=penalty, group_axis=axes
  )
  grads = jax.tree.map(jnp.zeros_like, params)
  updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
  new = optax.apply_updates(params, updates)
  removed = np.concatenate(
    [
      np.all(np.asarray(new["conv"]) == 0, axis=(0, 2)),
      np.all(np.asarray(new["heads"]).reshape(8, 4, 3) == 0, axis=(0, 2)),
    ]
  )
  np.testing.assert_array_equal(removed, norms <= 4)
  # Whole groups: a group is all zero or keeps every entry.
  assert np.sum(np.asarray(new["conv"]) == 0) == 3 * 8 * np.sum(norms[:4] <= 4)


def test_group_target_with_an_axis_that_does_not_fit_a_leaf_raises_at_init_naming_it():
  params = {"conv": jnp.ones((3, 4, 8)), "heads": jnp.ones((8, 12))}
  tx = optax_l1.adam(
    1e-3,
    target_sparsity=0.5,
    target_groups=True,
    group_axis={"conv": -2, "heads": optax_l1.GroupAxis(1, size=5)},
  )
  with pytest.raises(ValueError, match=r"params\['heads'\].*not a multiple of the group size 5"):
    tx.init(params)
