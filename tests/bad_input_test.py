"""A catalogue of bad input: each case raises a clear error naming the argument, or is a no-op.

Cases already covered elsewhere are not repeated: negative/NaN/inf ``learning_rate``, ``l1``,
``l2``, ``weight_decay`` of the optimizers (alias_test.py) and of ``l1_prox``
(transform_test.py); ``group_l1``/``l0`` of ``adam`` (−1) and ``sgd`` (NaN), ``l0`` with
``l1`` in ``adam``, ``group_axis=3`` in ``adam``, an out-of-range ``block_soft_threshold`` axis
(structured_test.py); a mask of the wrong structure in ``adam`` and ``l1_prox``
(alias_test.py, transform_test.py); a threshold tree in ``soft_threshold`` (prox_test.py);
``optax.adam`` as a preconditioner (preconditioners_test.py).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_l1
from optax_l1 import preconditioners

NAN, INF = float("nan"), float("inf")
BAD_NUMBERS = [-1.0, NAN, INF]

# The public factories (l1_prox: transform_test.py), with valid defaults a test overrides.
FACTORIES = {
  "sgd": lambda **kw: optax_l1.sgd(**{"learning_rate": 0.1, "l1": 0.0, **kw}),
  "adam": lambda **kw: optax_l1.adam(**{"learning_rate": 0.1, **kw}),
  "adamw": lambda **kw: optax_l1.adamw(**{"learning_rate": 0.1, **kw}),
  "rmsprop": lambda **kw: optax_l1.rmsprop(**{"learning_rate": 0.1, **kw}),
  "adagrad": lambda **kw: optax_l1.adagrad(**{"learning_rate": 0.1, **kw}),
  "proximal": lambda **kw: optax_l1.proximal(
    preconditioners.adam(), **{"learning_rate": 0.1, **kw}
  ),
  "group_l1_prox": lambda **kw: optax_l1.group_l1_prox(**{"l1": 0.1, "learning_rate": 0.1, **kw}),
}
OPTIMIZERS = ["sgd", "adam", "adamw", "rmsprop", "adagrad", "proximal"]
# (factory, argument, value) triples that another test file already checks.
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
  for value in BAD_NUMBERS:
    yield pytest.param("group_l1_prox", "learning_rate", value, id=f"group_l1_prox-lr-{value}")
    yield pytest.param("group_l1_prox", "l1", value, id=f"group_l1_prox-l1-{value}")


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
    (lambda: preconditioners.adam(b1=1.0), "b1"),
    (lambda: optax_l1.sgd(0.1, l1=0.1, momentum=1.5), "momentum"),
    (lambda: preconditioners.sgd(momentum=2.0), "momentum"),
  ],
  ids=[
    "adam-b1=1",
    "adam-b2=1",
    "adam-b1=1.5",
    "adamw-b2=1.5",
    "precond_adam-b1=1",
    "sgd-momentum=1.5",
    "precond_sgd-momentum=2",
  ],
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
    ([0.1, 0.2], ValueError, r"^l1 must be a scalar or an optax schedule, got shape \(2,\)"),
    (None, ValueError, r"^l1 must be a finite number >= 0"),
    (object(), TypeError, r"^l1 must be a non-negative number or an optax schedule"),
    (1j, TypeError, r"^l1 must be a non-negative number or an optax schedule"),
    (jnp.float32(-1.0), ValueError, r"^l1 must be a finite number >= 0"),
  ],
  ids=["list", "None", "object", "complex", "negative_jax_scalar"],
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
  # so a negative l1 adds |threshold| to every weight. With a zero gradient Adam's metric is
  # d = eps, so the threshold is 0.1 * -1 / 1e-8 = -1e7.
  tx = injected(learning_rate=0.1, l1=0.1)
  state = tx.init(params)
  state.hyperparams["l1"] = jnp.asarray(-1.0)
  updates, _ = jax.jit(tx.update)(jnp.zeros(2), state, params)
  np.testing.assert_allclose(optax.apply_updates(params, updates), params + 1e7, rtol=1e-6)


def test_a_schedule_returning_a_negative_l1_is_not_checked():
  params = jnp.array([0.5, -1.0])
  tx = optax_l1.sgd(0.1, l1=lambda count: -1.0)
  updates, _ = tx.update(jnp.zeros(2), tx.init(params), params)
  # soft(x, -c) = x + c: the threshold -0.1 adds 0.1 to every weight (see soft_threshold).
  np.testing.assert_allclose(optax.apply_updates(params, updates), [0.6, -0.9], rtol=1e-6)


# ----------------------------------------------------------------------------------------------
# Masks and thresholds that do not match the params.
# ----------------------------------------------------------------------------------------------

PARAMS = {"kernel": jnp.array([[0.5, -1e-3], [2.0, 0.0]]), "bias": jnp.array([1e-3, -0.5])}
TRANSFORMATIONS = {
  "sgd": lambda **kw: optax_l1.sgd(0.1, l1=0.1, **kw),
  "adam": lambda **kw: optax_l1.adam(0.1, l1=0.1, **kw),
  "adamw": lambda **kw: optax_l1.adamw(0.1, l1=0.1, **kw),
  "rmsprop": lambda **kw: optax_l1.rmsprop(0.1, l1=0.1, **kw),
  "adagrad": lambda **kw: optax_l1.adagrad(0.1, l1=0.1, **kw),
  "proximal": lambda **kw: optax_l1.proximal(preconditioners.rmsprop(), 0.1, l1=0.1, **kw),
  "l1_prox": lambda **kw: optax_l1.l1_prox(0.1, 0.1, **kw),
  "group_l1_prox": lambda **kw: optax_l1.group_l1_prox(0.1, 0.1, **kw),
}


@pytest.mark.parametrize(
  "name", ["sgd", "adamw", "rmsprop", "adagrad", "proximal", "group_l1_prox"]
)
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


@pytest.mark.parametrize(
  ("call", "name"),
  [
    (lambda x: optax_l1.hard_threshold(x, {"kernel": 1.0, "scale": 1.0}), "threshold"),
    (lambda x: optax_l1.block_soft_threshold(x, [1.0, 2.0]), "threshold"),
    (lambda x: optax_l1.prox_elastic_net(x, {"kernel": 1.0}, 0.0), "l1"),
    (lambda x: optax_l1.prox_elastic_net(x, 1.0, {"bias": 1.0}), "l2"),
    (lambda x: optax_l1.prox_elastic_net(x, 1.0, 0.0, {"kernel": 1.0}), "scaling"),
  ],
  ids=["hard_threshold", "block_soft_threshold", "elastic_l1", "elastic_l2", "elastic_scaling"],
)
def test_threshold_tree_of_the_wrong_structure_raises_naming_it(call, name):
  with pytest.raises(ValueError, match=rf"^{name} must have the structure of the params"):
    call(PARAMS)


@pytest.mark.parametrize(
  "call, name",
  [
    (lambda x, t: optax_l1.soft_threshold(x, t), "threshold"),
    (lambda x, t: optax_l1.hard_threshold(x, t), "threshold"),
    (lambda x, t: optax_l1.prox_elastic_net(x, 1.0, t), "l2"),
    (lambda x, t: optax_l1.prox_elastic_net(x, 1.0, 0.0, t), "scaling"),
  ],
  ids=["soft_threshold", "hard_threshold", "elastic_l2", "elastic_scaling"],
)
def test_threshold_array_that_does_not_broadcast_raises_naming_it(call, name):
  # A (4,) threshold against a (3,) leaf; a (3, 1) one would silently grow the leaf to (3, 3).
  for threshold in (jnp.ones(4), jnp.ones((3, 1))):
    with pytest.raises(ValueError, match=rf"^{name} of shape .* does not broadcast to a leaf"):
      call(jnp.ones(3), threshold)


# ----------------------------------------------------------------------------------------------
# update() without params.
# ----------------------------------------------------------------------------------------------

ALL_UPDATES = {
  **{name: make for name, make in TRANSFORMATIONS.items()},
  "keep_zeros": lambda: optax_l1.keep_zeros(),
  "adam_group_l1": lambda: optax_l1.adam(0.1, group_l1=0.1),
  "chain_sgd_l1_prox": lambda: optax.chain(optax.sgd(0.1), optax_l1.l1_prox(0.1, 0.1)),
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


# ----------------------------------------------------------------------------------------------
# Leaves the prox leaves alone, empty trees, zero-size arrays.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ALL_UPDATES))
def test_integer_and_bool_leaves_are_left_unchanged(name):
  params = {
    "w": jnp.array([0.5, 1e-4]),
    "steps": jnp.array([3, -7], jnp.int32),
    "on": jnp.array([True, False]),
  }
  grads = {"w": jnp.array([0.1, 0.0]), "steps": jnp.zeros(2, jnp.int32), "on": jnp.zeros(2, bool)}
  tx = ALL_UPDATES[name]()
  state = tx.init(params)
  for _ in range(2):
    updates, state = jax.jit(tx.update)(grads, state, params)
    new = optax.apply_updates(params, updates)
  for key in ("steps", "on"):
    assert new[key].dtype == params[key].dtype
    np.testing.assert_array_equal(new[key], params[key])
  assert np.all(np.isfinite(new["w"]))


def test_learning_rate_zero_is_a_no_op():
  params = jnp.array([0.5, 1e-9, 0.0, -2.0])
  for tx in [optax_l1.adam(0.0, l1=0.1), optax_l1.sgd(0.0, l1=10.0, momentum=0.9)]:
    updates, _ = tx.update(jnp.ones(4), tx.init(params), params)
    np.testing.assert_array_equal(optax.apply_updates(params, updates), params)


@pytest.mark.parametrize("name", ["l1_prox", "group_l1_prox", "keep_zeros", "chain_sgd_l1_prox"])
def test_empty_pytree_gives_empty_updates(name):
  tx = ALL_UPDATES[name]()
  for params in [{}, {"a": None}, ()]:
    updates, _ = tx.update(params, tx.init(params), params)
    assert updates == params


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop", "adagrad", "proximal"])
def test_empty_pytree_gives_empty_updates_in_the_optimizers(name):
  tx = ALL_UPDATES[name]()
  updates, _ = tx.update({}, tx.init({}), {})
  assert updates == {}


def test_none_leaves_are_kept_as_none():
  params = {"w": jnp.array([0.5, 1e-4]), "frozen": None}
  for name, make in ALL_UPDATES.items():
    tx = make()
    updates, _ = jax.jit(tx.update)({"w": jnp.zeros(2), "frozen": None}, tx.init(params), params)
    assert updates["frozen"] is None, name
    assert jax.tree.structure(updates) == jax.tree.structure(params), name


@pytest.mark.parametrize("name", list(ALL_UPDATES))
def test_zero_size_leaves_keep_their_shape(name):
  params = {
    "empty": jnp.zeros((0,)),
    "no_units": jnp.zeros((5, 0)),
    "no_inputs": jnp.zeros((0, 3)),
    "w": jnp.array([[0.5, 1e-4]]),
  }
  tx = ALL_UPDATES[name]()
  updates, _ = jax.jit(tx.update)(params, tx.init(params), params)
  new = optax.apply_updates(params, updates)
  for key, value in params.items():
    assert new[key].shape == value.shape and new[key].dtype == value.dtype, key
  assert np.all(np.isfinite(new["w"]))


# ----------------------------------------------------------------------------------------------
# Group axes.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
  "make",
  [
    lambda: optax_l1.group_l1_prox(0.1, 0.1, axis=2),
    lambda: optax_l1.group_l1_prox(0.1, 0.1, axis=-3),
    lambda: optax_l1.adam(0.1, group_l1=0.1, group_axis=-3),
    lambda: optax_l1.sgd(0.1, l1=0.0, group_l1=0.1, group_axis=2),
    lambda: optax_l1.adagrad(0.1, group_l1=0.1, group_axis=5),
  ],
  ids=["group_l1_prox-2", "group_l1_prox--3", "adam--3", "sgd-2", "adagrad-5"],
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


@pytest.mark.parametrize("axis", [1.0, "0", True], ids=["float", "str", "bool"])
def test_group_axis_that_is_not_an_int_raises_type_error(axis):
  with pytest.raises(TypeError, match=r"^group_axis must be a Python int"):
    optax_l1.adam(0.1, group_l1=0.1, group_axis=axis)
  with pytest.raises(TypeError, match=r"^axis must be a Python int"):
    optax_l1.group_l1_prox(0.1, 0.1, axis=axis)


def test_numpy_integer_axes_are_accepted():
  params = jnp.ones((3, 4))
  for tx in (
    optax_l1.adam(0.1, group_l1=0.1, group_axis=np.int64(0)),
    optax.chain(optax.sgd(0.1), optax_l1.group_l1_prox(0.1, 0.1, axis=np.int32(0))),
  ):
    updates, _ = tx.update(params, tx.init(params), params)
    assert updates.shape == (3, 4)


def test_block_soft_threshold_axis_that_is_not_an_int_raises_type_error():
  with pytest.raises(TypeError, match="axis"):
    optax_l1.block_soft_threshold(jnp.ones((2, 3)), 1.0, axis=1.0)


# ----------------------------------------------------------------------------------------------
# Combinations and types that make no sense.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
  ("make", "others"),
  [
    (lambda: optax_l1.rmsprop(0.1, l0=0.1, l2=0.1), "l2"),
    (lambda: optax_l1.adagrad(0.1, l0=0.1, group_l1=0.1), "group_l1"),
    (lambda: optax_l1.adamw(0.1, l0=0.1, l1=0.1, l2=0.1), "l1, l2"),
    (lambda: optax_l1.sgd(0.1, l0=0.1, l1=optax.constant_schedule(0.1)), "l1"),
    (lambda: optax_l1.sgd(0.1, l0=optax.constant_schedule(0.1), l1=0.1), "l1"),
    (
      lambda: optax_l1.proximal(preconditioners.sgd(), 0.1, l0=0.1, group_l1=0.1, l1=0.1),
      "l1, group_l1",
    ),
  ],
  ids=[
    "rmsprop-l2",
    "adagrad-group_l1",
    "adamw-l1_l2",
    "sgd-l1_schedule",
    "sgd-l0_schedule",
    "proximal-l1_group_l1",
  ],
)
def test_l0_with_another_penalty_raises(make, others):
  with pytest.raises(ValueError, match=f"^l0 cannot be combined with {others}:"):
    make()


def test_l0_with_zero_convex_penalties_is_allowed():
  optax_l1.sgd(0.1, l1=0.0, l2=0.0, group_l1=0.0, l0=0.1)
  optax_l1.adam(0.1, l1=jnp.float32(0.1), l0=0.1)  # an array is not known to be nonzero


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
