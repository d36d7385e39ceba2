"""Transformations placed last in an ``optax.chain``: a prox after SGD-like stages, and a
transformation that keeps exact zeros at zero."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from optax_l1 import _numerics, _penalties, _validation
from optax_l1._proximal import ProximalState


def l1_prox(
  l1: optax.ScalarOrSchedule,
  learning_rate: optax.ScalarOrSchedule,
  *,
  l2: optax.ScalarOrSchedule | None = None,
  mask: _numerics.Mask | None = None,
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
    under-thresholds, and ``chain(optax.adam(lr), l1_prox(l1, lr))`` leaves almost no exact
    zeros (the docs' guide "The naive-chain trap" measures it). Use :func:`optax_l1.adam` and
    its siblings (threshold :math:`\eta\lambda_1/d_i`), or :func:`optax_l1.proximal`.

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
    mask: which leaves are penalised, resolved as ``optax.masked`` does: a pytree of bools
      with the params' structure (or a prefix of it), or a callable returning one. Other
      leaves receive the incoming update unchanged.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` requires ``params``. Keep
    it last in a chain: a stage after it (``optax.scale``, lookahead, schedule-free,
    ``optax.contrib.reduce_on_plateau``) rescales or mixes its update and loses the exact zeros.

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
  return _last_stage(
    "optax_l1.l1_prox", learning_rate, _penalties.Strengths.create(l1=l1, l2=l2), mask
  )


def group_l1_prox(
  l1: optax.ScalarOrSchedule,
  learning_rate: optax.ScalarOrSchedule,
  *,
  axis: _penalties.GroupAxes = -1,
  mask: _numerics.Mask | None = None,
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
    axis: the axis whose indices are the groups; or an :class:`optax_l1.GroupAxis` (blocks of
      consecutive indices), a pytree of axes (per leaf, as the optimizers' ``group_axis``), or
      a function of the params returning one. Under ``optax.inject_hyperparams``, pass
      ``static_args=("axis",)`` for an int: it injects every number, and an axis must stay
      static.
    mask: which leaves are penalised (biases usually are not), as in :func:`l1_prox`.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` requires ``params``. Keep
    it last in a chain: a stage after it (``optax.scale``, lookahead, schedule-free,
    ``optax.contrib.reduce_on_plateau``) rescales or mixes its update and loses the exact zeros.

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
  axis = _penalties.check_group_axis(axis, "axis")
  penalty = _penalties.Strengths.create(group_l1=l1)
  return _last_stage("optax_l1.group_l1_prox", learning_rate, penalty, mask, axis)


def _last_stage(
  name: str,
  learning_rate: optax.ScalarOrSchedule,
  penalty: _penalties.Strengths,
  mask: _numerics.Mask | None,
  group_axis: _penalties.GroupAxes | None = None,
) -> optax.GradientTransformationExtraArgs:
  """A prox applied to ``params + updates`` with step size ``learning_rate``; ``group_axis``:
  the groups of a group penalty."""
  _validation.check_hyperparameter(learning_rate, "learning_rate")

  def layouts_of(params, penalised):
    if group_axis is None:
      return jax.tree.map(lambda _: penalty.group_axis, params)
    return _penalties.leaf_layouts(group_axis, params, penalised, "axis")

  def init_fn(params):
    layouts_of(params, _numerics.resolve_mask(mask, params))  # raises here if they do not fit
    return ProximalState(count=jnp.zeros([], jnp.int32), preconditioner=optax.EmptyState())

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    _validation.check_params(params, name)
    lr = _numerics.value_at(learning_rate, state.count)
    strengths = penalty.at(state.count)
    penalised = _numerics.resolve_mask(mask, params)
    layouts = layouts_of(params, penalised)

    def leaf(u, p, on, layout):
      if not (on and _numerics.is_inexact_leaf(p)):
        return u
      p = p.astype(_numerics.compute_dtype(p.dtype))
      leaf_strengths = strengths._replace(group_axis=layout)
      new = _penalties.prox_in_metric(p + u.astype(p.dtype), lr, 1.0, leaf_strengths)
      return (new - p).astype(u.dtype)

    new_updates = jax.tree.map(leaf, updates, params, penalised, layouts)
    return new_updates, ProximalState(optax.safe_increment(state.count), state.preconditioner)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def keep_zeros() -> optax.GradientTransformationExtraArgs:
  r"""Keeps exactly-zero weights at exactly zero; the others train as the chain says.

  Placed last in an ``optax.chain``, it zeroes the update of every weight that is ``0.0``:

  .. math::

    u_i \leftarrow \begin{cases} 0 & w_i = 0 \\ u_i & \text{otherwise.} \end{cases}

  This is the second half of the "find the support, then refit without shrinkage" recipe
  (relaxed lasso, debiasing): train with an ``optax_l1`` optimizer until the zero pattern
  settles, then fine-tune with a plain optimizer and ``keep_zeros()``, so the surviving
  weights lose the L1 shrinkage bias while the pruned ones stay pruned. The pattern is read
  from the params at every step (no state): a weight that became exactly zero stays zero.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` requires ``params``. Keep
    it last in a chain: a stage after it (``optax.scale``, lookahead, schedule-free,
    ``optax.contrib.reduce_on_plateau``) rescales or mixes its update and loses the exact zeros.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import optax_l1
    >>> params = jnp.array([0.0, 0.5, 0.0, -1.0])
    >>> tx = optax.chain(optax.sgd(0.1), optax_l1.keep_zeros())
    >>> updates, _ = tx.update(jnp.ones(4), tx.init(params), params)
    >>> optax.apply_updates(params, updates)
    Array([ 0. ,  0.4,  0. , -1.1], dtype=float32)

  References:
    Meinshausen, `Relaxed Lasso <https://doi.org/10.1016/j.csda.2006.12.019>`_, 2007

  .. seealso:: :func:`optax_l1.sparsity`
  """

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    _validation.check_params(params, "optax_l1.keep_zeros")

    def leaf(u, p):
      if not _numerics.is_inexact_leaf(p):  # counters, PRNG keys: not weights
        return u
      return jnp.where(p == 0, jnp.zeros((), u.dtype), u)

    return jax.tree.map(leaf, updates, params), state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
