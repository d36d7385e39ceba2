"""``optax_l1.preconditioners``: diagonal optimizer steps for :func:`optax_l1.proximal`.

Each returns a :class:`Preconditioner`: the optimizer's direction and the per-coordinate step
size it was scaled by.

A proximal method needs both: it steps along the direction, then shrinks with a threshold
measured in the same metric as the step. Adam's step on coordinate ``i`` is
``lr * m̂_i / d_i``, so its threshold is ``lr * l1 / d_i``; a threshold of ``lr * l1`` would be
far too small wherever ``d_i`` is small (see :func:`optax_l1.l1_prox`).

Each preconditioner computes its moments, direction and scale in one function per leaf, so
the metric is computed once and never re-read from the updated moments: under ``jax.jit`` the
step touches memory no more often than the optax optimizer it extends.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optax_l1 import _numerics, _validation

Scale = Any  # a pytree of per-coordinate factors 1/d, or None for the identity metric


class Preconditioner(NamedTuple):
  r"""A diagonal optimizer step, the optimizer half of a proximal method.

  ``update(grads, state, count)`` returns ``(direction, scale, new_state)``: the optimizer
  steps by :math:`-\eta\,\mathrm{direction}` and the proximal threshold on coordinate
  :math:`i` is :math:`\eta\lambda_1\,\mathrm{scale}_i` (``scale`` is ``None`` for the identity
  metric of SGD). ``count`` is the 1-based number of the step being taken (int32).

  Write your own for another diagonal optimizer (AdaBelief, Yogi, …): return the update it
  would make before the learning rate, and the per-coordinate factor it divides by. Keep it
  diagonal (each coordinate's result depends on that coordinate of ``grads`` and ``state``
  alone) and mapped over the leaves: with ``target_sparsity``, :func:`optax_l1.proximal` also
  runs ``update`` on a sample of the coordinates, one flat array per tree of the state shaped
  like the params (a state holding other arrays is not sampled; the points are, at more cost).

  Attributes:
    init: ``init(params) -> state``.
    update: ``update(grads, state, count) -> (direction, scale, new_state)``.
  """

  init: Callable[[Any], Any]
  update: Callable[[Any, Any, jax.Array], tuple[Any, Scale, Any]]


class AdamState(NamedTuple):
  """Adam's moments. ``mu``: mean of gradients; ``nu``: mean of squared gradients."""

  mu: Any
  nu: Any


def _compute(x: Any) -> jax.Array:
  x = jnp.asarray(x)
  return x.astype(_numerics.compute_dtype(x.dtype))


def _map_unzip(fn: Callable[..., tuple], n: int, tree: Any, *rest: Any) -> tuple:
  """Maps ``fn`` returning an ``n``-tuple per leaf; returns ``n`` trees."""
  out = jax.tree.map(fn, tree, *rest)  # a tuple at each leaf of `tree`
  return tuple(jax.tree.map(lambda _, o, i=i: o[i], tree, out) for i in range(n))


def _real_full_like(params: Any, value: Any) -> Any:
  """Like ``optax.tree.full_like``, but real for complex leaves (second moments are real)."""

  def leaf(p):
    p = jnp.asarray(p)
    dtype = _numerics.real_dtype(p.dtype) if jnp.iscomplexobj(p) else p.dtype
    return jnp.full(p.shape, value, dtype)

  return jax.tree.map(leaf, params)


def _one_minus_power(b: Any, t: jax.Array) -> jax.Array:
  """``1 - b**t``, the bias correction. For a Python ``b`` it is computed as
  ``-expm1(t·log b)`` with ``log b`` in double precision: ``1 - float32(0.999)**t`` would carry
  float32's rounding of 0.999, a relative error of 1.3e-5 in Adam's second moment."""
  if isinstance(b, (int, float)):
    return -jnp.expm1(t * math.log(b)) if b > 0 else jnp.ones_like(t)
  return 1 - b**t


