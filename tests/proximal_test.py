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


# ----------------------------------------------------------------------------------------------
# Groups per leaf: conv channels and attention heads, in Flax NNX's and Equinox's layouts.
# ----------------------------------------------------------------------------------------------


def _nnx_params():
  """Shapes of real NNX layers (two 1-D convs, an attention layer), values ~ N(0, 0.3²)."""
  nnx = pytest.importorskip("flax.nnx")  # the floors CI venv has no flax: skipped there

  rngs = nnx.Rngs(0)
  modules = {
    "conv1": nnx.Conv(2, 4, kernel_size=3, rngs=rngs),  # kernel (3, 2, 4): (window, in, out)
    "conv2": nnx.Conv(4, 5, kernel_size=3, rngs=rngs),
    "attention": nnx.MultiHeadAttention(  # q/k/v kernels (6, 2, 3), out kernel (2, 3, 5)
      num_heads=2, in_features=6, qkv_features=6, out_features=5, decode=False, rngs=rngs
    ),
  }
  params = {name: nnx.to_pure_dict(nnx.state(m, nnx.Param)) for name, m in modules.items()}
  return _random_like(params)


def _random_like(params, seed=0):
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda x: jnp.asarray(rng.normal(0, 0.3, x.shape), jnp.float32), params)


# Conv1's output channels by their incoming weights; conv1's channels again by their outgoing
# weights in conv2 (its input axis); heads by their slices of the value kernel and by their rows
# of the output kernel. A prefix: "value" covers its kernel and its bias, both (…, heads, dim).
NNX_AXES = {
  "conv1": {"kernel": -1, "bias": None},
  "conv2": {"kernel": -2, "bias": None},
  "attention": {"query": 1, "key": 1, "value": 1, "out": {"kernel": 0, "bias": None}},
}
NNX_PENALISED = {"conv1/kernel", "conv2/kernel", "attention/value/kernel", "attention/out/kernel"}


def _path(path):
  return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def _nnx_mask(params):
  return jax.tree_util.tree_map_with_path(lambda p, _: _path(p) in NNX_PENALISED, params)


def _equinox_params():
  """Equinox's layouts: conv weights (out, in, window), attention weights (heads·dim, in) and
  (out, heads·dim) for the output, a head a block of rows (columns) there."""
  eqx = pytest.importorskip("equinox")  # the floors CI venv has no equinox: skipped there

  keys = jax.random.split(jax.random.key(0), 3)
  model = {
    "conv1": eqx.nn.Conv1d(2, 4, 3, key=keys[0]),
    "conv2": eqx.nn.Conv1d(4, 5, 3, key=keys[1]),
    "attention": eqx.nn.MultiheadAttention(2, 6, output_size=5, key=keys[2]),
  }
  return _random_like(eqx.filter(model, eqx.is_array), seed=1)


EQX_LAYOUTS = {
  "conv1/weight": 0,  # conv1's output channels, incoming
  "conv2/weight": 1,  # conv1's channels, outgoing
  "attention/value_proj/weight": optax_l1.GroupAxis(0, size=3),  # a head: 3 rows
  "attention/output_proj/weight": optax_l1.GroupAxis(1, size=3),  # a head: 3 columns
}


def _equinox_axes(params):
  return jax.tree_util.tree_map_with_path(lambda p, _: EQX_LAYOUTS.get(_path(p)), params)


def _equinox_mask(params):
  return jax.tree_util.tree_map_with_path(lambda p, _: _path(p) in EQX_LAYOUTS, params)


def _layout_of(axes, path):
  """The reference's (axis, size) of a leaf, from a pytree of axes (None: the last axis)."""
  flat = dict(
    (_path(p), v)
    for p, v in jax.tree_util.tree_flatten_with_path(axes, is_leaf=lambda x: x is None)[0]
  )
  prefixes = [path.rsplit("/", n)[0] for n in range(path.count("/") + 1)]  # longest first
  layout = next((flat[p] for p in prefixes if p in flat), None)
  layout = -1 if layout is None else layout
  if isinstance(layout, optax_l1.GroupAxis):
    return layout.axis, layout.size
  return layout, 1


