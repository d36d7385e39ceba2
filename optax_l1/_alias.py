"""Ready-made proximal optimizers: optax's signatures plus ``l1``, ``l2`` and ``mask``.

Each is :func:`optax_l1.proximal` with one of :mod:`optax_l1.preconditioners`, so the
threshold is always in the optimizer's own metric.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import optax

from optax_l1 import _proximal, preconditioners
from optax_l1._numerics import Mask
from optax_l1._penalties import GroupAxes

_F = TypeVar("_F", bound=Callable)

# The penalty arguments every alias shares, documented once.
_PENALTY_ARGUMENTS = """\
    l1: the L1 strength :math:`\\lambda_1 \\ge 0` (as in ``keras.regularizers.l1``), or a
      schedule of the step count. Each strength left at ``None`` is off: it costs nothing,
      and ``optax.inject_hyperparams`` does not inject it (an injected ``0.0`` is a value that
      may change, so its arithmetic runs).
    l2: the L2 strength :math:`\\lambda_2 \\ge 0` (elastic net), or a schedule.
    group_l1: the group-lasso strength (whole groups, e.g. output units, to zero), or a
      schedule; each group is thresholded with the step size of its mean metric (see
      :func:`optax_l1.proximal`). With ``l1`` too: the sparse group lasso.
    group_axis: the axis whose indices are the groups; ``None`` (default) is the last
      axis, the output units of Dense and conv kernels. ``None`` rather than ``-1`` so that
      ``optax.inject_hyperparams``, which injects every number, leaves it alone. Or, per
      leaf: an :class:`optax_l1.GroupAxis` (blocks of consecutive indices, e.g. Equinox's
      attention heads), a pytree of axes with the params' structure or a prefix of it (None:
      the last axis), or a function of the params returning one (see
      :func:`optax_l1.proximal`).
    l0: the L0 strength (a hard threshold; non-convex, alone), or a schedule; see
      :func:`optax_l1.proximal`.
    mcp: the MCP strength (firm thresholding: L1 near zero, no shrinkage of large weights;
      non-convex, alone), or a schedule; see :func:`optax_l1.proximal`.
    mcp_gamma: MCP's :math:`\\gamma > 0`.
    scad: the SCAD strength (non-convex, alone), or a schedule; see
      :func:`optax_l1.proximal`.
    scad_a: SCAD's :math:`a > 2`.
    mask: which leaves are penalised, resolved as ``optax.masked`` does: a pytree of bools
      (or a prefix of the params' structure; an Equinox module of bools is one), or a
      function of the params returning one. Other leaves get the plain optimizer's update,
      unpenalised.
    target_sparsity: instead of a strength, the fraction of exact zeros wanted over the
      penalised leaves: a number in [0, 1) or a schedule of the step count, such as
      :func:`optax_l1.polynomial_sparsity`; each step's strength is the one that removes that
      fraction (see :func:`optax_l1.proximal`). Not with the strengths above.
    sparsity_penalty: the penalty ``target_sparsity`` adapts, in the optimizer's metric:
      ``"l0"`` (hard threshold, the default: no shrinkage of the weights kept), ``"l1"``
      (soft threshold) or ``"mcp"`` (firm threshold, with ``mcp_gamma``).
    target_groups: with ``target_sparsity``, remove whole groups (along ``group_axis``, by
      default output units), the fraction then of groups: with ``"l0"``, the groups whose
      weights after the step have the smallest norm (not weighted by the metric, which ranked
      units worse); with ``"l1"``, by group L1 in the metric.
    freeze_support: with ``target_sparsity``, freeze the zero set when the ramp ends
      (``freeze_step``) and train the surviving weights without shrinkage from then on.
    freeze_step: the step count at which to freeze; default: the ``end_step`` of a
      :func:`optax_l1.polynomial_sparsity` schedule (no freezing for other schedules).
    target_update_every: with ``target_sparsity``, re-estimate the strength every this many
      steps (and at ``freeze_step``), as pruning updates its masks every ``frequency``
      steps; default 10 for ``"l0"``, 1 (every step) for the penalties that shrink.
"""


def _with_penalty_arguments(fn: _F) -> _F:
  """Writes the shared penalty arguments where ``fn``'s docstring says ``<penalty arguments>``."""
  assert fn.__doc__ is not None
  fn.__doc__ = fn.__doc__.replace("    <penalty arguments>\n", _PENALTY_ARGUMENTS)
  return fn


@_with_penalty_arguments
def sgd(
  learning_rate: optax.ScalarOrSchedule,
  *,
  l1: optax.ScalarOrSchedule | None = None,
  l2: optax.ScalarOrSchedule | None = None,
  group_l1: optax.ScalarOrSchedule | None = None,
  group_axis: GroupAxes | None = None,
  l0: optax.ScalarOrSchedule | None = None,
  mcp: optax.ScalarOrSchedule | None = None,
  mcp_gamma: float = 3.0,
  scad: optax.ScalarOrSchedule | None = None,
  scad_a: float = 3.7,
  momentum: float | None = None,
  nesterov: bool = False,
  mask: Mask | None = None,
  target_sparsity: optax.ScalarOrSchedule | None = None,
  sparsity_penalty: str = "l0",
  target_groups: bool = False,
  freeze_support: bool = True,
  freeze_step: int | None = None,
  target_update_every: int | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Proximal SGD (FOBOS / ISTA; TF's ``ProximalGradientDescentOptimizer``).

  .. math::

    v = w - \eta_t\,p, \qquad
    w \leftarrow \frac{\operatorname{soft}(v,\ \eta_t\lambda_1 / c)}{1 + \eta_t\lambda_2 / c},

  with :math:`p` the gradient, or the (Nesterov) momentum direction of ``optax.sgd``: the prox
  is applied to the point the optimizer steps to. :math:`c = 1` without momentum and
  :math:`c = 1 - \beta` with momentum :math:`\beta`, whose steps are :math:`1/(1-\beta)` times
  longer at equilibrium (see :func:`optax_l1.preconditioners.sgd`). It minimises
  :math:`f(w) + \lambda_1\|w\|_1 + \tfrac{\lambda_2}{2}\|w\|_2^2`; with full-batch gradients
  and :math:`\eta = 1/L` it converges to the Lasso / elastic-net solution.

  Args:
    learning_rate: :math:`\eta_t`, a float or a schedule.
    <penalty arguments>
    momentum: the momentum decay, or ``None`` for none (as ``optax.sgd``).
    nesterov: whether to use Nesterov momentum.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` requires ``params``. Keep
    it last in a chain: a stage after it (``optax.scale``, lookahead, schedule-free,
    ``optax.contrib.reduce_on_plateau``) rescales or mixes its update and loses the exact zeros.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import optax_l1
    >>> tx = optax_l1.sgd(0.01, l1=1.0)
    >>> params = jnp.array([0.005, 0.5])
    >>> state = tx.init(params)
    >>> updates, state = tx.update(jnp.zeros(2), state, params)
    >>> optax.apply_updates(params, updates)
    Array([0.  , 0.49], dtype=float32)

  References:
    Duchi & Singer, `Efficient Online and Batch Learning Using Forward Backward Splitting
    <https://jmlr.org/papers/v10/duchi09a.html>`_, 2009

    Beck & Teboulle, `A Fast Iterative Shrinkage-Thresholding Algorithm for Linear Inverse
    Problems <https://doi.org/10.1137/080716542>`_, 2009

  .. seealso:: :func:`optax_l1.l1_prox`, :func:`optax_l1.adam`
  """
  return _proximal.proximal(
    preconditioners.sgd(momentum, nesterov),
    learning_rate,
    l1=l1,
    l2=l2,
    group_l1=group_l1,
    group_axis=group_axis,
    l0=l0,
    mcp=mcp,
    mcp_gamma=mcp_gamma,
    scad=scad,
    scad_a=scad_a,
    mask=mask,
    target_sparsity=target_sparsity,
    sparsity_penalty=sparsity_penalty,
    target_groups=target_groups,
    freeze_support=freeze_support,
    freeze_step=freeze_step,
    target_update_every=target_update_every,
  )


@_with_penalty_arguments
def adam(
  learning_rate: optax.ScalarOrSchedule,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  eps_root: float = 0.0,
  *,
  nesterov: bool = False,
  l1: optax.ScalarOrSchedule | None = None,
  l2: optax.ScalarOrSchedule | None = None,
  group_l1: optax.ScalarOrSchedule | None = None,
  group_axis: GroupAxes | None = None,
  l0: optax.ScalarOrSchedule | None = None,
  mcp: optax.ScalarOrSchedule | None = None,
  mcp_gamma: float = 3.0,
  scad: optax.ScalarOrSchedule | None = None,
  scad_a: float = 3.7,
  mask: Mask | None = None,
  target_sparsity: optax.ScalarOrSchedule | None = None,
  sparsity_penalty: str = "l0",
  target_groups: bool = False,
  freeze_support: bool = True,
  freeze_step: int | None = None,
  target_update_every: int | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Adam with the L1 prox in Adam's own metric (ProxGen's AdamL1).

  .. math::

    d = \sqrt{\hat v + \epsilon_{root}} + \epsilon, \qquad
    w \leftarrow \frac{\operatorname{soft}(w - \eta_t \hat m / d,\ \eta_t\lambda_1/d)}
      {1 + \eta_t\lambda_2/d}.

  The threshold :math:`\eta_t\lambda_1/d` shrinks each weight by the same factor Adam scales
  its step by. ``chain(optax.adam(lr), l1_prox(l1, lr))`` thresholds by :math:`\eta_t\lambda_1`
  only, which is negligible beside Adam's step where :math:`d` is small (the docs' guide "The
  naive-chain trap" measures it).

  Args:
    learning_rate: :math:`\eta_t`, a float or a schedule.
    b1: decay of the first moment.
    b2: decay of the second moment.
    eps: added to :math:`\sqrt{\hat v}`.
    eps_root: added to :math:`\hat v` inside the square root.
    nesterov: whether to use Nesterov momentum (NAdam).
    <penalty arguments>

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` requires ``params``. Keep
    it last in a chain: a stage after it (``optax.scale``, lookahead, schedule-free,
    ``optax.contrib.reduce_on_plateau``) rescales or mixes its update and loses the exact zeros.

  Examples:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import optax_l1
    >>> params = {"kernel": jnp.array([[0.01, -2.0]]), "bias": jnp.array([0.01])}
    >>> tx = optax_l1.adam(learning_rate=0.1, l1=0.01,
    ...                    mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p))
    >>> state = tx.init(params)
    >>> grads = {"kernel": jnp.array([[0.0, 1.0]]), "bias": jnp.array([0.0])}
    >>> updates, state = tx.update(grads, state, params)
    >>> optax.apply_updates(params, updates)["kernel"].round(4)
    Array([[ 0.   , -2.099]], dtype=float32)

  References:
    Yun, Lozano & Yang, `Adaptive Proximal Gradient Methods for Structured Neural Networks
    <https://proceedings.neurips.cc/paper/2021/hash/cc3f5463bc4d26bc38eadc8bcffbc654-Abstract.html>`_,
    NeurIPS 2021

  .. seealso:: :func:`optax_l1.adamw`, :func:`optax_l1.proximal`
  """
  return _proximal.proximal(
    preconditioners.adam(b1, b2, eps, eps_root, nesterov=nesterov),
    learning_rate,
    l1=l1,
    l2=l2,
    group_l1=group_l1,
    group_axis=group_axis,
    l0=l0,
    mcp=mcp,
    mcp_gamma=mcp_gamma,
    scad=scad,
    scad_a=scad_a,
    mask=mask,
    target_sparsity=target_sparsity,
    sparsity_penalty=sparsity_penalty,
    target_groups=target_groups,
    freeze_support=freeze_support,
    freeze_step=freeze_step,
    target_update_every=target_update_every,
  )


@_with_penalty_arguments
def adamw(
  learning_rate: optax.ScalarOrSchedule,
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  eps_root: float = 0.0,
  weight_decay: optax.ScalarOrSchedule = 1e-4,
  *,
  nesterov: bool = False,
  l1: optax.ScalarOrSchedule | None = None,
  l2: optax.ScalarOrSchedule | None = None,
  group_l1: optax.ScalarOrSchedule | None = None,
  group_axis: GroupAxes | None = None,
  l0: optax.ScalarOrSchedule | None = None,
  mcp: optax.ScalarOrSchedule | None = None,
  mcp_gamma: float = 3.0,
  scad: optax.ScalarOrSchedule | None = None,
  scad_a: float = 3.7,
  mask: Mask | None = None,
  target_sparsity: optax.ScalarOrSchedule | None = None,
  sparsity_penalty: str = "l0",
  target_groups: bool = False,
  freeze_support: bool = True,
  freeze_step: int | None = None,
  target_update_every: int | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""AdamW with the L1 prox in Adam's metric; the decoupled weight decay stays separate.

  .. math::

    w \leftarrow \frac{\operatorname{soft}(w - \eta_t(\hat m / d + \mu w),\ \eta_t\lambda_1/d)}
      {1 + \eta_t\lambda_2/d},

  the weight decay :math:`\mu` applied before the prox, as ProxGen does. Unlike ``l2`` (a
  penalty in the objective, scaled by Adam's metric), ``weight_decay`` is decoupled from it,
  exactly as in ``optax.adamw``. ``mask`` selects the leaves that are both decayed and
  penalised (optax's ``adamw`` uses ``mask`` for the decay in the same way).

  Args:
    learning_rate: :math:`\eta_t`, a float or a schedule.
    b1: decay of the first moment.
    b2: decay of the second moment.
    eps: added to :math:`\sqrt{\hat v}`.
    eps_root: added to :math:`\hat v` inside the square root.
    weight_decay: the decoupled weight decay :math:`\mu \ge 0`, or a schedule.
    nesterov: whether to use Nesterov momentum.
    <penalty arguments>

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` requires ``params``. Keep
    it last in a chain: a stage after it (``optax.scale``, lookahead, schedule-free,
    ``optax.contrib.reduce_on_plateau``) rescales or mixes its update and loses the exact zeros.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_l1
    >>> tx = optax_l1.adamw(1e-3, weight_decay=1e-2, l1=1e-4)
    >>> state = tx.init(jnp.ones(3))

  References:
    Loshchilov & Hutter, `Decoupled Weight Decay Regularization
    <https://arxiv.org/abs/1711.05101>`_, 2019

  .. seealso:: :func:`optax_l1.adam`
  """
  return _proximal.proximal(
    preconditioners.adam(b1, b2, eps, eps_root, nesterov=nesterov),
    learning_rate,
    l1=l1,
    l2=l2,
    group_l1=group_l1,
    group_axis=group_axis,
    l0=l0,
    mcp=mcp,
    mcp_gamma=mcp_gamma,
    scad=scad,
    scad_a=scad_a,
    weight_decay=weight_decay,
    mask=mask,
    target_sparsity=target_sparsity,
    sparsity_penalty=sparsity_penalty,
    target_groups=target_groups,
    freeze_support=freeze_support,
    freeze_step=freeze_step,
    target_update_every=target_update_every,
  )


@_with_penalty_arguments
def rmsprop(
  learning_rate: optax.ScalarOrSchedule,
  decay: float = 0.9,
  eps: float = 1e-8,
  initial_scale: float = 0.0,
  eps_in_sqrt: bool = True,
  *,
  l1: optax.ScalarOrSchedule | None = None,
  l2: optax.ScalarOrSchedule | None = None,
  group_l1: optax.ScalarOrSchedule | None = None,
  group_axis: GroupAxes | None = None,
  l0: optax.ScalarOrSchedule | None = None,
  mcp: optax.ScalarOrSchedule | None = None,
  mcp_gamma: float = 3.0,
  scad: optax.ScalarOrSchedule | None = None,
  scad_a: float = 3.7,
  mask: Mask | None = None,
  target_sparsity: optax.ScalarOrSchedule | None = None,
  sparsity_penalty: str = "l0",
  target_groups: bool = False,
  freeze_support: bool = True,
  freeze_step: int | None = None,
  target_update_every: int | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""RMSProp with the L1 prox in RMSProp's metric.

  .. math::

    v \leftarrow \rho v + (1-\rho) g^2, \quad d = \sqrt{v + \epsilon}
    \text{ (or } \sqrt{v} + \epsilon\text{)}, \quad
    w \leftarrow \frac{\operatorname{soft}(w - \eta_t g / d,\ \eta_t\lambda_1/d)}
      {1 + \eta_t\lambda_2/d}.

  Args:
    learning_rate: :math:`\eta_t`, a float or a schedule.
    decay: the decay :math:`\rho`.
    eps: the stabiliser :math:`\epsilon`.
    initial_scale: the initial value of :math:`v`.
    eps_in_sqrt: whether :math:`\epsilon` goes inside the square root (optax's default).
    <penalty arguments>

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` requires ``params``. Keep
    it last in a chain: a stage after it (``optax.scale``, lookahead, schedule-free,
    ``optax.contrib.reduce_on_plateau``) rescales or mixes its update and loses the exact zeros.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_l1
    >>> tx = optax_l1.rmsprop(1e-3, l1=1e-4)
    >>> state = tx.init(jnp.ones(3))

  References:
    Yun, Lozano & Yang, `Adaptive Proximal Gradient Methods for Structured Neural Networks
    <https://proceedings.neurips.cc/paper/2021/hash/cc3f5463bc4d26bc38eadc8bcffbc654-Abstract.html>`_,
    NeurIPS 2021

  .. seealso:: :func:`optax_l1.adam`
  """
  return _proximal.proximal(
    preconditioners.rmsprop(decay, eps, initial_scale, eps_in_sqrt),
    learning_rate,
    l1=l1,
    l2=l2,
    group_l1=group_l1,
    group_axis=group_axis,
    l0=l0,
    mcp=mcp,
    mcp_gamma=mcp_gamma,
    scad=scad,
    scad_a=scad_a,
    mask=mask,
    target_sparsity=target_sparsity,
    sparsity_penalty=sparsity_penalty,
    target_groups=target_groups,
    freeze_support=freeze_support,
    freeze_step=freeze_step,
    target_update_every=target_update_every,
  )


@_with_penalty_arguments
def adagrad(
  learning_rate: optax.ScalarOrSchedule,
  initial_accumulator_value: float = 0.1,
  eps: float = 1e-7,
  *,
  l1: optax.ScalarOrSchedule | None = None,
  l2: optax.ScalarOrSchedule | None = None,
  group_l1: optax.ScalarOrSchedule | None = None,
  group_axis: GroupAxes | None = None,
  l0: optax.ScalarOrSchedule | None = None,
  mcp: optax.ScalarOrSchedule | None = None,
  mcp_gamma: float = 3.0,
  scad: optax.ScalarOrSchedule | None = None,
  scad_a: float = 3.7,
  mask: Mask | None = None,
  target_sparsity: optax.ScalarOrSchedule | None = None,
  sparsity_penalty: str = "l0",
  target_groups: bool = False,
  freeze_support: bool = True,
  freeze_step: int | None = None,
  target_update_every: int | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Proximal Adagrad (TensorFlow's ``ProximalAdagradOptimizer`` when ``eps=0``).

  .. math::

    n \leftarrow n + g^2, \quad \tilde\eta = \eta_t / \sqrt{n + \epsilon}, \quad
    w \leftarrow \frac{\operatorname{soft}(w - \tilde\eta g,\ \tilde\eta\lambda_1)}
      {1 + \tilde\eta\lambda_2},

  with :math:`n` starting at ``initial_accumulator_value`` (0.1, as TF and optax).

  Args:
    learning_rate: :math:`\eta_t`, a float or a schedule.
    initial_accumulator_value: the initial value of :math:`n`.
    eps: added to :math:`n` inside the square root (as ``optax.adagrad``; TF has none).
    <penalty arguments>

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` requires ``params``. Keep
    it last in a chain: a stage after it (``optax.scale``, lookahead, schedule-free,
    ``optax.contrib.reduce_on_plateau``) rescales or mixes its update and loses the exact zeros.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_l1
    >>> tx = optax_l1.adagrad(0.1, l1=1e-3)
    >>> state = tx.init(jnp.ones(3))

  References:
    Duchi, Hazan & Singer, `Adaptive Subgradient Methods for Online Learning and Stochastic
    Optimization <https://jmlr.org/papers/v12/duchi11a.html>`_, 2011

  .. seealso:: :func:`optax_l1.adam`
  """
  return _proximal.proximal(
    preconditioners.adagrad(initial_accumulator_value, eps),
    learning_rate,
    l1=l1,
    l2=l2,
    group_l1=group_l1,
    group_axis=group_axis,
    l0=l0,
    mcp=mcp,
    mcp_gamma=mcp_gamma,
    scad=scad,
    scad_a=scad_a,
    mask=mask,
    target_sparsity=target_sparsity,
    sparsity_penalty=sparsity_penalty,
    target_groups=target_groups,
    freeze_support=freeze_support,
    freeze_step=freeze_step,
    target_update_every=target_update_every,
  )