def sgd(momentum: float | None = None, nesterov: bool = False) -> Preconditioner:
  r"""SGD, optionally with (Nesterov) momentum: the identity metric.

  With momentum :math:`\beta`: :math:`t \leftarrow g + \beta t` and the direction is :math:`t`
  (or :math:`g + \beta t` with Nesterov), as ``optax.sgd``. The prox is applied to the point
  the optimizer steps to. Without momentum the metric is the identity (threshold
  :math:`\eta\lambda_1`). With momentum, the scale at step :math:`k` (1-based) is the factor
  by which momentum has multiplied a constant gradient so far,

  .. math::

    c_k = \sum_{i<k} \beta^i = \frac{1 - \beta^k}{1 - \beta}
    \quad\text{(Nesterov: } 1 + \beta c_k\text{)},

  so the threshold :math:`\eta\lambda_1 c_k` warms up with the momentum, from
  :math:`\eta\lambda_1` at the first step to :math:`\eta\lambda_1/(1-\beta)`. At a fixed point
  (a constant gradient) the step and the threshold carry the same factor, so the iteration
  minimises :math:`f + \lambda_1\|w\|_1` at every step count; a threshold of
  :math:`\eta\lambda_1` alone would converge to the minimiser of
  :math:`f + (1-\beta)\lambda_1\|w\|_1`.

  Args:
    momentum: the momentum decay :math:`0 \le \beta < 1`, or ``None`` for plain SGD.
    nesterov: whether to use Nesterov momentum.

  Returns:
    A :class:`Preconditioner`.
  """
  if momentum is not None:
    _validation.check_hyperparameter(momentum, "momentum", schedule=False)
    _validation.check_below_one(momentum, "momentum")
  elif nesterov:
    raise ValueError("nesterov=True needs a momentum: pass momentum=0.9, for example.")

  def init(params):
    if momentum is None:
      return optax.EmptyState()
    return optax.tree.zeros_like(params)

  def update(grads, state, count):
    if momentum is None:
      return grads, None, state

    def leaf(g, t):
      new_t = _compute(g) + momentum * _compute(t)
      direction = _compute(g) + momentum * new_t if nesterov else new_t
      return direction, new_t.astype(t.dtype)

    direction, trace = _map_unzip(leaf, 2, grads, state)
    factors: dict[Any, jax.Array] = {}

    def factor(g):
      """(1 − β^k) / (1 − β) (Nesterov: 1 + β times it): a scalar per step and dtype."""
      dtype = _numerics.real_dtype(_numerics.compute_dtype(jnp.result_type(g)))
      if dtype not in factors:
        warmed_up = _one_minus_power(momentum, count.astype(dtype)) / (1 - momentum)
        factors[dtype] = 1 + momentum * warmed_up if nesterov else warmed_up
      return factors[dtype]

    return direction, jax.tree.map(factor, grads), trace

  return Preconditioner(init, update)


