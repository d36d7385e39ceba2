"""Tests of the compaction of dense MLPs with dead hidden units."""

import itertools
import json
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optax_l1

ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh, "gelu": jax.nn.gelu}


def random_mlp(sizes, seed):
  """Dense layers with 1/√fan_in weights and non-zero biases (so folded constants matter)."""
  rng = np.random.default_rng(seed)
  return [
    (
      (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32),
      rng.uniform(0.2, 1.0, n_out).astype(np.float32) * rng.choice([-1, 1], n_out),
    )
    for n_in, n_out in itertools.pairwise(sizes)
  ]


def forward(layers, activation, x):
  for k, (kernel, bias) in enumerate(layers):
    if k:
      x = activation(x)
    x = x @ kernel
    if bias is not None:
      x = x + bias
  return x


def assert_same_function(layers, compacted, activation, n_in, seed=0):
  """The jitted forward passes agree within 1e-5 on random inputs."""
  x = jax.random.normal(jax.random.key(seed), (64, n_in))
  run = jax.jit(forward, static_argnums=1)
  expected = run([(jnp.asarray(k), jnp.asarray(b)) for k, b in layers], activation, x)
  chex.assert_trees_all_close(run(compacted, activation, x), expected, atol=1e-5, rtol=0)


def layer_cost(n_in, n_out, bias=True):
  return n_in * n_out + bias * n_out, 2 * n_in * n_out + bias * n_out


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize(
  "sizes",
  [(6, 9, 4), (5, 12, 8, 3), (7, 10, 16, 6, 2), (3, 32, 5)],
  ids=lambda s: "-".join(map(str, s)),
)
def test_removes_dead_units_of_either_side_and_keeps_the_function(name, sizes):
  activation = ACTIVATIONS[name]
  layers = random_mlp(sizes, seed=len(sizes))
  rng = np.random.default_rng(sum(sizes))
  expected_kept, expected_folded, expected_unused = [], [], []
  for k, width in enumerate(sizes[1:-1]):
    # A third of each hidden layer with no inputs, a third without outputs, some with neither.
    units = rng.permutation(width)
    no_inputs, no_outputs, neither = (
      units[: width // 3],
      units[width // 3 : 2 * width // 3],
      units[:1],
    )
    layers[k][0][:, no_inputs] = 0.0
    layers[k + 1][0][no_outputs] = 0.0
    layers[k + 1][0][neither] = 0.0
    dead = set(no_inputs) | set(no_outputs)
    expected_kept.append(tuple(j for j in range(width) if j not in dead))
    expected_folded.append(len(set(no_inputs) - set(neither)))
    expected_unused.append(len(set(no_outputs) | set(neither)))

  compacted, report = optax_l1.compact_dense_stack(layers, activation)

  assert_same_function(layers, compacted, activation, sizes[0])
  assert report.kept == tuple(expected_kept)
  assert report.units_before == sizes[1:-1]
  assert report.units_after == tuple(len(kept) for kept in expected_kept)
  assert report.folded == tuple(expected_folded)
  assert report.unused == tuple(expected_unused)
  widths = (sizes[0], *report.units_after, sizes[-1])
  assert [k.shape for k, _ in compacted] == list(itertools.pairwise(widths))
  costs = [layer_cost(a, b) for a, b in itertools.pairwise(widths)]
  assert report.params_after == sum(p for p, _ in costs)
  assert report.flops_after == sum(f for _, f in costs)
  costs = [layer_cost(a, b) for a, b in itertools.pairwise(sizes)]
  assert (report.params_before, report.flops_before) == (
    sum(p for p, _ in costs),
    sum(f for _, f in costs),
  )
  # The surviving weights are the original ones, untouched (biases after the first may fold).
  index = [range(sizes[0]), *report.kept, range(sizes[-1])]
  for k, (kernel, _) in enumerate(compacted):
    np.testing.assert_array_equal(kernel, layers[k][0][np.ix_(index[k], index[k + 1])])
  np.testing.assert_array_equal(compacted[0][1], layers[0][1][list(index[1])])


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_removals_cascade_forwards_and_backwards(name):
  activation = ACTIVATIONS[name]
  sizes = (5, 8, 7, 6, 3)
  layers = random_mlp(sizes, seed=1)
  (w0, _), (w1, _), (w2, _), _ = layers
  w0[:, [0, 3]] = 0.0  # hidden-1 units 0 and 3: constant
  w1[[1, 2]] = 0.0  # hidden-1 units 1 and 2: unused (2 is constant too)
  w0[:, 2] = 0.0
  # Forwards: hidden-2 unit 0 reads only hidden-1 unit 3, so it becomes constant once 3 is folded.
  w1[:, 0] = 0.0
  w1[3, 0] = 0.7
  # Backwards: hidden-3 unit 0 is unused; hidden-2 unit 1 feeds only it; hidden-1 unit 4 feeds
  # only hidden-2 unit 1. Each becomes unused once the next is removed.
  layers[3][0][0] = 0.0
  w2[1] = 0.0
  w2[1, 0] = -0.8
  w1[4] = 0.0
  w1[4, 1] = 0.9

  compacted, report = optax_l1.compact_dense_stack(layers, activation)

  assert_same_function(layers, compacted, activation, sizes[0])
  assert report.kept == ((5, 6, 7), (2, 3, 4, 5, 6), (1, 2, 3, 4, 5))
  assert report.folded == (2, 1, 0)
  assert report.unused == (3, 1, 1)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_a_dead_layer_leaves_a_constant_network(name):
  activation = ACTIVATIONS[name]
  layers = random_mlp((4, 6, 5, 3), seed=2)
  layers[0][0][:] = 0.0
  compacted, report = optax_l1.compact_dense_stack(layers, activation)
  assert report.units_after == (0, 0)
  assert [k.shape for k, _ in compacted] == [(4, 0), (0, 0), (0, 3)]
  assert_same_function(layers, compacted, activation, 4)
  x = jnp.ones((2, 4))
  constant = forward(layers, activation, np.zeros((1, 4), np.float32))[0]
  chex.assert_trees_all_close(
    forward(compacted, activation, x), jnp.stack([constant] * 2), atol=1e-5
  )


def test_nothing_dead_changes_nothing():
  layers = random_mlp((4, 6, 3), seed=3)
  compacted, report = optax_l1.compact_dense_stack(layers, jax.nn.relu)
  chex.assert_trees_all_equal(compacted, [(jnp.asarray(k), jnp.asarray(b)) for k, b in layers])
  assert report.units_before == report.units_after == (6,)
  assert (report.folded, report.unused, report.units_removed_fraction) == ((0,), (0,), 0.0)
  assert report.params_before == report.params_after == 4 * 6 + 6 + 6 * 3 + 3


def test_single_layer_is_returned_as_is():
  layers = random_mlp((4, 3), seed=4)
  layers[0][0][:, 1] = 0.0  # an output unit: never removed
  compacted, report = optax_l1.compact_dense_stack(layers, jax.nn.relu)
  assert compacted[0][0].shape == (4, 3)
  assert report.units_before == report.units_after == ()
  assert report.units_removed_fraction == 0.0


def test_missing_biases():
  rng = np.random.default_rng(5)
  w0, w1 = (
    rng.standard_normal((4, 5)).astype(np.float32),
    rng.standard_normal((5, 2)).astype(np.float32),
  )
  w0[:, [0, 1]] = 0.0
  # relu(0) = 0: nothing to fold, the last layer keeps no bias.
  compacted, _ = optax_l1.compact_dense_stack([(w0, None), (w1, None)], jax.nn.relu)
  assert compacted[0][1] is None and compacted[1][1] is None
  # sigmoid(0) = 0.5: the folded constant needs a bias.
  compacted, report = optax_l1.compact_dense_stack([(w0, None), (w1, None)], jax.nn.sigmoid)
  np.testing.assert_allclose(compacted[1][1], 0.5 * (w1[0] + w1[1]), atol=1e-6)
  assert compacted[0][1] is None
  assert report.params_after == 4 * 3 + 3 * 2 + 2
  assert report.flops_before == 2 * 4 * 5 + 2 * 5 * 2  # no bias adds
  assert_same_function(
    [(w0, np.zeros(5, np.float32)), (w1, np.zeros(2, np.float32))], compacted, jax.nn.sigmoid, 4
  )


def test_keeps_dtypes():
  layers = [
    (jnp.asarray(k, jnp.bfloat16), jnp.asarray(b, jnp.bfloat16))
    for k, b in random_mlp((4, 6, 3), 6)
  ]
  layers[0] = (layers[0][0].at[:, 0].set(0), layers[0][1])
  compacted, report = optax_l1.compact_dense_stack(layers, jax.nn.gelu)
  assert report.units_after == (5,)
  assert (
    {k.dtype for k, b in compacted} == {b.dtype for k, b in compacted} == {jnp.dtype(jnp.bfloat16)}
  )


def test_report_to_dict_is_json_and_str_is_a_table():
  layers = random_mlp((4, 8, 6, 2), seed=7)
  layers[0][0][:, :6] = 0.0
  _, report = optax_l1.compact_dense_stack(layers, jax.nn.relu)
  data = json.loads(json.dumps(report.to_dict()))
  assert data["units_before"] == [8, 6] and data["units_after"] == [2, 6]
  assert data["kept"] == [[6, 7], [0, 1, 2, 3, 4, 5]]
  assert data["units_removed_fraction"] == pytest.approx(6 / 14)
  lines = str(report).splitlines()
  assert lines[0].split() == ["before", "after", "removed"]
  assert lines[2].split() == ["hidden", "1", "units", "8", "2", "75.00%"]
  assert lines[-1].split()[:3] == ["FLOPs", "/", "example"]
  with pytest.raises(AttributeError):
    report.params_after = 0  # frozen


@pytest.mark.parametrize(
  ("layers", "message"),
  [
    ([], "at least one"),
    ([(np.ones((2, 3, 4)), None)], "2-D"),
    ([(np.ones((2, 3)), np.ones(2))], "bias must have shape"),
    ([(np.ones((2, 3)), None), (np.ones((4, 1)), None)], "3 outputs but layers\\[1\\] has 4"),
  ],
)
def test_rejects_malformed_layers(layers, message):
  with pytest.raises(ValueError, match=message):
    optax_l1.compact_dense_stack(layers, jax.nn.relu)


def test_compact_mlp_on_the_digits_model():
  from flax import nnx

  from optax_l1.examples import digits

  model = digits.MLP(32, rngs=nnx.Rngs(0))
  dead = np.array([0, 3, 4, 10, 11, 12, 20, 31])
  model.linear1.kernel[...] = model.linear1.kernel[...].at[:, dead].set(0.0)
  model.linear1.bias[...] = jax.random.uniform(jax.random.key(1), (32,), minval=-1.0, maxval=1.0)
  model.linear2.bias[...] = jnp.linspace(-1.0, 1.0, 10)
  original = jax.tree.map(jnp.copy, nnx.state(model))

  small, report = optax_l1.compact_mlp([model.linear1, model.linear2], jax.nn.relu)

  assert isinstance(small, nnx.Sequential)
  assert [type(layer) for layer in small.layers] == [nnx.Linear, type(jax.nn.relu), nnx.Linear]
  assert small.layers[0].kernel.shape == (64, 24) and small.layers[2].kernel.shape == (24, 10)
  assert report.units_after == (24,) and report.folded == (8,)
  assert report.kept == (tuple(j for j in range(32) if j not in dead),)
  x = jnp.asarray(digits.load_digits_split().x_test)
  chex.assert_trees_all_close(
    nnx.jit(lambda m, x: m(x))(small, x), nnx.jit(lambda m, x: m(x))(model, x), atol=1e-5, rtol=0
  )
  chex.assert_trees_all_equal(nnx.state(model), original)  # the original is untouched
  assert report.params_after == 64 * 24 + 24 + 24 * 10 + 10


def test_compact_mlp_keeps_the_layer_settings():
  from flax import nnx

  first = nnx.Linear(3, 4, use_bias=False, precision="highest", rngs=nnx.Rngs(0))
  last = nnx.Linear(4, 2, param_dtype=jnp.bfloat16, rngs=nnx.Rngs(1))
  first.kernel[...] = first.kernel[...].at[:, 1].set(0.0)
  small, _ = optax_l1.compact_mlp([first, last], jax.nn.tanh)
  new_first, _, new_last = small.layers
  assert new_first.bias is None and new_first.precision == "highest"
  assert new_last.kernel[...].dtype == jnp.bfloat16 == new_last.bias[...].dtype


def test_compact_mlp_rejects_other_modules():
  from flax import nnx

  with pytest.raises(TypeError, match=r"nnx\.Linear"):
    optax_l1.compact_mlp([nnx.Linear(2, 2, rngs=nnx.Rngs(0)), jax.nn.relu], jax.nn.relu)


def test_import_does_not_need_flax():
  code = (
    "import sys; sys.modules['flax'] = None\n"  # any `import flax` now raises ImportError
    "import jax, numpy as np, optax_l1\n"
    "layers = [(np.ones((2, 3), np.float32), None), (np.ones((3, 1), np.float32), None)]\n"
    "print(optax_l1.compact_dense_stack(layers, jax.nn.relu)[1].units_after)\n"
  )
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "(3,)"
