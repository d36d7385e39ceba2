"""Proximal gradient transformations: a prox as the last stage of a chain, or a whole optimizer."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optax_l1 import _penalty, _preconditioners, _prox, _validation

Mask = Any  # a pytree of bools (or a prefix of the params' structure), or a callable of params


class ProximalState(NamedTuple):
  """State of :func:`l1_prox`, :func:`group_l1_prox` and :func:`proximal` (and the aliases).

  Attributes:
    count: the number of steps taken (int32), for schedules and bias correction.
    preconditioner: the optimizer's own state (moments); ``optax.EmptyState()`` for the
      last-stage transformations.
  """

  count: jax.Array  # type: ignore[assignment]  # optax's name for it, shadowing tuple.count
  preconditioner: Any


def l1_prox(
  l1: optax.ScalarOrSchedule,
  learning_rate: optax.ScalarOrSchedule,
  *,
  l2: optax.ScalarOrSchedule = 0.0,
  mask: Mask | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""The L1 (elastic-net) proximal step, as the last stage of an ``optax.chain``.

  The earlier stages produce the step :math:`u` (already scaled by :math:`-\eta_t`); this
  stage replaces it so that the parameters become

  .. math::

    w \leftarrow \frac{\operatorname{soft}(w + u,\ \eta_t\lambda_1)}{1 + \eta_t\lambda_2}
    = \operatorname*{argmin}_y \tfrac{1}{2\eta_t}\|y - (w + u)\|_2^2
      + \lambda_1\|y\|_1 + \tfrac{\lambda_2}{2}\|y\|_2^2,

  the forward-backward (FOBOS / ISTA) step for minimising
  :math:`f(w) + \lambda_1\|w\|_1 + \tfrac{\lambda_2}{2}\|w\|_2^2` over the masked leaves: the
  same objective as adding ``l1 * sum(|w|)`` to the loss, as ``keras.regularizers.l1(l1)``
  does, so ``l1`` needs no retuning. Weights the prox removes are exactly ``0.0`` after
  ``optax.apply_updates`` (bfloat16 and float16 included: the prox is computed in float32).

  .. warning::

    Use this after SGD-like stages only. After an adaptive optimizer (Adam, RMSProp,
    Adagrad, …) the step on coordinate :math:`i` is :math:`\eta/d_i`, far larger than
    :math:`\eta` where gradients are small, so a threshold of :math:`\eta\lambda_1`
    under-thresholds: on a digits MLP, ``chain(optax.adam(lr), l1_prox(l1, lr))`` leaves
    0.14 % exact zeros where :func:`optax_l1.adam` (threshold :math:`\eta\lambda_1/d_i`)
    reaches 95.3 %. Use :func:`optax_l1.adam` and its siblings, or :func:`proximal`.

  ``learning_rate`` must be the one the earlier stages used (same float or schedule): it sets
  the threshold. Hyperparameters given as Python numbers are checked here; values injected
  with ``optax.inject_hyperparams`` or returned by a schedule are traced and used as given
  without checks: a negative ``l1`` is not caught, and the step then *adds*
  :math:`|\eta_t\lambda_1|` to every penalised weight instead of shrinking it (see
  :func:`soft_threshold`). Validate injected values yourself (``jax.experimental.checkify``).

  Args:
    l1: the L1 strength :math:`\lambda_1 \ge 0`, or a schedule of the step count.
    learning_rate: the learning rate :math:`\eta_t` of the earlier stages, or their schedule.
    l2: the L2 strength :math:`\lambda_2 \ge 0` (elastic net), or a schedule.
    mask: which leaves are penalised, as in ``optax.add_decayed_weights``: a pytree of bools
      with the params' structure (or a prefix of it), or a callable returning one. Other
      leaves receive the incoming update unchanged.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` requires ``params``.

  Raises:
    ValueError: at construction, for a negative or non-finite ``l1``, ``l2`` or
      ``learning_rate`` given as a number; in ``update``, if ``params`` is missing or
      ``mask`` does not match the params' structure.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import optax_l1
    >>> tx = optax.chain(optax.sgd(0.01), optax_l1.l1_prox(l1=1.0, learning_rate=0.01))
    >>> params = jnp.array([0.005, 0.5])
    >>> state = tx.init(params)
    >>> updates, state = tx.update(jnp.zeros(2), state, params)
    >>> optax.apply_updates(params, updates)
    Array([0.  , 0.49], dtype=float32)

  References:
    Duchi & Singer, `Efficient Online and Batch Learning Using Forward Backward Splitting
    <https://jmlr.org/papers/v10/duchi09a.html>`_, 2009

  .. seealso:: :func:`proximal`, :func:`optax_l1.sgd`, :func:`optax_l1.adam`
  """
  return _last_stage("optax_l1.l1_prox", learning_rate, _penalty.Penalty(l1=l1, l2=l2), mask)