def adam(
  b1: float = 0.9,
  b2: float = 0.999,
  eps: float = 1e-8,
  eps_root: float = 0.0,
  *,
  nesterov: bool = False,
  eps_hat: bool = False,
) -> Preconditioner:
  r"""Adam's step, with the metric :math:`d = \sqrt{\hat v + \epsilon_{root}} + \epsilon`.

  .. math::

    m \leftarrow \beta_1 m + (1-\beta_1) g, \quad v \leftarrow \beta_2 v + (1-\beta_2) |g|^2,
    \quad \mathrm{direction} = \hat m / d, \quad \mathrm{scale} = 1 / d,

  with bias-corrected :math:`\hat m, \hat v`, exactly as ``optax.scale_by_adam``
  (``nesterov=True`` uses Dozat's NAdam momentum, as optax does; complex parameters take
  :math:`|g|^2`, as optax does, and keep :math:`v` real).

  A coordinate whose gradient has been exactly zero at every step so far (an embedding row no
  batch has touched yet, the weight of an input that is constant) has :math:`v = 0` and no
  step; its metric :math:`\epsilon` would make the threshold :math:`\eta\lambda_1/\epsilon` and
  remove it at once, before the loss has seen it. Its metric is floored instead at
  :math:`d_0 = \max(\sqrt{\epsilon_{root}} + \epsilon, \sqrt{\epsilon})` (1e-4 at the default
  :math:`\epsilon`, the floor RMSProp's :math:`\sqrt{v + \epsilon}` has): such a weight
  shrinks by :math:`\eta\lambda_1/d_0` a step, as the objective asks, but is not removed
  by one step. Coordinates that have had a gradient keep Adam's metric exactly.

  With ``eps_hat=True``, :math:`\epsilon` is Kingma & Ba's :math:`\hat\epsilon` (the
  formula before their Section 2.1), as in Keras and TensorFlow: it is added to
  :math:`\sqrt{v}` before the bias correction, so the metric is
  :math:`d = \sqrt{\hat v + \epsilon_{root}} + \epsilon / \sqrt{1 - \beta_2^t}`, and the step
  is ``keras.optimizers.Adam``'s :math:`\eta\,m\sqrt{1-\beta_2^t}/(1-\beta_1^t)/(\sqrt{v}+\epsilon)`.

  Args:
    b1: decay of the first moment.
    b2: decay of the second moment.
    eps: added to :math:`\sqrt{\hat v}`.
    eps_root: added to :math:`\hat v` inside the square root.
    nesterov: whether to use Nesterov momentum.
    eps_hat: whether ``eps`` is added before the bias correction (Keras' Adam) rather than
      after it (optax's).

  Returns:
    A :class:`Preconditioner`.

  References:
    Kingma & Ba, `Adam: A Method for Stochastic Optimization
    <https://arxiv.org/abs/1412.6980>`_, 2014
  """
  for value, name in ((b1, "b1"), (b2, "b2"), (eps, "eps"), (eps_root, "eps_root")):
    _validation.check_hyperparameter(value, name, schedule=False)
  _validation.check_below_one(b1, "b1")
  _validation.check_below_one(b2, "b2")

  def init(params):
    return AdamState(mu=optax.tree.zeros_like(params), nu=_real_full_like(params, 0.0))

  def update(grads, state, count):
    corrections: dict[Any, tuple[Any, Any, Any, Any]] = {}
    untouched_metric = jnp.maximum(jnp.sqrt(eps_root) + eps, jnp.sqrt(eps))

    def bias_corrections(dtype):
      """Scalar factors, in the leaf's precision, computed once per dtype rather than per
      leaf (fewer ops to trace and compile); they leave one divide per coordinate."""
      if dtype not in corrections:
        t = count.astype(dtype)
        inv_c1, inv_c2 = 1 / _one_minus_power(b1, t), 1 / _one_minus_power(b2, t)
        if nesterov:
          mu_factor, g_factor = b1 / _one_minus_power(b1, t + 1), (1 - b1) * inv_c1
        else:
          mu_factor, g_factor = inv_c1, None
        eps_t = eps * jnp.sqrt(inv_c2) if eps_hat else eps
        corrections[dtype] = (mu_factor, g_factor, inv_c2, eps_t)
      return corrections[dtype]

    def leaf(g, mu, nu):
      gc = _compute(g)
      mu_factor, g_factor, inv_c2, eps_t = bias_corrections(_numerics.real_dtype(gc.dtype))
      new_mu = b1 * _compute(mu) + (1 - b1) * gc
      new_nu = b2 * _compute(nu) + (1 - b2) * _numerics.abs_sq(gc)
      m_hat = new_mu * mu_factor if g_factor is None else mu_factor * new_mu + g_factor * gc
      nu_hat = new_nu * inv_c2
      if not _numerics.is_static_zero(eps_root):
        nu_hat = nu_hat + eps_root
      metric = jnp.where(new_nu == 0, untouched_metric, jnp.sqrt(nu_hat) + eps_t)
      scale = 1 / metric
      return m_hat * scale, scale, new_mu.astype(mu.dtype), new_nu.astype(nu.dtype)

    direction, scale, mu, nu = _map_unzip(leaf, 4, grads, state.mu, state.nu)
    return direction, scale, AdamState(mu=mu, nu=nu)

  return Preconditioner(init, update)