def _reference_run(params, grads, lr, lam, penalised, layout_of):
  """Each leaf on its own (Adam is elementwise, the groups lie within a leaf): Adam in float64,
  then the group lasso in its metric on the penalised leaves, loops over the groups."""
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  out = {}
  for i, (path, leaf) in enumerate(flat):
    name = _path(path)
    axis, size = layout_of(name)
    prox = None
    if name in penalised:

      def prox(z, s, k, axis=axis, size=size):
        return references.group_l1_in_metric(z, lam, s, axis, size)

    else:

      def prox(z, s, k):
        return z

    leaf_grads = [jax.tree.leaves(g)[i] for g in grads]
    out[name] = references.run(references.adam(lr, prox=prox), leaf, leaf_grads)[-1]
  return out


def _grads_like(params, steps=4, seed=2):
  rng = np.random.default_rng(seed)
  return [
    jax.tree.map(lambda x: jnp.asarray(rng.normal(0, 0.1, x.shape), jnp.float32), params)
    for _ in range(steps)
  ]


def _with_a_small_first_group(params, penalised, layout_of):
  """``params`` with the first group of each penalised leaf scaled by 0.05 (a group to remove)."""

  def scale(path, x):
    if _path(path) not in penalised:
      return x
    axis, size = layout_of(_path(path))
    factor = np.ones(x.shape[axis])
    factor[:size] = 0.05
    return x * jnp.asarray(np.expand_dims(factor, [i for i in range(x.ndim) if i != axis % x.ndim]))

  return jax.tree_util.tree_map_with_path(scale, params)


