"""Compaction of convolution stacks: a smaller ``nnx.Sequential`` without the dead channels."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from optax_l1 import _validation
from optax_l1._compaction import Activation, CompactionReport, _sequential_layers

if TYPE_CHECKING:  # flax is an optional extra: imported by compact_conv_stack when called
  from flax import nnx


@dataclasses.dataclass
class _Layer:
  """A working copy of one conv's weights, its kernel expanded to ``(*window, in, out)``.

  A grouped kernel ``(*window, in/G, out)`` is stored block-diagonally (zeros between the
  groups), so that every rule below reads one dense kernel whatever the groups.
  """

  kernel: np.ndarray
  mask: np.ndarray | None
  bias: np.ndarray | None
  groups: int

  def effective(self) -> np.ndarray:
    return self.kernel if self.mask is None else self.kernel * self.mask


def _expand(kernel: np.ndarray, groups: int) -> np.ndarray:
  if groups == 1:
    return kernel
  *window, group_in, n_out = kernel.shape
  group_out = n_out // groups
  full = np.zeros((*window, group_in * groups, n_out), kernel.dtype)
  for g in range(groups):
    outs = slice(g * group_out, (g + 1) * group_out)
    full[..., g * group_in : (g + 1) * group_in, outs] = kernel[..., outs]
  return full


def _contract(full: np.ndarray, groups: int) -> np.ndarray:
  """The grouped kernel ``(*window, in/G, out)`` of a block-diagonal one (inverse of _expand)."""
  if groups == 1:
    return full
  group_in, group_out = full.shape[-2] // groups, full.shape[-1] // groups
  return np.concatenate(
    [
      full[..., g * group_in : (g + 1) * group_in, g * group_out : (g + 1) * group_out]
      for g in range(groups)
    ],
    axis=-1,
  )


def _per_dimension(value: Any, rank: int) -> tuple[int, ...]:
  """A conv's strides or dilations as one int per spatial dimension (flax's broadcast)."""
  if value is None:
    return (1,) * rank
  if isinstance(value, int):
    return (value,) * rank
  return tuple(value)


def _pads_with_zeros(conv: Any, where: str) -> bool:
  """Whether some window of ``conv`` reads a zero that is not its input: padding or dilation.

  A constant input channel is then not constant over every window. ``SAME`` (and ``CAUSAL``)
  pad nothing only with a kernel of size 1 in every dimension; whether they pad for larger
  kernels depends on the input size, so they count as padding. ``CIRCULAR`` and ``REFLECT``
  pad with the input's own values.
  """
  rank = len(conv.kernel_size)
  if any(d > 1 for d in _per_dimension(conv.input_dilation, rank)):
    return True  # lax inserts zeros between the inputs
  padding = conv.padding
  if isinstance(padding, str):
    if padding in ("VALID", "CIRCULAR", "REFLECT"):
      return False
    if padding in ("SAME", "SAME_LOWER", "CAUSAL"):
      dilation = _per_dimension(conv.kernel_dilation, rank)
      return any((size - 1) * d > 0 for size, d in zip(conv.kernel_size, dilation, strict=True))
    raise ValueError(
      f"{where}: padding {padding!r} is not supported: use 'SAME', 'VALID', 'CIRCULAR', "
      "'REFLECT', 'CAUSAL' or explicit (low, high) pairs."
    )
  entries = [padding] if isinstance(padding, int) else list(padding)
  pads: list[int] = []
  for entry in entries:
    pair = (entry, entry) if isinstance(entry, int) else tuple(entry)
    if len(pair) != 2 or not all(isinstance(p, (int, np.integer)) for p in pair):
      raise ValueError(
        f"{where}: padding {padding!r} is not supported: give an int, or one int or one "
        "(low, high) pair of ints per spatial dimension."
      )
    pads.extend(int(p) for p in pair)
  return any(p > 0 for p in pads)


def _balanced(remove: np.ndarray, blocks: int) -> np.ndarray:
  """The channels of ``remove`` that leave each of ``blocks`` consecutive blocks equal-sized.

  Every block keeps the same number of channels: the first ``r`` candidates of each block go,
  with ``r`` the fewest candidates in any block (all of them with one block).
  """
  if blocks == 1:
    return remove
  per_block = remove.reshape(blocks, -1)
  fewest = per_block.sum(axis=1).min()
  return (per_block & (np.cumsum(per_block, axis=1) <= fewest)).reshape(-1)


def _size(layer: _Layer, positions: int) -> tuple[int, int]:
  """Parameters and FLOPs of one conv (``positions`` output positions) as stored."""
  kernel_size = _contract(layer.kernel, layer.groups).size
  bias_size = 0 if layer.bias is None else layer.bias.size
  return kernel_size + bias_size, positions * (2 * kernel_size + bias_size)


def compact_conv_stack(
  convs: Sequence[nnx.Conv] | nnx.Sequential,
  activation: Activation,
  *,
  input_shape: Sequence[int] | None = None,
) -> tuple[nnx.Sequential, CompactionReport]:
  r"""A smaller ``nnx.Sequential`` computing what a stack of ``nnx.Conv`` layers computes.

  The layers are read as ``convs[-1](σ(… σ(convs[0](x))))``, with an elementwise activation
  :math:`\sigma` between consecutive convolutions and none after the last. A hidden channel
  :math:`j` (an output channel of ``convs[k]``, an input channel of ``convs[k + 1]``) is
  removed if

  - its outgoing weights, ``convs[k + 1].kernel[..., j, :]``, are exactly zero: nothing reads
    it;
  - or its incoming weights, ``convs[k].kernel[..., j]``, are exactly zero: it outputs the
    constant :math:`c_j = \sigma(b_j)` at every position, and

    - if ``convs[k + 1]`` sees no padding zeros (``VALID``, ``CIRCULAR``, ``REFLECT``, explicit
      padding of 0, or ``SAME`` with a kernel of size 1, and no ``input_dilation``), every one
      of its windows sees :math:`c_j` everywhere, which is folded into its bias:
      :math:`b' \leftarrow b' + c_j \sum_{\text{window}} W'[\ldots, j, :]`;
    - otherwise (zero padding or input dilation: the borders see zeros, not :math:`c_j`) the
      constant channels are merged into one, which stays (one per group of a grouped
      ``convs[k + 1]``): with :math:`i` the constant channel of largest :math:`|c_i|`, :math:`W'[\ldots, i, :] \leftarrow W'[\ldots, i, :] + (c_j/c_i)\,
      W'[\ldots, j, :]`, exact at every position, borders included, since each channel's
      contribution is linear in its weights. A channel with :math:`c_j = 0` (a ReLU and a bias
      :math:`\le 0`) contributes nothing anywhere and is removed. (A ``mask`` on
      ``convs[k + 1]`` would multiply the merged weights again: there the constant channels
      with :math:`c_j \ne 0` stay, unmerged.)

  The rules are applied until nothing changes (a channel whose only inputs were removed
  becomes constant). The input channels of ``convs[0]`` and the output channels of
  ``convs[-1]`` are never removed. With ``feature_group_count`` :math:`G > 1`, every group
  must keep as many channels: at each hidden layer the channels fall into
  :math:`\operatorname{lcm}(G_k, G_{k+1})` consecutive blocks and each block loses as many as
  the block with the fewest removable channels (so a depthwise conv keeps its channels unless
  all are removable). Group L1 on the kernels' output channels (``group_l1=`` with the default
  ``group_axis=-1``; NNX kernels are ``(*window, in, out)``) zeroes incoming weights;
  ``group_axis=-2`` on the next kernel zeroes outgoing weights, which are removed whatever the
  padding.

  The result equals the original up to float rounding (the folds are summed in float64, then
  cast to the parameters' dtype), for finite inputs. The shapes depend on the values, so this
  runs eagerly on the host, once; jit the compacted forward pass. Each new ``nnx.Conv`` keeps
  its original's kernel size, strides, padding, dilations, groups, ``mask`` (sliced),
  ``dtype``, ``precision``, ``conv_general_dilated``, ``promote_dtype`` and parameter dtype;
  variable metadata (sharding annotations) is not carried over. The originals are not
  modified. Flax is imported when this is called: ``import optax_l1`` does not need it.

  Parameters count kernel and bias entries. FLOPs count, at every output position of each
  conv, :math:`2\cdot\text{window}\cdot\text{in}/G\cdot\text{out}` for the kernel (padding and
  dilation zeros included, as the convolution computes them) and :math:`\text{out}` for the
  bias; activations are not counted. With ``input_shape`` they are per example of that
  spatial size; without it, per output position of every layer (each conv counted once, as
  if its output had one position).

  Args:
    convs: the ``nnx.Conv`` layers, in order, all with the same number of spatial dimensions
      and ``in_features`` of each equal to ``out_features`` of the one before; or an
      ``nnx.Sequential`` of the form this function returns, ``Sequential(conv, activation,
      conv, …, activation, conv)`` with ``activation`` itself between each two.
    activation: the elementwise activation between them, e.g. ``jax.nn.relu``. It is checked
      on a random array (``activation(x)[i] == activation(x[i])``) when there are hidden
      channels; a softmax or a normalisation is an error.
    input_shape: the spatial shape of one input example, e.g. ``(40,)`` or ``(28, 28)``, for
      FLOPs per example; optional.

  Returns:
    ``(model, report)``: an ``nnx.Sequential`` of the smaller convs with ``activation``
    between them, and a :class:`CompactionReport` of the hidden channels (``unit="channels"``).

  Raises:
    TypeError: if a layer is not an ``nnx.Conv``, an ``nnx.Sequential`` is not of the form
      above, or ``activation`` is not a function of one array.
    ValueError: if ``convs`` is empty, consecutive convs do not chain (channels or spatial
      dimensions), a kernel or mask does not match its conv, a padding is not one flax
      knows, ``activation`` is not elementwise, or ``input_shape`` does not fit.

  Examples:
    Four of the eight channels between two 1-D convs have no incoming weights; with ``VALID``
    padding their constant outputs fold into the next bias:

    >>> import jax
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import optax_l1
    >>> first = nnx.Conv(3, 8, 5, padding="VALID", rngs=nnx.Rngs(0))
    >>> last = nnx.Conv(8, 2, 3, padding="VALID", rngs=nnx.Rngs(1))
    >>> first.kernel[...] = first.kernel[...].at[..., :4].set(0.0)
    >>> first.bias[...] = jnp.full(8, 0.5)
    >>> small, report = optax_l1.compact_conv_stack([first, last], jax.nn.relu)
    >>> small.layers[0].kernel.shape, report.units_after, report.folded
    ((5, 3, 4), (4,), (4,))
    >>> x = jax.random.normal(jax.random.key(0), (2, 20, 3))
    >>> bool(jnp.allclose(small(x), last(jax.nn.relu(first(x))), atol=1e-5))
    True

  References:
    Li, Kadav, Durdanovic, Samet & Graf, `Pruning filters for efficient ConvNets
    <https://arxiv.org/abs/1608.08710>`_, 2017

  .. seealso:: :func:`compact_mlp`, :func:`compact_attention`
  """
  from flax import nnx  # an optional extra: imported when used, not with optax_l1

  given = _sequential_layers(
    convs, nnx.Conv, activation, argument="convs", example="[model.conv1, model.conv2]"
  )
  if not given:
    raise ValueError("convs must hold at least one nnx.Conv.")
  layers = [_read(conv, k, given) for k, conv in enumerate(given)]
  hidden = len(given) - 1
  # Whether each conv's windows read zeros that are not its input (the first's do not matter).
  zero_padded = [False] + [
    _pads_with_zeros(conv, f"convs[{k}]") for k, conv in enumerate(given) if k
  ]
  if hidden:
    _validation.check_elementwise(activation, "activation")
  positions = _output_positions(given, input_shape)

  sizes_before = [_size(layer, n) for layer, n in zip(layers, positions, strict=True)]
  units_before = tuple(conv.out_features for conv in given[:-1])
  kept = [np.arange(n) for n in units_before]
  folded, unused = [0] * hidden, [0] * hidden
  changed = True
  while changed:
    changed = False
    for k in range(hidden):
      keep, n_folded, n_unused = _compact_hidden(
        layers[k], layers[k + 1], activation, zero_padded=zero_padded[k + 1]
      )
      if keep.all():
        continue
      kept[k] = kept[k][keep]
      folded[k] += n_folded
      unused[k] += n_unused
      changed = True
  sizes_after = [_size(layer, n) for layer, n in zip(layers, positions, strict=True)]
  report = CompactionReport(
    units_before=units_before,
    units_after=tuple(layer.kernel.shape[-1] for layer in layers[:-1]),
    folded=tuple(folded),
    unused=tuple(unused),
    kept=tuple(tuple(int(i) for i in indices) for indices in kept),
    params_before=sum(params for params, _ in sizes_before),
    params_after=sum(params for params, _ in sizes_after),
    flops_before=sum(flops for _, flops in sizes_before),
    flops_after=sum(flops for _, flops in sizes_after),
    unit="channels",
    flops_per="output position" if input_shape is None else "example",
  )
  modules: list[Any] = []
  for k, (conv, layer) in enumerate(zip(given, layers, strict=True)):
    if k:
      modules.append(activation)
    modules.append(_conv_like(nnx, conv, layer))
  return nnx.Sequential(*modules), report


def _read(conv: Any, k: int, given: Sequence[Any]) -> _Layer:
  """``convs[k]``'s weights as a :class:`_Layer`, after checking that they fit the stack."""
  where = f"convs[{k}]"
  kernel = np.asarray(conv.kernel[...])
  groups = conv.feature_group_count
  rank = len(conv.kernel_size)
  n_in, n_out = conv.in_features, conv.out_features
  if not (isinstance(n_in, int) and isinstance(n_out, int)):
    raise ValueError(f"{where}: in_features and out_features must be ints, got {n_in}, {n_out}.")
  if n_in % groups or n_out % groups:
    raise ValueError(
      f"{where}: feature_group_count={groups} must divide in_features={n_in} and "
      f"out_features={n_out}."
    )
  expected = (*conv.kernel_size, n_in // groups, n_out)
  if kernel.shape != expected:
    raise ValueError(f"{where}: the kernel has shape {kernel.shape}, its settings say {expected}.")
  mask = None if conv.mask is None else np.asarray(conv.mask)
  if mask is not None and mask.shape != kernel.shape:
    raise ValueError(f"{where}: the mask has shape {mask.shape}, the kernel {kernel.shape}.")
  bias = None if conv.bias is None else np.asarray(conv.bias[...])
  if bias is not None and bias.shape != (n_out,):
    raise ValueError(f"{where}: the bias has shape {bias.shape}, expected ({n_out},).")
  if k:
    before = given[k - 1]
    if len(before.kernel_size) != rank:
      raise ValueError(
        f"{where} is {rank}-D but convs[{k - 1}] is {len(before.kernel_size)}-D: the convs "
        "must have the same number of spatial dimensions."
      )
    if before.out_features != n_in:
      raise ValueError(
        f"convs[{k - 1}] has {before.out_features} output channels but {where} has {n_in} "
        "input channels: consecutive convs must chain."
      )
  return _Layer(
    kernel=np.array(_expand(kernel, groups)),  # a copy: merges write to it
    mask=None if mask is None else _expand(mask, groups),
    bias=bias,
    groups=groups,
  )


def _output_positions(convs: Sequence[Any], input_shape: Sequence[int] | None) -> list[int]:
  """The output positions of each conv for one input of ``input_shape`` (1 each without)."""
  if input_shape is None:
    return [1] * len(convs)
  rank = len(convs[0].kernel_size)
  spatial = tuple(input_shape)
  if len(spatial) != rank or not all(isinstance(n, int) and n > 0 for n in spatial):
    raise ValueError(
      f"input_shape must be {rank} positive ints (the spatial shape of one example, without "
      f"batch or channels), got {input_shape!r}."
    )
  shape: tuple[int, ...] = (1, *spatial, convs[0].in_features)
  positions = []
  for k, conv in enumerate(convs):
    try:
      shape = jax.eval_shape(conv, jax.ShapeDtypeStruct(shape, jnp.float32)).shape
    except (TypeError, ValueError) as error:
      raise ValueError(f"input_shape={spatial!r} does not fit convs[{k}]: {error}") from error
    if 0 in shape[1:-1]:
      raise ValueError(
        f"input_shape={spatial!r} does not fit convs[{k}]: its output would have the spatial "
        f"shape {shape[1:-1]}."
      )
    positions.append(math.prod(shape[1:-1]))
  return positions


def _compact_hidden(
  before: _Layer, after: _Layer, activation: Activation, *, zero_padded: bool
) -> tuple[np.ndarray, int, int]:
  """Removes the dead channels between two convs, in place, once.

  Returns which channels stay, and how many were removed as constants (folded or merged) and
  as unread.
  """
  w_in, w_out = before.effective(), after.effective()
  constant = ~np.any(w_in != 0, axis=tuple(range(w_in.ndim - 1)))
  unread = ~np.any(w_out != 0, axis=(*range(w_out.ndim - 2), w_out.ndim - 1))
  n = constant.size
  if not (constant.any() or unread.any()):
    return np.ones(n, bool), 0, 0
  # σ(b) in at least float32: a conv of float32 inputs computes in float32, whatever the
  # dtype of its parameters.
  dtype = np.promote_types(w_in.dtype if before.bias is None else before.bias.dtype, np.float32)
  inputs = np.zeros(n, dtype) if before.bias is None else before.bias.astype(dtype)
  values = np.asarray(activation(jnp.asarray(inputs)), np.float64)
  live = constant & ~unread
  remove = unread | (live & (values == 0))
  merge_into = np.full(n, -1)
  if not zero_padded:
    remove |= live
  elif after.mask is None:  # merge each consumer group's constants into its largest one
    group = n // after.groups
    for start in range(0, n, group):
      members = start + np.flatnonzero((live & (values != 0))[start : start + group])
      if members.size > 1:
        into = members[np.argmax(np.abs(values[members]))]
        others = members[members != into]
        remove[others] = True
        merge_into[others] = into
  remove = _balanced(remove, math.lcm(before.groups, after.groups))
  if not remove.any():
    return np.ones(n, bool), 0, 0
  fold = remove & live
  window = tuple(range(w_out.ndim - 2))
  if not zero_padded and fold.any():
    shift = values[fold] @ w_out[..., fold, :].astype(np.float64).sum(axis=window)
    if after.bias is not None:
      after.bias = (after.bias.astype(np.float64) + shift).astype(after.bias.dtype)
    elif np.any(shift != 0):
      after.bias = shift.astype(after.kernel.dtype)
  for into in np.unique(merge_into[fold & (merge_into >= 0)]):
    sources = np.flatnonzero(fold & (merge_into == into))
    ratios = values[sources] / values[into]
    merged = after.kernel[..., into, :].astype(np.float64) + np.tensordot(
      after.kernel[..., sources, :].astype(np.float64), ratios, axes=([-2], [0])
    )
    after.kernel[..., into, :] = merged.astype(after.kernel.dtype)
  keep = ~remove
  before.kernel = before.kernel[..., keep]
  before.mask = None if before.mask is None else before.mask[..., keep]
  before.bias = None if before.bias is None else before.bias[keep]
  after.kernel = after.kernel[..., keep, :]
  after.mask = None if after.mask is None else after.mask[..., keep, :]
  return keep, int(fold.sum()), int((remove & unread).sum())


def _conv_like(nnx: Any, conv: Any, layer: _Layer) -> Any:
  """An ``nnx.Conv`` with ``conv``'s settings and ``layer``'s weights."""
  kernel = jnp.asarray(_contract(layer.kernel, layer.groups))
  bias = None if layer.bias is None else jnp.asarray(layer.bias)
  mask = None if layer.mask is None else jnp.asarray(_contract(layer.mask, layer.groups))
  settings = {
    name: getattr(conv, name)
    for name in (
      "strides",
      "padding",
      "input_dilation",
      "kernel_dilation",
      "dtype",
      "precision",
      "conv_general_dilated",
      "promote_dtype",
      "preferred_element_type",
    )
    if hasattr(conv, name)  # older flax versions lack some of them
  }
  return nnx.Conv(
    layer.kernel.shape[-2],
    layer.kernel.shape[-1],
    conv.kernel_size,
    feature_group_count=layer.groups,
    use_bias=bias is not None,
    mask=mask,
    param_dtype=kernel.dtype,
    kernel_init=lambda key, shape, dtype: kernel,
    bias_init=lambda key, shape, dtype: bias,
    rngs=nnx.Rngs(0),  # unused: the initialisers return the given weights
    **settings,
  )
