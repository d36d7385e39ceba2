"""Tests of the compaction of convolution stacks with dead channels."""

import itertools
import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

import optax_l1

ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh}


def conv(n_in, n_out, kernel_size, seed, **options):
  """An ``nnx.Conv`` with 1/√fan_in weights and non-zero biases (so constants matter)."""
  rng = np.random.default_rng(seed)

  def kernel_init(key, shape, dtype):  # NumPy draws: no JAX compilation per shape
    return jnp.asarray(rng.standard_normal(shape) / np.sqrt(np.prod(shape[:-1])), dtype)

  def bias_init(key, shape, dtype):
    return jnp.asarray(rng.uniform(-1.0, 1.0, shape), dtype)

  return nnx.Conv(
    n_in,
    n_out,
    kernel_size,
    kernel_init=kernel_init,
    bias_init=bias_init,
    rngs=nnx.Rngs(0),
    **options,
  )


def set_bias(layer, values):
  layer.bias[...] = jnp.asarray(values, jnp.float32)


def zero(variable, index):
  value = np.array(variable[...])
  value[index] = 0.0
  variable[...] = jnp.asarray(value)


def cut_inputs(layer, channels):
  """Channels of ``layer``'s output with no incoming weights."""
  zero(layer.kernel, (..., list(channels)))


def cut_outputs(layer, channels):
  """Channels of ``layer``'s input that nothing reads."""
  zero(layer.kernel, (..., list(channels), slice(None)))


def original(convs, activation):
  def run(x):
    for k, layer in enumerate(convs):
      x = layer(activation(x) if k else x)
    return x

  return run


def assert_same_function(convs, small, activation, spatial, seed=0):
  """The compacted stack computes the original's outputs within 1e-5, under jax.jit."""
  x = jax.random.normal(jax.random.key(seed), (3, *spatial, convs[0].in_features))
  got, expected = jax.jit(lambda x: (small(x), original(convs, activation)(x)))(x)
  chex.assert_trees_all_close(got, expected, atol=1e-5, rtol=0)


