"""FTRL-Proximal (McMahan et al. 2013), with Keras' arguments and a warm start."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optax_l1 import _numerics, _validation, prox


class FtrlState(NamedTuple):
  """State of :func:`ftrl`.

  Attributes:
    count: the number of steps taken (int32), for schedules.
    accumulator: the sum of squared gradients :math:`n`, started at
      ``initial_accumulator_value`` (Keras' ``accumulator``), one per parameter.
    linear: the linear term :math:`z` (Keras' ``linear``), one per parameter; the weights are
      its closed form. With ``warm_start`` it starts where the closed form gives back the
      initial weights, otherwise at zero, as in Keras.

  Both are kept in at least float32 (complex ``linear`` for complex parameters), whatever the
  parameters' dtype: the weights are rebuilt from them at every step. Integer and boolean
  leaves get zeros of their own dtype, which are never used.
  """

  count: jax.Array  # type: ignore[assignment]  # optax's name for it, shadowing tuple.count
  accumulator: optax.Updates
  linear: optax.Updates


def ftrl(
  learning_rate: optax.ScalarOrSchedule,
  *,
  learning_rate_power: float = -0.5,
  initial_accumulator_value: float = 0.1,
  l1: optax.ScalarOrSchedule = 0.0,
  l2: optax.ScalarOrSchedule = 0.0,
  l2_shrinkage: optax.ScalarOrSchedule = 0.0,
  beta: float = 0.0,
  warm_start: bool = True,
  mask: _numerics.Mask | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""FTRL-Proximal, as ``keras.optimizers.Ftrl``, starting from the initial weights.

  For each coordinate, with gradient :math:`g_t`, learning rate :math:`\eta_t` and
  :math:`c = -p \ge 0` for ``learning_rate_power`` :math:`p`:

  .. math::

    n_{t+1} = n_t + g_t^2, \qquad
    \sigma_t = \frac{n_{t+1}^{c} - n_t^{c}}{\eta_t}, \qquad
    z_{t+1} = z_t + g_t + 2\lambda_s w_t - \sigma_t w_t,

    w_{t+1} = -\frac{\operatorname{soft}(z_{t+1},\ \lambda_1)}{q_{t+1}}, \qquad
    q_{t+1} = \frac{n_{t+1}^{c} + \beta}{\eta_t} + 2\lambda_2,

  so a weight is exactly zero while :math:`|z| \le \lambda_1`. With :math:`c = \tfrac12` this
  is McMahan et al.'s per-coordinate FTRL-Proximal, whose learning rate is
  :math:`\eta/(\beta + \sqrt{n})`. The arguments are Keras': ``l1``, ``l2`` and
  ``l2_shrinkage`` are its ``l1_regularization_strength``, ``l2_regularization_strength`` and
  ``l2_shrinkage_regularization_strength``, so its penalty is
  :math:`\lambda_1\|w\|_1 + \lambda_2\|w\|_2^2` (McMahan et al.'s :math:`\lambda_2` is
  :math:`2\lambda_2`, and so is the ``l2`` of :func:`optax_l1.adam` for the same penalty) and
  :math:`\lambda_s` adds the gradient of :math:`\lambda_s\|w\|_2^2` to :math:`g_t`. FTRL's
  strengths apply to the whole history of gradients (a sum, not a mean): they are not those of
  the per-step optimizers for the same loss.

  Keras (and TensorFlow) start :math:`z_0 = 0`, so their first step rebuilds the weights from
  one gradient and throws the initial weights away. With ``warm_start`` (default),

  .. math::

    z_0 = -\left(q_0 w_0 + \lambda_1 \operatorname{sign}(w_0)\right), \qquad
    q_0 = \frac{n_0^{c} + \beta}{\eta_0} + 2\lambda_2,

  with the schedules at step 0, so the closed form returns :math:`w_0`: a zero gradient leaves
  pretrained or randomly initialised weights where they are (up to rounding, and but for the
  shrinkage :math:`\lambda_s`, whose gradient is not zero). With ``warm_start=False`` the
  updates are Keras', step for step. With a learning-rate schedule, :math:`q` follows
  :math:`1/\eta_t` as in Keras (:math:`\sigma_t` accounts for the change of :math:`n`, not of
  :math:`\eta`), so the weights move with the schedule even without gradients; the warm start
  holds at step 0. A coordinate whose :math:`q` is still 0
  (``initial_accumulator_value=0``, no gradient yet, no ``l2`` or ``beta``) keeps its weight,
  where Keras gives NaN.

  ``update`` returns :math:`w_{t+1} - w_t` against the ``params`` it is given, so FTRL works
  under ``optax.apply_updates``, after gradient stages in ``optax.chain``, and in
  ``optax.MultiSteps``, ``optax.apply_if_finite`` and ``optax.inject_hyperparams``. The
  closed form is computed in at least float32 and removed weights land on exactly ``+0.0`` in
  every float dtype. Strengths left at the Python number ``0.0`` cost nothing (under
  ``optax.inject_hyperparams`` they are injected values, and their arithmetic runs).

  Args:
    learning_rate: :math:`\eta_t > 0`, a float or a schedule of the step count (Keras'
      ``learning_rate``).
    learning_rate_power: :math:`p \le 0`; ``-0.5`` is Adagrad's decay of the learning rate,
      ``0`` a fixed learning rate.
    initial_accumulator_value: :math:`n_0 \ge 0`.
    l1: :math:`\lambda_1 \ge 0`, or a schedule.
    l2: :math:`\lambda_2 \ge 0` (Keras' stabilising L2), or a schedule.
    l2_shrinkage: :math:`\lambda_s \ge 0` (Keras' magnitude L2, added to the gradient), or a
      schedule.
    beta: :math:`\beta \ge 0`, the paper's :math:`\beta` in the learning rate
      :math:`\eta/(\beta + \sqrt{n})`.
    warm_start: start :math:`z` so that the first closed form gives back the initial weights
      (default); ``False`` starts it at zero, as Keras does.
    mask: which leaves are penalised, resolved as ``optax.masked`` does: a pytree of bools (or
      a prefix of the params' structure), or a function of the params returning one. The other
      leaves get plain FTRL: ``l1``, ``l2`` and ``l2_shrinkage`` are 0 there, while ``beta``,
      part of the learning rate, still applies. With ``optax.inject_hyperparams`` and a
      callable ``mask``, pass ``static_args="mask"``.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` requires ``params``. Keep
    it last in a chain: a stage after it rescales its update and loses the exact zeros.

  Raises:
    ValueError: at construction, for a ``learning_rate_power`` above 0, a negative
      ``initial_accumulator_value``, strength or ``beta``, a learning rate that is not
      positive, or a non-finite number; in ``update``, if ``params`` is missing or ``mask``
      does not match them.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import optax_l1
    >>> tx = optax_l1.ftrl(0.1, l1=0.1)
    >>> params = jnp.array([0.01, -1.0])
    >>> state = tx.init(params)
    >>> updates, state = tx.update(jnp.array([0.0, 0.0]), state, params)
    >>> optax.apply_updates(params, updates)  # warm start: a zero gradient keeps the weights
    Array([ 0.01, -1.  ], dtype=float32)
    >>> updates, state = tx.update(jnp.array([0.1, 0.1]), state, params)
    >>> optax.apply_updates(params, updates).round(4)
    Array([ 0.    , -1.0302], dtype=float32)

  References:
    McMahan et al., `Ad Click Prediction: a View from the Trenches
    <https://research.google.com/pubs/archive/41159.pdf>`_, KDD 2013

    McMahan, `Follow-the-Regularized-Leader and Mirror Descent: Equivalence Theorems and L1
    Regularization <https://proceedings.mlr.press/v15/mcmahan11b.html>`_, AISTATS 2011

  .. seealso:: :func:`optax_l1.adagrad`, ``keras.optimizers.Ftrl``
  """
  if not callable(learning_rate):
    _validation.check_greater_than(learning_rate, "learning_rate", 0.0)
  _validation.check_at_most(
    learning_rate_power,
    "learning_rate_power",
    0.0,
    ": the learning rate η/n^c decays with the accumulated squared gradients n (-0.5, the "
    "default, as Adagrad; 0 for a fixed learning rate)",
  )
  _validation.check_hyperparameter(
    initial_accumulator_value, "initial_accumulator_value", schedule=False
  )
  for value, name in ((l1, "l1"), (l2, "l2"), (l2_shrinkage, "l2_shrinkage")):
    _validation.check_hyperparameter(value, name)
  _validation.check_hyperparameter(beta, "beta", schedule=False)
  if not isinstance(warm_start, (bool, np.bool_)):
    raise TypeError(f"warm_start must be True or False, got {warm_start!r}.")
  exponent = _negated(learning_rate_power)

  def quadratic(n_power, lr, l2_value):
    """q = (n^c + β)/η + 2λ₂, the coefficient of ½w² in the closed form."""
    q = (n_power if _numerics.is_static_zero(beta) else n_power + beta) / lr
    return q if _numerics.is_static_zero(l2_value) else q + 2 * l2_value

  def init_fn(params):
    count = jnp.zeros([], jnp.int32)
    penalised = _numerics.resolve_mask(mask, params)
    lr, l1_0, l2_0 = (_numerics.value_at(h, count) for h in (learning_rate, l1, l2))

    def leaf(p, on):
      p = jnp.asarray(p)
      if not _numerics.is_inexact_leaf(p):
        return jnp.zeros(p.shape, p.dtype), jnp.zeros(p.shape, p.dtype)
      w = p.astype(_numerics.compute_dtype(p.dtype))
      n = jnp.full(p.shape, initial_accumulator_value, _numerics.real_dtype(w.dtype))
      if not warm_start:
        return n, jnp.zeros_like(w)
      strength, l2_value = (l1_0, l2_0) if on else (0, 0)
      q = quadratic(_power(n, exponent), lr, l2_value)
      z = w * q
      if not _numerics.is_static_zero(strength):
        z = z + strength * jnp.sign(w)
      return n, (-z).astype(w.dtype)

    accumulator, linear = _unzip(2, params, jax.tree.map(leaf, params, penalised))
    return FtrlState(count=count, accumulator=accumulator, linear=linear)

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    _validation.check_params(params, "optax_l1.ftrl")
    lr = _numerics.value_at(learning_rate, state.count)
    strengths = tuple(_numerics.value_at(h, state.count) for h in (l1, l2, l2_shrinkage))
    penalised = _numerics.resolve_mask(mask, params)

    def leaf(p, g, n, z, on):
      if not _numerics.is_inexact_leaf(p):
        return jnp.zeros_like(p), n, z
      strength, l2_value, shrinkage = strengths if on else (0, 0, 0)
      dtype = z.dtype
      w, gc = p.astype(dtype), jnp.asarray(g).astype(dtype)
      new_n = n + _numerics.abs_sq(gc)
      n_power, new_n_power = _power(n, exponent), _power(new_n, exponent)
      step = gc if _numerics.is_static_zero(shrinkage) else gc + 2 * shrinkage * w
      if not _numerics.is_static_zero(exponent):  # σ = 0 for a fixed learning rate
        step = step - (new_n_power - n_power) / lr * w
      new_z = z + step
      q = quadratic(new_n_power, lr, l2_value)
      shrunk = new_z if _numerics.is_static_zero(strength) else prox.soft_threshold(new_z, strength)
      new_w = jnp.where(q > 0, -shrunk / q, w)
      # A removed weight is -0.0 here: (-0.0 - w) + w is +0.0 in every dtype.
      return (new_w - w).astype(p.dtype), new_n.astype(n.dtype), new_z.astype(dtype)

    out = jax.tree.map(leaf, params, updates, state.accumulator, state.linear, penalised)
    new_updates, accumulator, linear = _unzip(3, params, out)
    return new_updates, FtrlState(optax.safe_increment(state.count), accumulator, linear)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _unzip(n: int, params: Any, tree: Any) -> tuple:
  """The ``n`` trees of a tree with an ``n``-tuple at each leaf of ``params``."""
  return tuple(jax.tree.map(lambda _, x, i=i: x[i], params, tree) for i in range(n))


def _negated(power: Any) -> Any:
  """``-power``, kept a Python number (so 0.5 and 0 are recognised when tracing)."""
  return -float(power) if isinstance(power, (int, float)) else -power


def _power(n: jax.Array, exponent: Any) -> jax.Array:
  """``n ** exponent``: a square root for the static 0.5, one for the static 0."""
  if _numerics.is_static_zero(exponent):
    return jnp.ones_like(n)
  if isinstance(exponent, float) and exponent == 0.5:
    return jnp.sqrt(n)
  return jnp.power(n, jnp.asarray(exponent, n.dtype))