@pytest.mark.parametrize("layout", ["nnx", "equinox"])
def test_per_leaf_groups_are_the_group_lasso_of_a_numpy_reference(layout):
  from jitted_run import run_jitted

  if layout == "nnx":
    params, axes, mask, penalised = _nnx_params(), NNX_AXES, _nnx_mask, NNX_PENALISED
    layout_of = lambda name: _layout_of(NNX_AXES, name)  # noqa: E731
  else:
    params, axes, mask = _equinox_params(), _equinox_axes, _equinox_mask
    penalised = set(EQX_LAYOUTS)
    layout_of = lambda name: _layout_of(_equinox_axes(params), name)  # noqa: E731
  params = _with_a_small_first_group(params, penalised, layout_of)
  grads = _grads_like(params)
  lr, lam = 0.05, 0.1
  tx = optax_l1.adam(lr, group_l1=lam, group_axis=axes, mask=mask)
  history, _ = run_jitted(tx, params, grads)
  got = {_path(p): np.asarray(x) for p, x in jax.tree_util.tree_flatten_with_path(history[-1])[0]}
  expected = _reference_run(params, grads, lr, lam, penalised, layout_of)
  assert set(got) == set(expected)
  for name, w in expected.items():
    np.testing.assert_array_equal(got[name] == 0, w == 0, err_msg=name)
    np.testing.assert_allclose(got[name], w, atol=1e-6, err_msg=name)
  for name in penalised:  # each layout removes some of its groups, not all
    axis, size = layout_of(name)
    w = np.moveaxis(expected[name], axis, 0)
    dead = np.all(w.reshape(w.shape[0] // size, -1) == 0, axis=1)
    assert dead[0] and not dead.all(), (name, dead)


def test_a_function_a_pytree_and_a_prefix_of_axes_give_the_same_steps():
  params = _nnx_params()
  grads = _grads_like(params, steps=2)
  full = jax.tree.map(lambda _: -1, params)
  full["conv2"]["kernel"] = -2
  for name in ("query", "key", "value"):
    full["attention"][name] = {"kernel": 1, "bias": 1}
  full["attention"]["out"]["kernel"] = 0
  results = [
    run(optax_l1.adam(0.05, group_l1=0.6, group_axis=axes, mask=_nnx_mask), params, grads)
    for axes in (NNX_AXES, full, lambda p: NNX_AXES)
  ]
  for other in results[1:]:
    chex.assert_trees_all_equal(results[0], other)


def test_inject_hyperparams_with_per_leaf_group_axes_is_identical():
  layout_of = lambda name: _layout_of(NNX_AXES, name)  # noqa: E731
  params = _with_a_small_first_group(_nnx_params(), NNX_PENALISED, layout_of)
  grads = _grads_like(params, steps=3)
  plain = optax_l1.adam(0.05, group_l1=0.1, group_axis=NNX_AXES, mask=_nnx_mask)
  # A pytree of axes is not a number: inject_hyperparams leaves it alone. A function of the
  # params would be taken for a schedule: it goes in static_args, as a mask function does.
  pytree = optax.inject_hyperparams(optax_l1.adam, static_args="mask")(
    learning_rate=0.05, group_l1=0.1, group_axis=NNX_AXES, mask=_nnx_mask
  )
  function = optax.inject_hyperparams(optax_l1.adam, static_args=("mask", "group_axis"))(
    learning_rate=0.05, group_l1=0.1, group_axis=lambda p: NNX_AXES, mask=_nnx_mask
  )
  expected = run(plain, params, grads)
  assert 0 < np.mean(np.all(expected["conv2"]["kernel"] == 0, axis=(0, 2))) < 1  # groups on -2
  for got in (run(pytree, params, grads), run(function, params, grads)):
    jax.tree.map(lambda g, e: np.testing.assert_array_equal(g == 0, e == 0), got, expected)
    # Injected decays are float32 arrays (1 − β rounded in float32), as in alias_test.
    chex.assert_trees_all_close(got, expected, rtol=1e-4, atol=1e-7)


def test_a_group_axis_out_of_range_for_one_leaf_raises_at_init_naming_it():
  params = _nnx_params()
  axes = {**NNX_AXES, "conv2": {"kernel": 3, "bias": None}}
  tx = optax_l1.adam(0.05, group_l1=0.6, group_axis=axes, mask=_nnx_mask)
  with pytest.raises(ValueError, match=r"group axis 3 .* shape \(3, 4, 5\) \(params\['conv2'\]"):
    tx.init(params)


def test_a_group_size_that_does_not_divide_the_axis_raises_naming_the_leaf():
  params = _equinox_params()
  axes = lambda p: jax.tree.map(lambda _: optax_l1.GroupAxis(0, size=4), p)  # noqa: E731
  tx = optax_l1.sgd(0.05, group_l1=0.6, group_axis=axes, mask=_equinox_mask)
  with pytest.raises(ValueError, match=r"value_proj.*length 6 along axis 0 is not a multiple"):
    tx.init(params)


def test_a_pytree_of_axes_that_does_not_match_the_params_raises():
  params = _nnx_params()
  tx = optax_l1.adam(0.05, group_l1=0.6, group_axis={"conv1": -1}, mask=_nnx_mask)
  with pytest.raises(ValueError, match=r"group_axis must be .* structure of the params"):
    tx.init(params)


@pytest.mark.parametrize(
  ("make", "error", "match"),
  [
    (lambda: optax_l1.adam(0.1, group_l1=0.1, group_axis={"w": 1.5}), TypeError, r"\['w'\]"),
    (lambda: optax_l1.adam(0.1, group_l1=0.1, group_axis=[True]), TypeError, r"\[0\]"),
    (lambda: optax_l1.GroupAxis(0, size=0), ValueError, "GroupAxis.size"),
    (lambda: optax_l1.GroupAxis(0.5), TypeError, "GroupAxis.axis"),
  ],
  ids=["float-leaf", "bool-leaf", "size-0", "float-axis"],
)
def test_a_bad_group_axis_raises_at_construction(make, error, match):
  with pytest.raises(error, match=match):
    make()