def positions(n, kernel, padding, stride=1):
  """Output positions of a 1-D conv, from lax's definitions of SAME and VALID."""
  return -(-n // stride) if padding == "SAME" else (n - kernel) // stride + 1


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("rank", [1, 2])
def test_removes_dead_channels_of_either_side_and_keeps_the_function(rank, padding, name):
  activation = ACTIVATIONS[name]
  sizes, kernels = (3, 8, 6, 2), (3, 3, 1)
  convs = [
    conv(a, b, (k,) * rank, seed=i, padding=padding)
    for i, (a, b, k) in enumerate(zip(sizes, sizes[1:], kernels, strict=False))
  ]
  # Hidden layer 1: channels 0 and 1 constant (σ(0.4), σ(0.9)), 2 constant at σ(-0.5), which is
  # 0 for the ReLU, 5 and 6 unread, 6 constant too. Hidden layer 2: channel 3 unread.
  biases = np.array(convs[0].bias[...])
  biases[[0, 1, 2, 6]] = [0.4, 0.9, -0.5, 0.3]
  set_bias(convs[0], biases)
  cut_inputs(convs[0], [0, 1, 2, 6])
  cut_outputs(convs[1], [5, 6])
  cut_outputs(convs[2], [3])

  small, report = optax_l1.compact_conv_stack(convs, activation, input_shape=(9,) * rank)

  assert_same_function(convs, small, activation, (9,) * rank)
  # VALID: the three constants fold into the next bias. SAME: they merge into the one of largest
  # |σ(b)|, channel 1 (with the ReLU, channel 2's σ(b) = 0 goes without a merge).
  removed = {0, 1, 2} if padding == "VALID" else {0, 2}
  kept_1 = tuple(j for j in range(8) if j not in removed | {5, 6})
  assert report.kept == (kept_1, (0, 1, 2, 4, 5))
  assert report.units_before == (8, 6) and report.units_after == (len(kept_1), 5)
  assert report.folded == (len(removed), 0) and report.unused == (2, 1)
  widths = (3, len(kept_1), 5, 2)
  lengths = [9]  # the spatial length after each conv
  for k in kernels:
    lengths.append(positions(lengths[-1], k, padding))

  def cost(widths):
    params = flops = 0
    for a, b, k, length in zip(widths, widths[1:], kernels, lengths[1:], strict=False):
      weights = k**rank * a * b
      params += weights + b
      flops += length**rank * (2 * weights + b)
    return params, flops

  assert (report.params_before, report.flops_before) == cost(sizes)
  assert (report.params_after, report.flops_after) == cost(widths)
  assert [layer.kernel.shape[-2:] for layer in small.layers[::2]] == list(
    itertools.pairwise(widths)
  )


@pytest.mark.parametrize(
  ("options", "folds"),
  [
    ({"padding": "VALID", "strides": 2, "kernel_dilation": 2}, True),
    ({"padding": "CIRCULAR"}, True),
    ({"padding": "REFLECT", "strides": 2}, True),
    ({"padding": 0}, True),
    ({"padding": "SAME", "kernel_size": 1, "strides": 2}, True),
    ({"padding": [(1, 0)]}, False),
    ({"padding": "CAUSAL"}, False),
    ({"padding": 0, "input_dilation": 2}, False),
  ],
  ids=[
    "valid-strided-dilated",
    "circular",
    "reflect",
    "explicit-0",
    "same-1x1",
    "explicit-1",
    "causal",
    "input-dilation",
  ],
)
def test_a_constant_channel_folds_exactly_where_every_window_sees_it(options, folds):
  """Folded into the bias where no window reads a padding zero; merged into one otherwise."""
  options = {"kernel_size": 3, **options}
  first = conv(2, 6, 3, seed=0, padding="SAME")
  last = conv(6, 3, seed=1, **options)
  set_bias(first, [0.5, -1.0, 0.8, 0.2, 0.3, -0.4])
  cut_inputs(first, [0, 1, 3])  # σ(b) = tanh(0.5), tanh(-1.0), tanh(0.2): the largest is 1's
  small, report = optax_l1.compact_conv_stack([first, last], jnp.tanh)
  assert_same_function([first, last], small, jnp.tanh, (11,))
  assert report.kept == (((2, 4, 5),) if folds else ((1, 2, 4, 5),))
  assert report.folded == ((3,) if folds else (2,))


def test_constant_relu_channels_with_a_zero_value_are_dropped_under_same_padding():
  first, last = conv(2, 5, 3, seed=2), conv(5, 2, 3, seed=3)  # SAME, the default
  set_bias(first, [-0.2, -0.7, 0.0, 0.6, 0.1])
  cut_inputs(first, [0, 1, 2, 3])  # relu(b) = 0, 0, 0, 0.6
  small, report = optax_l1.compact_conv_stack([first, last], jax.nn.relu)
  assert report.kept == ((3, 4),) and report.folded == (3,)
  assert_same_function([first, last], small, jax.nn.relu, (7,))


def test_a_mask_on_the_next_conv_keeps_the_constant_channels_it_cannot_merge():
  rng = np.random.default_rng(0)
  mask = jnp.asarray(rng.integers(0, 2, (3, 4, 2)), jnp.float32)
  first, last = conv(2, 4, 3, seed=4), conv(4, 2, 3, seed=5, mask=mask)
  set_bias(first, [0.3, 0.6, -0.5, 0.2])
  cut_inputs(first, [0, 1, 2])
  cut_outputs(last, [3])
  small, report = optax_l1.compact_conv_stack([first, last], jax.nn.relu)
  assert report.kept == ((0, 1),)  # 2: relu(-0.5) = 0; 3: unread
  np.testing.assert_array_equal(small.layers[-1].mask, mask[:, :2])
  assert_same_function([first, last], small, jax.nn.relu, (6,))


def test_removals_cascade_forwards_and_backwards():
  convs = [conv(2, 5, 3, seed=6, padding="VALID"), conv(5, 4, 3, seed=7, padding="VALID")]
  convs.append(conv(4, 3, 3, seed=8, padding="VALID"))
  # Forwards: hidden-2 channel 0 reads only hidden-1 channel 1, which is constant.
  cut_inputs(convs[0], [1])
  kernel = np.array(convs[1].kernel[...])
  kernel[..., :, 0] = 0.0
  kernel[1, 1, 0] = 0.7
  convs[1].kernel[...] = jnp.asarray(kernel)
  # Backwards: hidden-2 channel 3 is unread; hidden-1 channel 4 feeds only it.
  cut_outputs(convs[2], [3])
  kernel = np.array(convs[1].kernel[...])
  kernel[..., 4, :] = 0.0
  kernel[0, 4, 3] = -0.9
  convs[1].kernel[...] = jnp.asarray(kernel)
  small, report = optax_l1.compact_conv_stack(convs, jnp.tanh)
  assert report.kept == ((0, 2, 3), (1, 2))
  assert report.folded == (1, 1) and report.unused == (1, 1)
  assert_same_function(convs, small, jnp.tanh, (12,))


def cut_grouped_outputs(layer, channels):
  """Channels of a grouped ``layer``'s input that nothing reads: kernel (*window, in/G, out)."""
  kernel = np.array(layer.kernel[...])
  per_in = kernel.shape[-2]
  per_out = kernel.shape[-1] // layer.feature_group_count
  for j in channels:
    group = j // per_in
    kernel[..., j % per_in, group * per_out : (group + 1) * per_out] = 0.0
  layer.kernel[...] = jnp.asarray(kernel)


def test_groups_lose_as_many_channels_each():
  first = conv(4, 8, 3, seed=9, feature_group_count=2)
  last = conv(8, 4, 3, seed=10, feature_group_count=4)
  cut_grouped_outputs(last, [0, 1, 4, 5, 6])  # blocks of lcm(2, 4) = 4: {0, 1}, {}, {4, 5}, {6}
  small, report = optax_l1.compact_conv_stack([first, last], jax.nn.relu)
  assert report.kept == ((0, 1, 2, 3, 4, 5, 6, 7),)  # a block with nothing to remove
  cut_grouped_outputs(last, [2, 7])  # now 2, 1, 2, 2 removable
  small, report = optax_l1.compact_conv_stack([first, last], jax.nn.relu)
  assert report.kept == ((1, 3, 5, 7),)  # the first removable channel of each block goes
  assert small.layers[0].feature_group_count == 2 and small.layers[2].feature_group_count == 4
  assert small.layers[2].kernel.shape == (3, 1, 4)
  assert_same_function([first, last], small, jax.nn.relu, (7,))


def test_a_depthwise_conv_keeps_its_channels_unless_all_are_removable():
  first, depthwise = conv(3, 4, 3, seed=11), conv(4, 4, 3, seed=12, feature_group_count=4)
  last = conv(4, 2, 1, seed=13)
  cut_outputs(last, [1])
  small, report = optax_l1.compact_conv_stack([first, depthwise, last], jax.nn.relu)
  assert report.kept == ((0, 1, 2, 3), (0, 1, 2, 3))
  assert_same_function([first, depthwise, last], small, jax.nn.relu, (6,))


def test_a_dead_layer_leaves_zero_channels_and_the_same_function():
  first, last = conv(2, 4, 3, seed=14, padding="VALID"), conv(4, 3, 3, seed=15, padding="VALID")
  cut_inputs(first, range(4))
  small, report = optax_l1.compact_conv_stack([first, last], jax.nn.gelu)
  assert report.units_after == (0,) and small.layers[0].kernel.shape == (3, 2, 0)
  assert_same_function([first, last], small, jax.nn.gelu, (8,))


def test_nothing_dead_changes_nothing_and_a_single_conv_is_copied():
  first, last = conv(2, 4, 3, seed=16), conv(4, 3, 3, seed=17, use_bias=False)
  small, report = optax_l1.compact_conv_stack([first, last], jax.nn.relu)
  assert report.units_before == report.units_after == (4,)
  assert report.params_before == report.params_after == 3 * 2 * 4 + 4 + 3 * 4 * 3
  assert small.layers[2].bias is None
  chex.assert_trees_all_equal(nnx.state(small.layers[0]), nnx.state(first))
  cut_inputs(first, [0])  # an output channel: never removed
  alone, report = optax_l1.compact_conv_stack([first], jax.nn.relu)
  assert report.units_before == () and alone.layers[0].kernel.shape == first.kernel.shape


def test_keeps_the_settings_and_leaves_the_originals_untouched():
  first = conv(2, 4, (3, 3), seed=18, precision="highest", param_dtype=jnp.bfloat16)
  last = conv(4, 2, (3, 3), seed=19, strides=(2, 1), padding="VALID", use_bias=False)
  cut_inputs(first, [1])
  states = [jax.tree.map(jnp.copy, nnx.state(layer)) for layer in (first, last)]
  small, report = optax_l1.compact_conv_stack([first, last], jax.nn.sigmoid)
  for layer, state in zip((first, last), states, strict=True):
    chex.assert_trees_all_equal(nnx.state(layer), state)
  new_first, _, new_last = small.layers
  assert new_first.precision == "highest" and new_first.kernel[...].dtype == jnp.bfloat16
  assert (new_last.strides, new_last.padding) == ((2, 1), "VALID")
  assert new_last.bias is not None  # sigmoid(b) folded: the conv needs a bias now
  assert report.folded == (1,)
  x = jax.random.normal(jax.random.key(1), (2, 7, 6, 2))
  expected = last(jax.nn.sigmoid(first(x)))
  chex.assert_trees_all_close(small(x), expected, atol=1e-5, rtol=0)


def test_a_sequential_of_the_returned_form_is_compacted_again():
  first, last = conv(2, 6, 3, seed=20), conv(6, 2, 3, seed=21)
  cut_outputs(last, [0, 2])
  small, report = optax_l1.compact_conv_stack([first, last], jax.nn.relu)
  again, second = optax_l1.compact_conv_stack(small, jax.nn.relu)
  assert second.units_before == second.units_after == report.units_after == (4,)
  x = jnp.ones((1, 5, 2))
  np.testing.assert_array_equal(again(x), small(x))


def test_report_to_dict_is_json_and_str_is_a_table():
  first, last = conv(2, 4, 3, seed=22), conv(4, 2, 3, seed=23)
  cut_outputs(last, [1])
  _, report = optax_l1.compact_conv_stack([first, last], jax.nn.relu)
  data = json.loads(json.dumps(report.to_dict()))
  assert (data["unit"], data["flops_per"], data["kept"]) == (
    "channels",
    "output position",
    [[0, 2, 3]],
  )
  # Without input_shape, one output position per conv: 2·kernel + bias.
  assert report.flops_before == 2 * (3 * 2 * 4) + 4 + 2 * (3 * 4 * 2) + 2
  lines = str(report).splitlines()
  assert lines[2].split() == ["hidden", "1", "channels", "4", "3", "25.00%"]
  assert lines[-1].split()[:4] == ["FLOPs", "/", "output", "position"]


@settings(max_examples=3)
@given(
  rank=st.sampled_from([1, 2]),
  padding=st.sampled_from(["SAME", "VALID", "CIRCULAR"]),
  stride=st.sampled_from([1, 2]),
  seed=st.integers(0, 2**16),
)
def test_random_stacks_keep_the_function_and_compact_once_for_all(rank, padding, stride, seed):
  rng = np.random.default_rng(seed)
  sizes = (2, 6, 5, 3)
  convs = [
    conv(a, b, (3,) * rank, seed=seed + i, padding=padding, strides=stride if i == 1 else 1)
    for i, (a, b) in enumerate(itertools.pairwise(sizes))
  ]
  for k, width in enumerate(sizes[1:-1]):
    cut_inputs(convs[k], rng.choice(width, 2, replace=False))
    cut_outputs(convs[k + 1], rng.choice(width, 2, replace=False))
  small, report = optax_l1.compact_conv_stack(convs, jnp.tanh)
  assert_same_function(convs, small, jnp.tanh, (8,) * rank)
  _, again = optax_l1.compact_conv_stack(small, jnp.tanh)
  assert again.units_after == again.units_before == report.units_after


def bad_padding():
  return [conv(2, 3, 3, seed=0), conv(3, 2, 3, seed=1, padding="SIDEWAYS")]


@pytest.mark.parametrize(
  ("make", "activation", "error", "message"),
  [
    (lambda: [], jax.nn.relu, ValueError, "at least one"),
    (
      lambda: [conv(2, 3, 3, seed=0), conv(4, 2, 3, seed=1)],
      jax.nn.relu,
      ValueError,
      r"convs\[0\] has 3 output channels but convs\[1\] has 4 input",
    ),
    (
      lambda: [conv(2, 3, 3, seed=0), conv(3, 2, (3, 3), seed=1)],
      jax.nn.relu,
      ValueError,
      r"convs\[1\] is 2-D but convs\[0\] is 1-D",
    ),
    (
      lambda: [conv(2, 3, 3, seed=0), conv(3, 2, 3, seed=1)],
      jax.nn.softmax,
      ValueError,
      "must be elementwise.*softmax",
    ),
    (lambda: [conv(2, 3, 3, seed=0), conv(3, 2, 3, seed=1)], "relu", TypeError, "callable"),
    (bad_padding, jax.nn.relu, ValueError, r"convs\[1\]: padding 'SIDEWAYS' is not supported"),
    (
      lambda: [conv(2, 3, 3, seed=0), nnx.Linear(3, 2, rngs=nnx.Rngs(0))],
      jax.nn.relu,
      TypeError,
      r"convs\[1\] must be an nnx\.Conv, got Linear",
    ),
    (
      lambda: [nnx.ConvTranspose(2, 3, 3, rngs=nnx.Rngs(0))],
      jax.nn.relu,
      TypeError,
      r"convs\[0\] must be an nnx\.Conv, got ConvTranspose",
    ),
    (
      lambda: nnx.Sequential(conv(2, 3, 3, seed=0), jax.nn.gelu, conv(3, 2, 3, seed=1)),
      jax.nn.relu,
      TypeError,
      r"convs\.layers\[1\] must be the activation given",
    ),
  ],
  ids=[
    "empty",
    "channels",
    "rank",
    "softmax",
    "not callable",
    "padding",
    "linear",
    "transpose",
    "sequential",
  ],
)
def test_bad_input_is_an_error_naming_the_layer(make, activation, error, message):
  with pytest.raises(error, match=message):
    optax_l1.compact_conv_stack(make(), activation)


@pytest.mark.parametrize(
  ("input_shape", "message"),
  [((8, 8), r"1 positive ints"), ((0,), "positive ints"), ((3,), r"does not fit convs\[1\]")],
)
def test_an_input_shape_that_does_not_fit_is_an_error(input_shape, message):
  convs = [conv(2, 3, 3, seed=0, padding="VALID"), conv(3, 2, 3, seed=1, padding="VALID")]
  with pytest.raises(ValueError, match=message):
    optax_l1.compact_conv_stack(convs, jax.nn.relu, input_shape=input_shape)


def test_a_grouped_conv_whose_groups_do_not_divide_is_an_error():
  layer = conv(4, 6, 3, seed=0, feature_group_count=2)
  layer.feature_group_count = 4  # now it divides neither
  with pytest.raises(ValueError, match=r"convs\[0\]: feature_group_count=4 must divide"):
    optax_l1.compact_conv_stack([layer], jax.nn.relu)


def test_positions_helper_matches_flax():
  """The test's own count of output positions agrees with what flax computes."""
  for padding, stride in (("SAME", 1), ("VALID", 1), ("SAME", 2), ("VALID", 2)):
    layer = conv(1, 1, 3, seed=0, padding=padding, strides=stride)
    assert layer(jnp.ones((1, 9, 1))).shape[1] == positions(9, 3, padding, stride)


def test_a_pooled_linear_head_written_as_a_1x1_conv_lets_the_last_conv_compact():
  """The recipe of the structured-sparsity guide: head(mean(h)) == mean(conv1x1(h))."""
  first, last = conv(1, 6, 5, seed=24), conv(6, 4, 3, seed=25)
  head = nnx.Linear(4, 3, rngs=nnx.Rngs(0))
  cut_inputs(last, [0, 2])
  set_bias(last, [0.5, 0.1, -0.3, 0.2])
  as_conv = nnx.Conv(
    4,
    3,
    1,
    kernel_init=lambda *_: head.kernel[...][None],
    bias_init=lambda *_: head.bias[...],
    rngs=nnx.Rngs(0),
  )
  small, report = optax_l1.compact_conv_stack([first, last, as_conv], jax.nn.relu)
  assert report.kept[1] == (1, 3)  # the last conv's constant channels fold into the head
  x = jax.random.normal(jax.random.key(0), (2, 12, 1))

  def cnn(x):  # convs, ReLU, global average pool, linear head
    return head(jax.nn.relu(last(jax.nn.relu(first(x)))).mean(axis=1))

  got, expected = jax.jit(lambda x: (small(x).mean(axis=1), cnn(x)))(x)
  chex.assert_trees_all_close(got, expected, atol=1e-5, rtol=0)