class RMSPropState(NamedTuple):
  """RMSProp's state with ``centered`` or ``momentum`` (without them it is ``nu`` alone).

  ``nu``: mean of squared gradients; ``mu``: mean of gradients (``centered``, else
  ``optax.EmptyState()``); ``trace``: the momentum of the preconditioned gradients
  (``momentum``, else ``optax.EmptyState()``).
  """

  nu: Any
  mu: Any
  trace: Any


def rmsprop(
  decay: float = 0.9,
  eps: float = 1e-8,
  initial_scale: float = 0.0,
  eps_in_sqrt: bool = True,
  *,
  centered: bool = False,
  momentum: float | None = None,
) -> Preconditioner:
  r"""RMSProp's step: :math:`v \leftarrow \rho v + (1-\rho) g^2`, direction :math:`g / d`.

  The metric is :math:`d = \sqrt{v + \epsilon}` (``eps_in_sqrt=True``, optax's default) or
  :math:`d = \sqrt{v} + \epsilon`, exactly as ``optax.scale_by_rms``. ``centered=True``
  subtracts the squared mean gradient, :math:`m \leftarrow \rho m + (1-\rho) g`,
  :math:`d = \sqrt{v - m^2 + \epsilon}` (as ``optax.scale_by_stddev``). With ``momentum``
  :math:`\mu`, the direction is the trace :math:`t \leftarrow \mu t + g/d` of the
  preconditioned gradients (``keras.optimizers.RMSprop``'s momentum, and optax's for a constant
  learning rate), and the scale carries the factor :math:`(1-\mu^k)/(1-\mu)` by which the
  momentum has multiplied a constant step by step :math:`k`, as :func:`sgd`'s does.

  Args:
    decay: the decay :math:`\rho` of the squared-gradient average.
    eps: the stabiliser :math:`\epsilon`.
    initial_scale: the initial value of :math:`v`.
    eps_in_sqrt: whether :math:`\epsilon` goes inside the square root.
    centered: whether to subtract the squared mean gradient from :math:`v`.
    momentum: the momentum decay :math:`0 \le \mu < 1`, or ``None`` for none.

  Returns:
    A :class:`Preconditioner`; its state is :math:`v` alone without ``centered`` and
    ``momentum``, an :class:`RMSPropState` with either.

  References:
    Tieleman & Hinton, `Lecture 6.5 — RMSProp
    <https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf>`_, 2012

    Graves, `Generating Sequences With Recurrent Neural Networks
    <https://arxiv.org/abs/1308.0850>`_, 2013 (the centered form)
  """
  for value, name in ((decay, "decay"), (eps, "eps"), (initial_scale, "initial_scale")):
    _validation.check_hyperparameter(value, name, schedule=False)
  _validation.check_below_one(decay, "decay")
  if momentum is not None:
    _validation.check_hyperparameter(momentum, "momentum", schedule=False)
    _validation.check_below_one(momentum, "momentum")
  plain = not centered and momentum is None

  def init(params):
    nu = _real_full_like(params, initial_scale)
    if plain:
      return nu
    return RMSPropState(
      nu=nu,
      mu=optax.tree.zeros_like(params) if centered else optax.EmptyState(),
      trace=optax.tree.zeros_like(params) if momentum is not None else optax.EmptyState(),
    )

  def update(grads, state, count):
    untouched_metric = jnp.maximum(eps, jnp.sqrt(eps))

    def leaf(g, nu, *rest):
      """Moments, direction and scale of one leaf; ``rest`` is (mu if centered, trace if
      momentum)."""
      gc = _compute(g)
      new_nu = decay * _compute(nu) + (1 - decay) * _numerics.abs_sq(gc)
      spread, new_rest = new_nu, []
      if centered:
        mu = rest[0]
        new_mu = decay * _compute(mu) + (1 - decay) * gc
        spread = new_nu - _numerics.abs_sq(new_mu)
        new_rest.append(new_mu.astype(mu.dtype))
      if eps_in_sqrt:
        scale = jax.lax.rsqrt(spread + eps)  # the metric is at least sqrt(eps)
      else:  # floored where no gradient has come yet, as Adam's (see adam)
        metric = jnp.where(new_nu == 0, untouched_metric, jnp.sqrt(spread) + eps)
        scale = 1 / metric
      direction = gc * scale
      if momentum is not None:
        trace = rest[-1]
        direction = momentum * _compute(trace) + direction
        new_rest.append(direction.astype(trace.dtype))
      return direction, scale, new_nu.astype(nu.dtype), *new_rest

    if plain:
      direction, scale, nu = _map_unzip(leaf, 3, grads, state)
      return direction, scale, nu
    rest = ([state.mu] if centered else []) + ([state.trace] if momentum is not None else [])
    direction, scale, nu, *new_rest = _map_unzip(leaf, 3 + len(rest), grads, state.nu, *rest)
    new_mu = new_rest.pop(0) if centered else state.mu
    new_trace = new_rest.pop(0) if momentum is not None else state.trace
    if momentum is not None:
      factors: dict[Any, jax.Array] = {}

      def warm(s):
        """The scale times (1 − μ^k) / (1 − μ), one scalar factor per dtype."""
        dtype = jnp.result_type(s)
        if dtype not in factors:
          factors[dtype] = _one_minus_power(momentum, count.astype(dtype)) / (1 - momentum)
        return s * factors[dtype]

      scale = jax.tree.map(warm, scale)
    return direction, scale, RMSPropState(nu=nu, mu=new_mu, trace=new_trace)

  return Preconditioner(init, update)


