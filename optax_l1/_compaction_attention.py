"""Compaction of attention layers: an ``nnx.MultiHeadAttention`` without the heads that add nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import numpy as np

from optax_l1._compaction import CompactionReport

if TYPE_CHECKING:  # flax is an optional extra: imported by compact_attention when called
  from flax import nnx


def _size(weights: dict[str, Any], sequence_length: int | None, ln: int) -> tuple[int, int]:
  """Parameters and FLOPs per query token of the attention layer with these weights."""
  biases = sum(0 if weights[f"b{part}"] is None else weights[f"b{part}"].size for part in "qkvo")
  kernels = sum(weights[f"w{part}"].size for part in "qkvo")
  params, flops = ln + kernels + biases, 2 * kernels + biases
  if sequence_length is not None:
    heads, head_dim = weights["wq"].shape[1:]
    flops += 4 * sequence_length * heads * head_dim  # scores q·k, then the sum of the values
  return params, flops


def compact_attention(
  attention: nnx.MultiHeadAttention, *, sequence_length: int | None = None
) -> tuple[nnx.MultiHeadAttention, CompactionReport]:
  r"""A ``nnx.MultiHeadAttention`` with fewer heads that computes what ``attention`` computes.

  Head :math:`h` adds :math:`\sum_t a_{ht}\,(x_t W^V_h + b^V_h)\,W^O_h` to the output, with
  attention weights :math:`a_{ht} \ge 0` that sum to one over the keys :math:`t` (whatever the
  queries, keys and mask). It is removed if

  - its rows of the output kernel, ``attention.out.kernel[h]`` (:math:`W^O_h`), are exactly
    zero: it adds nothing;
  - or its value kernel :math:`W^V_h` (``attention.value.kernel[:, h]``) is exactly zero: it
    adds the constant :math:`b^V_h W^O_h`, nothing without a value bias; a non-zero constant
    is folded into the output bias, :math:`b^O \leftarrow b^O + b^V_h W^O_h`. Dropout on the
    attention weights breaks their sum to one in training mode, so with ``dropout_rate > 0``
    such a head is removed only if its value bias is zero too.

  A head whose query or key kernel is zero still adds its values (attended uniformly, or as
  the mask says) and stays. With grouped-query attention (``num_kv_heads < num_heads``, query
  head :math:`h` reading key/value head :math:`h \div (H/H_{kv})`) the value test is on the
  shared key/value head; a key/value head whose query heads all go is removed with them, and
  the others keep as many query heads each: each loses as many as the one with the fewest
  removable heads. A layer whose heads would all go keeps one, with zero output rows (an
  ``nnx.MultiHeadAttention`` has at least one head).

  The new layer has the same ``in_features``, ``in_kv_features``, ``out_features`` and head
  size, ``num_heads`` (and ``qkv_features = num_heads · head_dim``) the heads kept, and the
  original's dtypes, precision, dropout settings, promotion functions and ``normalize_qk``
  scales (one per head dimension, shared by the heads); variable metadata (sharding
  annotations) is not carried over. Its outputs equal the original's up to float rounding,
  for self- and cross-attention, with masks (a mask with a heads axis of size ``num_heads``
  must be indexed with ``report.kept[0]`` on that axis) and in deterministic mode; with
  dropout in training mode both draw their own masks. The originals are not modified. Flax is
  imported when this is called: ``import optax_l1`` does not need it.

  Parameters count kernel, bias and ``normalize_qk`` scale entries. FLOPs are per query token,
  a multiply-add counting 2: :math:`2\cdot\text{in}\cdot H\cdot d` for the query projection,
  the same with ``in_kv_features`` and :math:`H_{kv}` for the key and value projections (one
  key/value token per query token, as in self-attention), :math:`2\cdot H\cdot d\cdot
  \text{out}` for the output projection, plus the biases; with ``sequence_length`` :math:`S`
  also :math:`4\cdot S\cdot H\cdot d` for the attention itself (scores and weighted sum of
  values); softmax, scaling and normalisation are not counted.

  Args:
    attention: an ``nnx.MultiHeadAttention`` using flax's ``nnx.dot_product_attention`` (the
      default ``attention_fn``) and no decoding cache.
    sequence_length: the number of key/value tokens each query attends to, to count the
      attention FLOPs; optional.

  Returns:
    ``(layer, report)``: the smaller ``nnx.MultiHeadAttention`` and a
    :class:`CompactionReport` of its heads (``unit="heads"``, ``flops_per="token"``;
    ``kept[0]`` the original indices of the query heads kept, ``folded`` the heads whose
    constant went into the output bias, ``unused`` the others removed).

  Raises:
    TypeError: if ``attention`` is not an ``nnx.MultiHeadAttention``.
    ValueError: if it decodes (``decode=True`` or an initialised cache), has another
      ``attention_fn`` (which may mix heads), custom ``qkv_dot_general``/``out_dot_general``
      functions, or weights whose shapes do not match its settings, or if ``sequence_length``
      is not a positive int.

  Examples:
    Heads 0 and 2 of four have zero output rows:

    >>> import jax
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import optax_l1
    >>> layer = nnx.MultiHeadAttention(4, 8, qkv_features=16, decode=False, rngs=nnx.Rngs(0))
    >>> layer.out.kernel[...] = layer.out.kernel[...].at[jnp.array([0, 2])].set(0.0)
    >>> small, report = optax_l1.compact_attention(layer)
    >>> small.num_heads, small.out.kernel.shape, report.kept
    (2, (2, 4, 8), ((1, 3),))
    >>> x = jax.random.normal(jax.random.key(0), (2, 5, 8))
    >>> bool(jnp.allclose(small(x), layer(x), atol=1e-5))
    True

  References:
    Michel, Levy & Neubig, `Are sixteen heads really better than one?
    <https://arxiv.org/abs/1905.10650>`_, 2019

  .. seealso:: :func:`compact_mlp`, :func:`compact_conv_stack`
  """
  from flax import nnx  # an optional extra: imported when used, not with optax_l1

  if not isinstance(attention, nnx.MultiHeadAttention):
    raise TypeError(f"attention must be an nnx.MultiHeadAttention, got {type(attention).__name__}.")
  _check_supported(nnx, attention)
  if sequence_length is not None and not (
    isinstance(sequence_length, int)
    and not isinstance(sequence_length, bool)
    and sequence_length > 0
  ):
    raise ValueError(
      f"sequence_length must be a positive int (the key/value tokens per query), got "
      f"{sequence_length!r}."
    )
  heads = attention.num_heads
  kv_heads = getattr(attention, "num_kv_heads", heads)  # older flax: no grouped queries
  head_dim = attention.head_dim
  weights = _read(attention, heads, kv_heads, head_dim)
  ln = 2 * head_dim if attention.normalize_qk else 0
  size_before = _size(weights, sequence_length, ln)

  per_kv = heads // kv_heads
  value_zero = ~np.any(weights["wv"] != 0, axis=(0, 2))  # per key/value head
  bias_zero = (
    np.ones(kv_heads, bool) if weights["bv"] is None else ~np.any(weights["bv"] != 0, axis=1)
  )
  out_zero = ~np.any(weights["wo"] != 0, axis=(1, 2))  # per query head
  group = np.arange(heads) // per_kv
  silent = out_zero | (value_zero & bias_zero)[group]
  constant = ~silent & value_zero[group] & (attention.dropout_rate == 0)
  remove = (silent | constant).reshape(kv_heads, per_kv)
  whole = remove.all(axis=1)  # key/value heads that go with all their query heads
  every_head = bool(whole.all())
  if every_head:  # one head stays, as a layer needs one, silenced below
    keep = np.zeros_like(remove)
    keep[0, 0] = True
    whole[0] = False
  else:
    fewest = remove[~whole].sum(axis=1).min()
    partial = remove & (np.cumsum(remove, axis=1) <= fewest)
    keep = ~(partial | whole[:, None])
  keep = keep.reshape(-1)
  fold = constant & (~keep | every_head)
  kept_kv = np.flatnonzero(~whole)

  bo, wo = weights["bo"], weights["wo"]
  if fold.any():  # a constant head has a value bias, and then the output has one
    shift = np.einsum(
      "hd,hdo->o", weights["bv"][group[fold]].astype(np.float64), wo[fold].astype(np.float64)
    )
    bo = (bo.astype(np.float64) + shift).astype(bo.dtype)
  wo = np.zeros_like(wo[keep]) if every_head else wo[keep]
  new = {
    "wq": weights["wq"][:, keep],
    "bq": None if weights["bq"] is None else weights["bq"][keep],
    "wk": weights["wk"][:, kept_kv],
    "bk": None if weights["bk"] is None else weights["bk"][kept_kv],
    "wv": weights["wv"][:, kept_kv],
    "bv": None if weights["bv"] is None else weights["bv"][kept_kv],
    "wo": wo,
    "bo": bo,
  }
  size_after = _size(new, sequence_length, ln)
  report = CompactionReport(
    units_before=(heads,),
    units_after=(int(keep.sum()),),
    folded=(int((fold & ~keep).sum()),),
    unused=(int((~keep & ~constant).sum()),),
    kept=(tuple(int(h) for h in np.flatnonzero(keep)),),
    params_before=size_before[0],
    params_after=size_after[0],
    flops_before=size_before[1],
    flops_after=size_after[1],
    unit="heads",
    flops_per="token",
  )
  return _attention_like(nnx, attention, new, int(keep.sum()), kept_kv.size), report


def _check_supported(nnx: Any, attention: Any) -> None:
  """Raises a ValueError naming the first option that removing heads cannot carry."""
  if attention.decode or any(
    getattr(attention, name, None) is not None
    for name in ("cached_key", "cached_value", "cache_index")
  ):
    raise ValueError(
      "attention: decoding (decode=True, or a cache from init_cache) is not supported: the "
      "cache has one slot per head. Compact the layer built with decode=False, then build "
      "the cache on the result."
    )
  if attention.attention_fn is not nnx.dot_product_attention:
    raise ValueError(
      f"attention: attention_fn={attention.attention_fn!r} is not supported: only flax's "
      "nnx.dot_product_attention (the default) is known to treat each head on its own, so "
      "that removing one leaves the others unchanged."
    )
  for name in ("qkv_dot_general", "out_dot_general", "qkv_dot_general_cls", "out_dot_general_cls"):
    if getattr(attention, name, None) is not None:
      raise ValueError(
        f"attention: {name} is not supported (a custom product need not act head by head); "
        "build the layer without it."
      )


def _read(attention: Any, heads: int, kv_heads: int, head_dim: int) -> dict[str, Any]:
  """The layer's kernels and biases as NumPy arrays, checked against its settings."""
  layers = {"q": attention.query, "k": attention.key, "v": attention.value, "o": attention.out}
  expected = {
    "q": (attention.in_features, heads, head_dim),
    "k": (attention.in_kv_features, kv_heads, head_dim),
    "v": (attention.in_kv_features, kv_heads, head_dim),
    "o": (heads, head_dim, attention.out_features),
  }
  names = {"q": "query", "k": "key", "v": "value", "o": "out"}
  weights: dict[str, Any] = {}
  for part, layer in layers.items():
    kernel = np.asarray(layer.kernel[...])
    if kernel.shape != expected[part]:
      raise ValueError(
        f"attention.{names[part]}: the kernel has shape {kernel.shape}, the layer's settings "
        f"say {expected[part]}."
      )
    weights[f"w{part}"] = kernel
    weights[f"b{part}"] = None if layer.bias is None else np.asarray(layer.bias[...])
  return weights


