"""Compaction: a smaller dense MLP without the hidden units that group L1 killed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

if TYPE_CHECKING:  # flax is an optional extra: imported by compact_mlp when called
  from flax import nnx

Activation = Callable[[jax.Array], jax.Array]
Layer = tuple[Any, Any]  # (kernel of shape (in, out), bias of shape (out,) or None)


@dataclasses.dataclass(frozen=True)
class CompactionReport:
  r"""What a compaction removed; ``print`` it for a table, ``to_dict`` for JSON.

  :func:`compact_dense_stack` and :func:`compact_mlp` count hidden units,
  :func:`compact_conv_stack` the channels between convolutions and :func:`compact_attention`
  the heads of one attention layer (one "hidden layer"): ``unit`` names which. Parameters count
  every kernel and bias entry. FLOPs count a multiply-add as 2, so a dense layer costs
  :math:`2\cdot\text{in}\cdot\text{out}` plus :math:`\text{out}` for its bias, per example
  (one row of the input) for the dense stacks; activations are not counted. ``flops_per`` says
  per what: each function's docstring gives its count.

  Attributes:
    units_before: the width of each hidden layer before compaction.
    units_after: the width of each hidden layer after it.
    folded: per hidden layer, the units removed because their incoming weights were all zero
      (their constant output was folded into the next layer's bias).
    unused: per hidden layer, the units removed because their outgoing weights were all zero.
    kept: per hidden layer, the original indices of the units that remain, in order.
    params_before: kernel and bias entries before compaction.
    params_after: kernel and bias entries after it.
    flops_before: FLOPs per ``flops_per`` before compaction.
    flops_after: FLOPs per ``flops_per`` after it.
    unit: what the widths count: ``"units"``, ``"channels"`` or ``"heads"``.
    flops_per: what the FLOPs are counted per: ``"example"``, ``"output position"`` or
      ``"token"``.
  """

  units_before: tuple[int, ...]
  units_after: tuple[int, ...]
  folded: tuple[int, ...]
  unused: tuple[int, ...]
  kept: tuple[tuple[int, ...], ...] = dataclasses.field(repr=False)
  params_before: int
  params_after: int
  flops_before: int
  flops_after: int
  unit: str = "units"
  flops_per: str = "example"

  @property
  def units_removed_fraction(self) -> float:
    """The fraction of all hidden units (channels, heads) removed (0.0 without any)."""
    before = sum(self.units_before)
    return 1.0 - sum(self.units_after) / before if before else 0.0

  def to_dict(self) -> dict[str, Any]:
    """The report as plain Python values (JSON-serialisable)."""
    return {
      "units_before": list(self.units_before),
      "units_after": list(self.units_after),
      "folded": list(self.folded),
      "unused": list(self.unused),
      "kept": [list(kept) for kept in self.kept],
      "units_removed_fraction": self.units_removed_fraction,
      "params_before": self.params_before,
      "params_after": self.params_after,
      "flops_before": self.flops_before,
      "flops_after": self.flops_after,
      "unit": self.unit,
      "flops_per": self.flops_per,
    }

  def __str__(self) -> str:
    rows = [
      ("heads" if self.unit == "heads" else f"hidden {k + 1} {self.unit}", before, after)
      for k, (before, after) in enumerate(zip(self.units_before, self.units_after, strict=True))
    ]
    rows.append(("parameters", self.params_before, self.params_after))
    rows.append((f"FLOPs / {self.flops_per}", self.flops_before, self.flops_after))
    width = max(len(row[0]) for row in rows)
    lines = [f"{'':<{width}}  {'before':>12}  {'after':>12}  {'removed':>8}"]
    lines.append("-" * len(lines[0]))
    for name, before, after in rows:
      removed = 1.0 - after / before if before else 0.0
      lines.append(f"{name:<{width}}  {before:>12,}  {after:>12,}  {100 * removed:>7.2f}%")
    return "\n".join(lines)


def _size(kernel: np.ndarray, bias: np.ndarray | None) -> tuple[int, int]:
  """Parameters and FLOPs per example of one layer."""
  n_in, n_out = kernel.shape
  bias_size = 0 if bias is None else bias.size
  return kernel.size + bias_size, 2 * n_in * n_out + bias_size


def compact_dense_stack(
  layers: Sequence[Layer], activation: Activation
) -> tuple[list[tuple[jax.Array, jax.Array | None]], CompactionReport]:
  r"""Removes the dead hidden units of a dense MLP; the function it computes is unchanged.

  The network is :math:`h_0 = x`, :math:`h_{k+1} = \sigma(h_k W_k + b_k)` for the hidden
  layers and :math:`y = h_{n-1} W_{n-1} + b_{n-1}` (no activation after the last layer), with
  ``layers[k] = (W_k, b_k)``, :math:`W_k` of shape ``(in, out)``. Hidden unit :math:`j` of
  layer :math:`k` is removed if

  - its incoming column :math:`W_k[:, j]` is exactly zero: the unit always outputs
    :math:`c_j = \sigma(b_k[j])`, which is folded into the next bias,
    :math:`b_{k+1} \leftarrow b_{k+1} + c_j\,W_{k+1}[j, :]`;
  - or its outgoing row :math:`W_{k+1}[j, :]` is exactly zero: nothing reads it.

  Removing units empties other rows and columns (a unit whose only inputs were removed becomes
  constant), so both rules are applied until nothing changes. The input and output
  dimensions are never touched. Group L1 on the kernels' output units
  (``optax_l1.adam(lr, group_l1=..., mask=...)``, default ``group_axis``) zeroes whole
  incoming columns; group L1 with ``group_axis=0`` zeroes outgoing rows.

  The result equals the original up to float rounding (the folded constants are summed in
  float64, then cast to the bias's dtype), for finite inputs: an ``inf`` or ``nan`` input
  times a zero weight is ``nan`` in the original but absent from the compacted network. The
  shapes depend on the values, so this runs eagerly on the host, once; jit the compacted
  forward pass. Parameters count kernel and bias entries; FLOPs are per example, a
  multiply-add counting 2 (:math:`2\cdot\text{in}\cdot\text{out}` per layer, plus
  :math:`\text{out}` for the bias), activations not counted.

  Args:
    layers: ``(kernel, bias)`` pairs, kernel of shape ``(in, out)``, bias of shape ``(out,)``
      or ``None`` for none; consecutive layers must chain (``out`` of one is ``in`` of the
      next).
    activation: the elementwise activation between consecutive layers, e.g. ``jax.nn.relu``.
      Only its values at the dead units' biases are used.

  Returns:
    ``(compacted, report)``: the ``(kernel, bias)`` pairs of the smaller network as JAX
    arrays of the original dtypes (a missing bias stays ``None`` unless a folded constant
    makes it non-zero), and a :class:`CompactionReport`.

  Raises:
    ValueError: if ``layers`` is empty, a kernel is not 2-D, a bias does not match its
      kernel, or consecutive layers do not chain.

  Examples:
    Unit 0 has no incoming weights (it outputs ``relu(1.0)``, folded into the output bias);
    unit 2 has no outgoing weights:

    >>> import jax
    >>> import jax.numpy as jnp
    >>> import optax_l1
    >>> w1 = jnp.array([[0.0, 1.0, 2.0], [0.0, -1.0, 3.0]])
    >>> w2 = jnp.array([[4.0], [5.0], [0.0]])
    >>> layers = [(w1, jnp.array([1.0, 0.0, 0.0])), (w2, jnp.array([0.5]))]
    >>> compacted, report = optax_l1.compact_dense_stack(layers, jax.nn.relu)
    >>> [(k.shape, b.tolist()) for k, b in compacted]
    [((2, 1), [0.0]), ((1, 1), [4.5])]
    >>> print(report)
                           before         after   removed
    -----------------------------------------------------
    hidden 1 units              3             1    66.67%
    parameters                 13             5    61.54%
    FLOPs / example            22             8    63.64%

  References:
    Scardapane, Comminiello, Hussain & Uncini, `Group sparse regularization for deep neural
    networks <https://doi.org/10.1016/j.neucom.2017.02.029>`_, 2017

  .. seealso:: :func:`compact_mlp`, :func:`optax_l1.group_l1_prox`, :func:`optax_l1.to_bcoo`
  """
  if not layers:
    raise ValueError("layers must hold at least one (kernel, bias) pair.")
  kernels = [np.asarray(kernel) for kernel, _ in layers]
  biases = [None if bias is None else np.asarray(bias) for _, bias in layers]
  for k, (kernel, bias) in enumerate(zip(kernels, biases, strict=True)):
    if kernel.ndim != 2:
      raise ValueError(f"layers[{k}]: the kernel must be 2-D (in, out), got {kernel.shape}.")
    if bias is not None and bias.shape != kernel.shape[1:]:
      raise ValueError(
        f"layers[{k}]: the bias must have shape {kernel.shape[1:]}, got {bias.shape}."
      )
    if k and kernels[k - 1].shape[1] != kernel.shape[0]:
      raise ValueError(
        f"layers[{k - 1}] has {kernels[k - 1].shape[1]} outputs but layers[{k}] has "
        f"{kernel.shape[0]} inputs."
      )

  sizes_before = [_size(kernel, bias) for kernel, bias in zip(kernels, biases, strict=True)]
  hidden = len(layers) - 1
  units_before = tuple(kernel.shape[1] for kernel in kernels[:-1])
  kept = [np.arange(kernel.shape[1]) for kernel in kernels[:-1]]
  folded, unused = [0] * hidden, [0] * hidden
  changed = True
  while changed:
    changed = False
    for k in range(hidden):
      w_in, w_out, b_in, b_out = kernels[k], kernels[k + 1], biases[k], biases[k + 1]
      constant = ~np.any(w_in != 0, axis=0)  # an empty layer's columns are constant too
      idle = ~np.any(w_out != 0, axis=1)
      if not (constant.any() or idle.any()):
        continue
      fold = constant & ~idle
      if fold.any():
        inputs = b_in[fold] if b_in is not None else np.zeros(fold.sum(), w_in.dtype)
        values = np.asarray(activation(jnp.asarray(inputs)), np.float64)
        shift = values @ w_out[fold].astype(np.float64)
        if b_out is not None:
          biases[k + 1] = (b_out.astype(np.float64) + shift).astype(b_out.dtype)
        elif np.any(shift != 0):
          biases[k + 1] = shift.astype(w_out.dtype)
      keep = ~(constant | idle)
      kernels[k] = w_in[:, keep]
      kernels[k + 1] = w_out[keep]
      if b_in is not None:
        biases[k] = b_in[keep]
      kept[k] = kept[k][keep]
      folded[k] += int(fold.sum())
      unused[k] += int(idle.sum())
      changed = True
  sizes_after = [_size(kernel, bias) for kernel, bias in zip(kernels, biases, strict=True)]
  report = CompactionReport(
    units_before=units_before,
    units_after=tuple(kernel.shape[1] for kernel in kernels[:-1]),
    folded=tuple(folded),
    unused=tuple(unused),
    kept=tuple(tuple(int(i) for i in indices) for indices in kept),
    params_before=sum(params for params, _ in sizes_before),
    params_after=sum(params for params, _ in sizes_after),
    flops_before=sum(flops for _, flops in sizes_before),
    flops_after=sum(flops for _, flops in sizes_after),
  )
  compacted = [
    (jnp.asarray(kernel), None if bias is None else jnp.asarray(bias))
    for kernel, bias in zip(kernels, biases, strict=True)
  ]
  return compacted, report


def compact_mlp(
  linears: Sequence[nnx.Linear] | nnx.Sequential, activation: Activation
) -> tuple[nnx.Sequential, CompactionReport]:
  r"""A smaller ``nnx.Sequential`` computing what a stack of ``nnx.Linear`` layers computes.

  The layers are read as the MLP ``linears[-1](σ(… σ(linears[0](x))))`` and compacted with
  :func:`compact_dense_stack`: hidden units whose incoming weights (kernel columns) are
  exactly zero are folded into the next bias, those whose outgoing weights (kernel rows)
  are exactly zero are dropped, until nothing changes. Each new ``nnx.Linear`` keeps its
  original's ``dtype``, ``precision``, ``dot_general`` and parameter dtype; variable metadata
  (sharding annotations) is not carried over. The originals are not modified.

  Flax is imported when this is called: ``import optax_l1`` does not need it.

  Args:
    linears: the ``nnx.Linear`` layers, in order (e.g. ``[model.linear1, model.linear2]``), or
      an ``nnx.Sequential`` of the form this function returns: ``nnx.Linear`` layers with
      ``activation`` itself (the same object, e.g. ``jax.nn.relu``, which is ``nnx.relu``)
      between each two, ``Sequential(linear, activation, linear, …, activation, linear)``. Its
      ``nnx.Linear`` layers are taken in order; any other entry (a dropout, another function,
      a wrapper of the activation) is an error, as the network would not be the MLP above.
    activation: the elementwise activation between them, e.g. ``jax.nn.relu``.

  Returns:
    ``(model, report)``: an ``nnx.Sequential`` of the smaller layers with ``activation``
    between them, and the :class:`CompactionReport`.

  Raises:
    TypeError: if a layer is not an ``nnx.Linear``, an ``nnx.Sequential`` is not of the form
      above, or ``linears`` is neither a sequence nor an ``nnx.Sequential``.
    ValueError: as :func:`compact_dense_stack`.

  Examples:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> from flax import nnx
    >>> import optax_l1
    >>> first, last = nnx.Linear(4, 8, rngs=nnx.Rngs(0)), nnx.Linear(8, 2, rngs=nnx.Rngs(1))
    >>> first.kernel[...] = first.kernel[...].at[:, :6].set(0.0)  # 6 units dead
    >>> small, report = optax_l1.compact_mlp([first, last], jax.nn.relu)
    >>> small.layers[0].kernel.shape, report.units_after
    ((4, 2), (2,))
    >>> x = jnp.ones((3, 4))
    >>> bool(jnp.allclose(small(x), last(jax.nn.relu(first(x))), atol=1e-6))
    True

    An ``nnx.Sequential`` of that form, such as the result, can be given as it is:

    >>> _, again = optax_l1.compact_mlp(small, jax.nn.relu)
    >>> again.units_before, again.units_after
    ((2,), (2,))

  .. seealso:: :func:`compact_dense_stack`
  """
  from flax import nnx  # an optional extra: imported when used, not with optax_l1

  given = _sequential_layers(
    linears, nnx.Linear, activation, argument="linears", example="[model.linear1, model.linear2]"
  )
  layers = [(layer.kernel[...], None if layer.bias is None else layer.bias[...]) for layer in given]
  compacted, report = compact_dense_stack(layers, activation)
  modules: list[Any] = []
  for k, (layer, (kernel, bias)) in enumerate(zip(given, compacted, strict=True)):
    if k:
      modules.append(activation)
    modules.append(_linear_like(nnx, layer, kernel, bias))
  return nnx.Sequential(*modules), report


def _linear_like(nnx: Any, layer: Any, kernel: jax.Array, bias: jax.Array | None) -> Any:
  """An ``nnx.Linear`` with ``layer``'s settings and the given weights."""
  settings = {
    name: getattr(layer, name)
    for name in ("dtype", "precision", "dot_general", "promote_dtype", "preferred_element_type")
    if hasattr(layer, name)  # older flax versions lack some of them
  }
  return nnx.Linear(
    kernel.shape[0],
    kernel.shape[1],
    use_bias=bias is not None,
    param_dtype=kernel.dtype,
    kernel_init=lambda key, shape, dtype: kernel,
    bias_init=lambda key, shape, dtype: bias,
    rngs=nnx.Rngs(0),  # unused: the initialisers return the given weights
    **settings,
  )


def _name(f: Any) -> str:
  return getattr(f, "__name__", type(f).__name__)


def _sequential_layers(
  layers: Any, layer_type: type, activation: Activation, *, argument: str, example: str
) -> list[Any]:
  """The layers of a sequence of ``layer_type`` or of ``Sequential(layer, activation, …, layer)``.

  Raises a TypeError naming ``argument`` and the entry if the layers are not of that form.
  """
  from flax import nnx

  kind = f"nnx.{layer_type.__name__}"
  word = layer_type.__name__.lower()
  if isinstance(layers, nnx.Sequential):  # layer, activation, layer, ..., layer
    entries = list(layers.layers)
    form = f"an nnx.Sequential is read as Sequential({word}, activation, ..., activation, {word})"
    for k, entry in enumerate(entries):
      if k % 2 == 0 and not isinstance(entry, layer_type):
        raise TypeError(f"{argument}.layers[{k}] must be an {kind} ({form}), got {_name(entry)}.")
      if k % 2 == 1 and entry is not activation:
        raise TypeError(
          f"{argument}.layers[{k}] must be the activation given, {_name(activation)} (the same "
          f"object; {form}), got {_name(entry)}."
        )
    if entries and len(entries) % 2 == 0:
      raise TypeError(f"{argument} must end with an {kind} ({form}), got {_name(entries[-1])}.")
    given: list[Any] = entries[::2]
  elif isinstance(layers, Sequence):
    given = list(layers)
  else:
    raise TypeError(
      f"{argument} must be a sequence of {kind} layers (e.g. {example}) or an nnx.Sequential "
      f"of them with the activation between, got {type(layers).__name__}."
    )
  for k, layer in enumerate(given):
    if not isinstance(layer, layer_type):
      raise TypeError(f"{argument}[{k}] must be an {kind}, got {type(layer).__name__}.")
  return given