def adagrad(initial_accumulator_value: float = 0.1, eps: float = 1e-7) -> Preconditioner:
  r"""Adagrad's step: :math:`n \leftarrow n + g^2`, direction :math:`g / \sqrt{n + \epsilon}`.

  As ``optax.adagrad``; with ``eps=0`` this is TensorFlow's ``ProximalAdagradOptimizer``,
  whose threshold is :math:`\eta\lambda_1/\sqrt{n}` per coordinate.

  Args:
    initial_accumulator_value: the initial value of :math:`n` (TF and optax: 0.1).
    eps: added to :math:`n` inside the square root.

  Returns:
    A :class:`Preconditioner`.

  References:
    Duchi, Hazan & Singer, `Adaptive Subgradient Methods for Online Learning and Stochastic
    Optimization <https://jmlr.org/papers/v12/duchi11a.html>`_, 2011
  """
  _validation.check_hyperparameter(
    initial_accumulator_value, "initial_accumulator_value", schedule=False
  )
  _validation.check_hyperparameter(eps, "eps", schedule=False)

  def init(params):
    return _real_full_like(params, initial_accumulator_value)

  def update(grads, state, count):
    del count

    def leaf(g, n):
      gc = _compute(g)
      new_n = _compute(n) + _numerics.abs_sq(gc)
      scale = jax.lax.rsqrt(new_n + eps)
      return gc * scale, scale, new_n.astype(n.dtype)

    direction, scale, n = _map_unzip(leaf, 3, grads, state)
    return direction, scale, n

  return Preconditioner(init, update)


__all__ = ["AdamState", "Preconditioner", "RMSPropState", "adagrad", "adam", "rmsprop", "sgd"]
