"""Tests of the compaction of attention layers with heads that add nothing."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import optax_l1


def attention(heads, in_features=8, head_dim=3, out_features=5, **options):
  """An ``nnx.MultiHeadAttention`` with non-zero biases (so that constant heads matter)."""
  rng = np.random.default_rng(heads)

  def normal(key, shape, dtype):  # NumPy draws: no JAX compilation per shape
    return jnp.asarray(rng.standard_normal(shape) / np.sqrt(shape[0]), dtype)

  return nnx.MultiHeadAttention(
    heads,
    in_features,
    qkv_features=heads * head_dim,
    out_features=out_features,
    kernel_init=normal,
    bias_init=normal,
    decode=False,
    rngs=nnx.Rngs(0),
    **options,
  )


def zero(variable, index):
  value = np.array(variable[...])
  value[index] = 0.0
  variable[...] = jnp.asarray(value)


def inputs(layer, q_length=4, kv_length=None, seed=0):
  keys = jax.random.split(jax.random.key(seed), 2)
  q = jax.random.normal(keys[0], (2, q_length, layer.in_features))
  kv = jax.random.normal(keys[1], (2, kv_length or q_length, layer.in_kv_features))
  return q, kv


def assert_same(layer, small, call):
  """``call(layer)`` and ``call(small)``, jitted together, agree within 1e-5."""
  got, expected = jax.jit(lambda: (call(small), call(layer)))()
  chex.assert_trees_all_close(got, expected, atol=1e-5, rtol=0)


def cost(in_q, in_kv, heads, kv_heads, head_dim, out, bias=True, length=None):
  """Parameters and FLOPs per token of an attention layer, counted from its shapes."""
  params = flops = 0
  for n_in, n_out in ((in_q, heads * head_dim), (in_kv, kv_heads * head_dim)):
    params += n_in * n_out + bias * n_out
    flops += 2 * n_in * n_out + bias * n_out
  params += in_kv * kv_heads * head_dim + bias * kv_heads * head_dim  # the value projection
  flops += 2 * in_kv * kv_heads * head_dim + bias * kv_heads * head_dim
  params += heads * head_dim * out + bias * out
  flops += 2 * heads * head_dim * out + bias * out
  if length:
    flops += 2 * 2 * length * heads * head_dim
  return params, flops


def test_removes_the_heads_that_add_nothing_and_keeps_those_with_zero_queries():
  layer = attention(6)
  zero(layer.value.kernel, (slice(None), 1))  # head 1: values zero...
  zero(layer.value.bias, 1)  # ... bias too: adds nothing
  zero(layer.out.kernel, 3)  # head 3: nothing read
  zero(layer.value.kernel, (slice(None), 4))  # head 4: adds the constant b_v W_o
  zero(layer.query.kernel, (slice(None), 0))  # head 0: uniform attention, still adds values
  zero(layer.query.bias, 0)
  zero(layer.key.kernel, (slice(None), 5))  # head 5: the same
  bias_v, w_o, b_o = (
    np.asarray(v[...], np.float64) for v in (layer.value.bias, layer.out.kernel, layer.out.bias)
  )

  small, report = optax_l1.compact_attention(layer, sequence_length=4)

  assert report.kept == ((0, 2, 5),) and small.num_heads == 3
  assert (report.units_before, report.units_after) == ((6,), (3,))
  assert (report.folded, report.unused) == ((1,), (2,))
  np.testing.assert_allclose(small.out.bias[...], b_o + bias_v[4] @ w_o[4], rtol=1e-6)
  assert (report.params_before, report.flops_before) == cost(8, 8, 6, 6, 3, 5, length=4)
  assert (report.params_after, report.flops_after) == cost(8, 8, 3, 3, 3, 5, length=4)
  q, kv = inputs(layer, kv_length=6)
  v = jax.random.normal(jax.random.key(3), kv.shape)
  mask = jax.random.bernoulli(jax.random.key(4), 0.5, (2, 1, 4, 6)).at[0, 0, 1].set(False)
  assert_same(
    layer,
    small,
    lambda m: (
      m(q),  # self-attention
      m(q, kv, v),  # cross-attention
      m(q, kv, mask=mask),  # with a mask, one query with every key masked
      m(q, is_causal=True),
    ),
  )


def test_a_mask_per_head_is_indexed_with_the_kept_heads():
  layer = attention(4)
  zero(layer.out.kernel, 2)
  small, report = optax_l1.compact_attention(layer)
  q, _ = inputs(layer)
  mask = jax.random.bernoulli(jax.random.key(5), 0.7, (2, 4, 4, 4))
  kept = jnp.asarray(report.kept[0])
  got, expected = jax.jit(lambda: (small(q, mask=mask[:, kept]), layer(q, mask=mask)))()
  chex.assert_trees_all_close(got, expected, atol=1e-5, rtol=0)


def test_with_dropout_a_constant_head_stays_and_deterministic_outputs_agree():
  layer = attention(4, dropout_rate=0.3, deterministic=True)
  zero(layer.value.kernel, (slice(None), 0))  # constant: folding would change training mode
  zero(layer.value.kernel, (slice(None), 1))
  zero(layer.value.bias, 1)  # zero: adds nothing in either mode
  small, report = optax_l1.compact_attention(layer)
  assert report.kept == ((0, 2, 3),) and (report.folded, report.unused) == ((0,), (1,))
  assert small.dropout_rate == 0.3 and small.deterministic
  q, _ = inputs(layer)
  assert_same(layer, small, lambda m: m(q))


def test_grouped_query_heads_keep_as_many_per_key_value_head():
  layer = attention(
    6, num_kv_heads=3, in_kv_features=7
  )  # query heads (0, 1), (2, 3), (4, 5) share k/v heads
  zero(layer.value.kernel, (slice(None), 1))  # k/v head 1: its two query heads are constant
  zero(layer.out.kernel, 5)
  small, report = optax_l1.compact_attention(layer)
  # Group 1 goes whole; groups 0 and 2 have 0 and 1 removable heads: each loses 0.
  assert report.kept == ((0, 1, 4, 5),) and (small.num_heads, small.num_kv_heads) == (4, 2)
  assert report.folded == (2,) and report.unused == (0,)
  assert report.params_after == cost(8, 7, 4, 2, 3, 5)[0]
  q, kv = inputs(layer, kv_length=6)
  assert_same(layer, small, lambda m: m(q, kv))
  zero(layer.out.kernel, 0)  # now each of groups 0 and 2 loses one
  small, report = optax_l1.compact_attention(layer)
  assert report.kept == ((1, 4),) and (small.num_heads, small.num_kv_heads) == (2, 2)
  assert_same(layer, small, lambda m: m(q, kv))


def test_a_layer_whose_heads_all_go_keeps_one_silent_head():
  layer = attention(3)
  zero(layer.out.kernel, (slice(0, 2),))
  zero(layer.value.kernel, (slice(None), 2))  # head 2: constant, folded
  small, report = optax_l1.compact_attention(layer)
  assert small.num_heads == 1 and report.kept == ((0,),) and report.folded == (1,)
  assert not np.any(small.out.kernel[...])
  q, _ = inputs(layer)
  assert_same(layer, small, lambda m: m(q))


def test_keeps_the_settings_and_the_query_key_norms_and_leaves_the_original_untouched():
  layer = attention(4, normalize_qk=True, use_bias=False, precision="highest")
  layer.query_ln.scale[...] = jnp.linspace(0.5, 1.5, 3)
  layer.key_ln.scale[...] = jnp.linspace(2.0, 1.0, 3)
  zero(layer.value.kernel, (slice(None), 3))  # no bias: adds nothing
  state = jax.tree.map(jnp.copy, nnx.state(layer))
  small, report = optax_l1.compact_attention(layer)
  chex.assert_trees_all_equal(nnx.state(layer), state)
  assert report.kept == ((0, 1, 2),) and small.precision == "highest" and small.out.bias is None
  np.testing.assert_array_equal(small.query_ln.scale[...], layer.query_ln.scale[...])
  np.testing.assert_array_equal(small.key_ln.scale[...], layer.key_ln.scale[...])
  assert report.params_before == cost(8, 8, 4, 4, 3, 5, bias=False)[0] + 2 * 3
  q, _ = inputs(layer)
  assert_same(layer, small, lambda m: m(q))


def test_nothing_dead_changes_nothing_and_the_report_is_json():
  layer = attention(2)
  small, report = optax_l1.compact_attention(layer)
  assert report.units_after == (2,) and report.params_after == report.params_before
  chex.assert_trees_all_equal(nnx.state(small, nnx.Param), nnx.state(layer, nnx.Param))
  data = json.loads(json.dumps(report.to_dict()))
  assert (data["unit"], data["flops_per"]) == ("heads", "token")
  lines = str(report).splitlines()
  assert lines[2].split() == ["heads", "2", "2", "0.00%"]
  assert lines[-1].split()[:3] == ["FLOPs", "/", "token"]


def test_the_mlp_of_a_transformer_block_compacts_token_by_token_with_compact_mlp():
  rng = np.random.default_rng(0)
  w_up, w_down = rng.standard_normal((8, 16)) / 3, rng.standard_normal((16, 8)) / 4
  w_up[:, :10] = 0.0  # 10 of 16 neurons dead
  up, down = (
    nnx.Linear(
      *w.shape,
      kernel_init=lambda key, shape, dtype, w=w: jnp.asarray(w, dtype),
      bias_init=lambda key, shape, dtype: jnp.asarray(rng.uniform(-1, 1, shape), dtype),
      rngs=nnx.Rngs(0),
    )
    for w in (w_up, w_down)
  )
  small, report = optax_l1.compact_mlp([up, down], jax.nn.gelu)
  assert report.units_after == (6,)
  x = jax.random.normal(jax.random.key(0), (2, 5, 8))  # (batch, sequence, features)
  got, expected = jax.jit(lambda x: (small(x), down(jax.nn.gelu(up(x)))))(x)
  chex.assert_trees_all_close(got, expected, atol=1e-5, rtol=0)


def cached():
  layer = attention(2)
  layer.init_cache((1, 4, 8))
  return layer


@pytest.mark.parametrize(
  ("make", "error", "message"),
  [
    (lambda: nnx.Linear(2, 2, rngs=nnx.Rngs(0)), TypeError, "nnx.MultiHeadAttention, got Linear"),
    (cached, ValueError, "decoding"),
    (
      lambda: nnx.MultiHeadAttention(2, 4, decode=True, rngs=nnx.Rngs(0)),
      ValueError,
      r"decoding \(decode=True",
    ),
    (
      lambda: attention(2, attention_fn=lambda *a, **k: nnx.dot_product_attention(*a, **k)),
      ValueError,
      "attention_fn=.* is not supported",
    ),
    (
      lambda: attention(2, qkv_dot_general=jax.lax.dot_general),
      ValueError,
      "qkv_dot_general is not supported",
    ),
  ],
  ids=["not attention", "cache", "decode", "attention_fn", "dot_general"],
)
def test_unsupported_layers_are_errors_naming_the_option(make, error, message):
  with pytest.raises(error, match=message):
    optax_l1.compact_attention(make())


@pytest.mark.parametrize("length", [0, 2.0, True])
def test_a_sequence_length_that_is_not_a_positive_int_is_an_error(length):
  with pytest.raises(ValueError, match="sequence_length must be a positive int"):
    optax_l1.compact_attention(attention(2), sequence_length=length)