def group_l1_prox(
  l1: optax.ScalarOrSchedule,
  learning_rate: optax.ScalarOrSchedule,
  *,
  axis: int = -1,
  mask: Mask | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""The group-L1 (group lasso) proximal step, as the last stage of an ``optax.chain``.

  Each index :math:`j` along ``axis`` of a penalised leaf is one group :math:`G` — with the
  default ``axis=-1``, the weights into one output unit of a Dense kernel ``(in, out)`` or of a
  conv kernel ``(h, w, in, out)`` — and the parameters become

  .. math::

    w_G \leftarrow \max\left(0,\ 1 - \frac{\eta_t\lambda\sqrt{|G|}}{\|v_G\|_2}\right) v_G,
    \qquad v = w + u,

  the forward-backward step for :math:`f(w) + \lambda \sum_G \sqrt{|G|}\,\|w_G\|_2`. The
  :math:`\sqrt{|G|}` weight puts :math:`\lambda` on the scale of elementwise L1 (a group of
  one weight is penalised exactly as by :func:`l1_prox`). Whole groups land on exactly ``0.0``:
  a Dense unit whose incoming weights are all zero can be removed from the network.

  For the sparse group lasso (zeros inside the surviving groups too), chain both:
  ``optax.chain(optax.sgd(lr), optax_l1.l1_prox(l1, lr), optax_l1.group_l1_prox(g, lr))`` is its
  exact prox (the elementwise soft threshold, then the block one). As for :func:`l1_prox`, use
  this after SGD-like stages only; with Adam, RMSProp or Adagrad use their ``group_l1``
  argument (:func:`optax_l1.adam`), which thresholds each group in the optimizer's metric.

  Args:
    l1: the group strength :math:`\lambda \ge 0`, or a schedule of the step count.
    learning_rate: the learning rate :math:`\eta_t` of the earlier stages, or their schedule.
    axis: the axis whose indices are the groups. Under ``optax.inject_hyperparams``, pass
      ``static_args=("axis",)``: it injects every number, and an axis must stay static.
    mask: which leaves are penalised (biases usually are not), as in :func:`l1_prox`.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` requires ``params``.

  Raises:
    ValueError: at construction, for a negative or non-finite number; in ``update``, if
      ``params`` is missing, ``mask`` does not match, or ``axis`` is out of range for a leaf.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import optax_l1
    >>> kernel = jnp.array([[2.0, 0.1], [2.0, -0.1], [2.0, 0.1], [-2.0, 0.1]])
    >>> tx = optax.chain(optax.sgd(0.5), optax_l1.group_l1_prox(1.0, 0.5))
    >>> updates, _ = tx.update(jnp.zeros((4, 2)), tx.init(kernel), kernel)
    >>> optax.apply_updates(kernel, updates)  # column norms 4 and 0.2, threshold 0.5·1·√4
    Array([[ 1.5,  0. ],
           [ 1.5,  0. ],
           [ 1.5,  0. ],
           [-1.5,  0. ]], dtype=float32)

  References:
    Yuan & Lin, `Model selection and estimation in regression with grouped variables
    <https://doi.org/10.1111/j.1467-9868.2005.00532.x>`_, 2006

    Simon, Friedman, Hastie & Tibshirani, `A Sparse-Group Lasso
    <https://doi.org/10.1080/10618600.2012.681250>`_, 2013

  .. seealso:: :func:`block_soft_threshold`, :func:`l1_prox`, :func:`optax_l1.adam`
  """
  _validation.check_hyperparameter(l1, "l1")  # checked here to name the arguments as given
  penalty = _penalty.Penalty(group_l1=l1, group_axis=_validation.check_axis(axis, "axis"))
  return _last_stage("optax_l1.group_l1_prox", learning_rate, penalty, mask)


def _last_stage(
  name: str, learning_rate: optax.ScalarOrSchedule, penalty: _penalty.Penalty, mask: Mask | None
) -> optax.GradientTransformationExtraArgs:
  """A prox applied to ``params + updates`` with step size ``learning_rate``."""
  _validation.check_hyperparameter(learning_rate, "learning_rate")
  penalty.validate()

  def init_fn(params):
    del params
    return ProximalState(count=jnp.zeros([], jnp.int32), preconditioner=optax.EmptyState())

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    _validation.check_params(params, name)
    lr = _penalty.value_at(learning_rate, state.count)
    strengths = penalty.at(state.count)
    penalised = _validation.resolve_mask(mask, params)

    def leaf(u, p, on):
      if not (on and _prox.is_float_leaf(p)):
        return u
      p = p.astype(_prox.compute_dtype(p.dtype))
      new = _penalty.prox_leaf(p + u.astype(p.dtype), lr, 1.0, strengths)
      return (new - p).astype(u.dtype)

    new_updates = jax.tree.map(leaf, updates, params, penalised)
    return new_updates, ProximalState(optax.safe_increment(state.count), state.preconditioner)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def proximal(
  preconditioner: _preconditioners.Preconditioner,
  learning_rate: optax.ScalarOrSchedule,
  *,
  l1: optax.ScalarOrSchedule = 0.0,
  l2: optax.ScalarOrSchedule = 0.0,
  group_l1: optax.ScalarOrSchedule = 0.0,
  group_axis: int | None = None,
  l0: optax.ScalarOrSchedule = 0.0,
  weight_decay: optax.ScalarOrSchedule = 0.0,
  mask: Mask | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""A full proximal optimizer: a diagonal step, then the prox in the step's own metric.

  With the preconditioner's direction :math:`p` and per-coordinate metric :math:`d`
  (:math:`d = 1` for SGD, :math:`\sqrt{\hat v} + \epsilon` for Adam, …):

  .. math::

    v = w - \eta_t\,(p + \mu w), \qquad
    w \leftarrow \frac{\operatorname{soft}(v,\ \eta_t\lambda_1/d)}{1 + \eta_t\lambda_2/d}
    = \operatorname*{argmin}_y \tfrac{1}{2\eta_t}\|y - v\|_d^2
      + \lambda_1\|y\|_1 + \tfrac{\lambda_2}{2}\|y\|_2^2,

  where :math:`\|z\|_d^2 = \sum_i d_i z_i^2` and :math:`\mu` is decoupled weight decay. This
  is ProxGen's preconditioned proximal step: the threshold lives in the metric of the step,
  so adaptive optimizers reach exact zeros (see the warning in :func:`l1_prox`). Under ``jax.jit`` the
  metric is computed once per coordinate and the step reads and writes each leaf and moment
  no more often than the optax optimizer it extends. It minimises
  :math:`f(w) + \lambda_1\|w\|_1 + \tfrac{\lambda_2}{2}\|w\|_2^2` over the masked leaves
  (the same :math:`\lambda_1` as ``keras.regularizers.l1``); leaves outside ``mask`` take the
  plain optimizer step, with neither penalty nor weight decay.

  Chain it after gradient stages (``optax.clip_by_global_norm``, …); wrap it in
  ``optax.MultiSteps``, ``optax.inject_hyperparams``, ``optax.apply_if_finite`` as any optax
  optimizer. Traced hyperparameters (injected, or from schedules) are used as given, without
  checks (a negative ``l1`` grows weights; see :func:`l1_prox`). With
  ``optax.inject_hyperparams`` and a callable ``mask``, pass ``static_args="mask"`` (as for
  ``optax.adamw``): otherwise optax takes the callable for a schedule of the step count.

  Args:
    preconditioner: the optimizer step, e.g. ``optax_l1.preconditioners.adam()``.
    learning_rate: :math:`\eta_t`, a float or a schedule of the step count.
    l1: the L1 strength :math:`\lambda_1 \ge 0`, or a schedule.
    l2: the L2 strength :math:`\lambda_2 \ge 0` (elastic net), or a schedule.
    group_l1: the group-lasso strength :math:`\lambda_G \ge 0` (penalty
      :math:`\lambda_G\sum_G\sqrt{|G|}\,\|w_G\|_2`, groups indexed by ``group_axis`` as in
      :func:`group_l1_prox`), or a schedule. With ``l1`` too, the sparse group lasso. Each
      group is thresholded with the step size of its *mean metric*,
      :math:`\bar\eta_G = \eta_t / \operatorname{mean}_{i\in G} d_i` (per-coordinate step
      sizes leave no closed form). The arithmetic mean of the step sizes :math:`\eta_t/d_i`, or
      their maximum, would be dominated by coordinates that never had a gradient
      (:math:`d_i = \epsilon`: a constant input, a dead unit upstream) and remove every group at
      once — measured on the digits MLP, where four pixels are constant: all 256 hidden units
      gone after one step, against 90 % removed at 97.96 % accuracy with the mean metric.
    group_axis: the axis whose indices are the groups; ``None`` (default) is the last
      axis, the output units of Dense and conv kernels. ``None`` rather than ``-1`` so that
      ``optax.inject_hyperparams``, which injects every number, leaves it alone.
    l0: the L0 strength :math:`\lambda_0 \ge 0`, or a schedule: keep :math:`w_i` only where
      :math:`|v_i| > \sqrt{2\eta_t\lambda_0/d_i}` (ProxGen's AdamL0). Non-convex: the result
      depends on initialisation and step size, kept weights are not shrunk, and weights near
      the threshold can flip between zero and non-zero; it cannot be combined with the other
      penalties.
    weight_decay: decoupled weight decay :math:`\mu \ge 0` (AdamW), or a schedule.
    mask: which leaves are penalised (and decayed), as in ``optax.add_decayed_weights``.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` requires ``params``.

  Raises:
    ValueError: at construction, for a negative or non-finite hyperparameter given as a
      number; in ``update``, if ``params`` is missing or ``mask`` does not match them.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import optax_l1
    >>> tx = optax.chain(
    ...     optax.clip_by_global_norm(1.0),
    ...     optax_l1.proximal(optax_l1.preconditioners.adam(), 0.1, l1=0.01))
    >>> params = jnp.array([0.05, 1.0])
    >>> state = tx.init(params)
    >>> updates, state = tx.update(jnp.array([0.0, 0.1]), state, params)
    >>> optax.apply_updates(params, updates).round(4)
    Array([0.  , 0.89], dtype=float32)

  References:
    Yun, Lozano & Yang, `Adaptive Proximal Gradient Methods for Structured Neural Networks
    <https://proceedings.neurips.cc/paper/2021/hash/cc3f5463bc4d26bc38eadc8bcffbc654-Abstract.html>`_,
    NeurIPS 2021

  .. seealso:: :func:`l1_prox`, :mod:`optax_l1.preconditioners`
  """
  if not isinstance(preconditioner, _preconditioners.Preconditioner):
    raise TypeError(
      "preconditioner must be an optax_l1.preconditioners.Preconditioner, which reports the "
      "per-coordinate step size the threshold needs; got "
      f"{type(preconditioner).__name__}. An optax optimizer hides that step size: use "
      "optax_l1.adam/adamw/rmsprop/adagrad/sgd, optax_l1.preconditioners.adam() etc., or "
      "write a Preconditioner for your optimizer."
    )
  _validation.check_hyperparameter(learning_rate, "learning_rate")
  _validation.check_hyperparameter(weight_decay, "weight_decay")
  penalty = _penalty.Penalty(l1=l1, l2=l2, group_l1=group_l1, group_axis=group_axis, l0=l0)
  penalty.validate()

  def init_fn(params):
    return ProximalState(count=jnp.zeros([], jnp.int32), preconditioner=preconditioner.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    _validation.check_params(params, "optax_l1.proximal")
    count = optax.safe_increment(state.count)
    lr = _penalty.value_at(learning_rate, state.count)
    decay = _penalty.value_at(weight_decay, state.count)
    strengths = penalty.at(state.count)
    direction, scale, inner = preconditioner.update(updates, state.preconditioner, count)
    if scale is None:
      scale = jax.tree.map(lambda _: 1.0, params)
    penalised = _validation.resolve_mask(mask, params)

    def leaf(p, step, s, on):
      if not _prox.is_float_leaf(p):
        return jnp.zeros_like(p)
      pc = p.astype(_prox.compute_dtype(p.dtype))
      if not on:
        return (-lr * step).astype(p.dtype)
      v = pc - lr * step if _prox.is_static_zero(decay) else pc - lr * (step + decay * pc)
      return (_penalty.prox_leaf(v, lr, s, strengths) - pc).astype(p.dtype)

    new_updates = jax.tree.map(leaf, params, direction, scale, penalised)
    return new_updates, ProximalState(count=count, preconditioner=inner)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