def _attention_like(
  nnx: Any, attention: Any, weights: dict[str, Any], heads: int, kv_heads: int
) -> Any:
  """An ``nnx.MultiHeadAttention`` with ``attention``'s settings and the given weights."""
  settings = {
    name: getattr(attention, name)
    for name in (
      "dtype",
      "param_dtype",
      "broadcast_dropout",
      "dropout_rate",
      "deterministic",
      "precision",
      "use_bias",
      "attention_fn",
      "decode",
      "normalize_qk",
      "qkv_promote_dtype",
      "out_promote_dtype",
      "ln_promote_dtype",
    )
    if hasattr(attention, name)  # older flax versions lack some of them
  }
  if hasattr(attention, "num_kv_heads"):
    settings["num_kv_heads"] = kv_heads
  if attention.dropout_rate > 0:
    settings["keep_rngs"] = attention.rngs is not None
  zeros = nnx.initializers.zeros  # overwritten below
  new = nnx.MultiHeadAttention(
    heads,
    attention.in_features,
    qkv_features=heads * attention.head_dim,
    out_features=attention.out_features,
    in_kv_features=attention.in_kv_features,
    kernel_init=zeros,
    bias_init=zeros,
    rngs=nnx.Rngs(0),
    **settings,
  )
  for part, layer in (("q", new.query), ("k", new.key), ("v", new.value), ("o", new.out)):
    layer.kernel[...] = jnp.asarray(weights[f"w{part}"])
    if layer.bias is not None:
      layer.bias[...] = jnp.asarray(weights[f"b{part}"])
  if attention.normalize_qk:
    new.query_ln.scale[...] = attention.query_ln.scale[...]
    new.key_ln.scale[...] = attention.key_ln.scale[...]
  return new
