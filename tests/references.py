"""NumPy references of the published formulas the tests hold the library to.

Written from the papers and closed forms, independently of the library, in float64 unless a
test asks for another ``dtype`` (the property tests ask for the library's compute dtype, to
compare bit for bit). Imported by the test files as ``import references``; no test file keeps
its own copy of a formula.

The optimizers are ``(init, step)`` pairs, elementwise, run leaf by leaf by :func:`run`:
``step(w, g, state, k)`` returns the new weight and state, with ``k`` the 0-based step number
at which schedules are evaluated (optax evaluates them at the count before incrementing it).
Each takes its step, then the prox of the penalty in the step's metric, ``prox(z, s, k)`` with
``s`` the per-coordinate step size: η/d for the adaptive methods, η (η/(1 − β) under momentum)
for SGD.
"""

import math

import numpy as np

# ----------------------------------------------------------------------------------------------
# Proximal operators.
# ----------------------------------------------------------------------------------------------


def soft_threshold(x, t, dtype=np.float64):
  """soft(x, t) = sign(x)·max(|x| − t, 0) = x − clip(x, −t, t) (Donoho 1995)."""
  x = np.asarray(x).astype(dtype)
  t = np.asarray(t, dtype)
  return x - np.clip(x, -t, t)


def elastic_net(x, l1, l2=0.0, scaling=1.0, dtype=np.float64):
  """argmin_y ½(y − x)² + s(λ₁|y| + λ₂y²/2) = soft(x, sλ₁)/(1 + sλ₂) (Zou & Hastie 2005)."""
  return soft_threshold(x, scaling * l1, dtype) / (1 + np.asarray(scaling * l2, dtype))


def block_soft_threshold(x, t, axis=-1):
  """x_G·max(0, 1 − t/‖x_G‖₂) per group G (the indices along ``axis``); 0 for a zero group."""
  x = np.asarray(x, np.float64)
  axes = tuple(i for i in range(x.ndim) if i != axis % x.ndim)
  norm = np.sqrt(np.sum(x * x, axis=axes, keepdims=True))
  with np.errstate(divide="ignore", invalid="ignore"):
    factor = np.where(norm > 0, np.maximum(0, 1 - t / norm), 0)
  return x * factor


def group_l1(x, l1, scaling=1.0, axis=-1):
  """The group lasso's prox, argmin_y ½‖y − x‖² + sλ Σ_G √|G|‖y_G‖₂ (Yuan & Lin 2006)."""
  x = np.asarray(x, np.float64)
  group_size = x.size // x.shape[axis]
  return block_soft_threshold(x, scaling * l1 * np.sqrt(group_size), axis)


def group_l1_in_metric(x, l1, step, axis=-1, size=1):
  """The group lasso's prox with groups of ``size`` consecutive indices along ``axis`` (each
  spanning every index of the other axes), one loop iteration per group, in a diagonal metric
  of per-coordinate step sizes ``step`` (a number or an array like ``x``): each group takes the
  step of its mean metric, 1/mean(1/step), as optax_l1 documents (the exact prox for equal
  steps, Yuan & Lin 2006)."""
  x = np.asarray(x, np.float64)
  step = np.broadcast_to(np.asarray(step, np.float64), x.shape)
  out = np.zeros_like(x)
  axis %= x.ndim
  for g in range(x.shape[axis] // size):
    where = [slice(None)] * x.ndim
    where[axis] = slice(g * size, (g + 1) * size)
    xg, sg = x[tuple(where)], step[tuple(where)]
    t = l1 * np.sqrt(xg.size) / np.mean(1 / sg)
    norm = np.linalg.norm(xg)
    out[tuple(where)] = xg * max(0.0, 1 - t / norm) if norm > 0 else 0.0
  return out


def hard_threshold(x, t, dtype=np.float64):
  """L0's prox, argmin_y ½(y − x)² + (t²/2)·[y ≠ 0] = x·[|x| > t] (Blumensath & Davies 2008)."""
  x = np.asarray(x).astype(dtype)
  return np.where(np.abs(x) > np.asarray(t, dtype), x, np.zeros((), dtype))


# ----------------------------------------------------------------------------------------------
# Schedules and gradient transformations of optax, in closed form.
# ----------------------------------------------------------------------------------------------


def _schedule(h):
  return h if callable(h) else (lambda k: h)


def linear_schedule(init, end, steps):
  """optax.linear_schedule at the 0-based step k: init + (end − init)·min(k, steps)/steps."""
  return lambda k: init + (end - init) * min(k, steps) / steps


def global_norm(grads):
  """‖g‖₂ over every leaf of a dict of arrays."""
  return math.sqrt(sum(float(np.sum(np.asarray(x, np.float64) ** 2)) for x in grads.values()))


def clip_by_global_norm(grads, max_norm):
  """g·max_norm/‖g‖₂ where ‖g‖₂ > max_norm, else g (Pascanu et al. 2013; optax's)."""
  norm = global_norm(grads)
  grads = {k: np.asarray(x, np.float64) for k, x in grads.items()}
  if norm <= max_norm:
    return grads
  return {k: x / norm * max_norm for k, x in grads.items()}


# ----------------------------------------------------------------------------------------------
# Optimizer steps with their prox.
# ----------------------------------------------------------------------------------------------


def _elastic_net_prox(l1, l2):
  return lambda z, s, k: elastic_net(z, l1(k), l2(k), s)


def sgd(lr, l1=0.0, l2=0.0, momentum=None, nesterov=False, weight_decay=0.0):
  """FOBOS/ISTA with (Nesterov) momentum: w ← elastic_net(w − η(p + μw), s = η·c_t)."""
  # Duchi & Singer 2009 (TF1 ProximalGradientDescent). Trace t ← g + βt; p = t, or g + βt with
  # Nesterov. Under momentum the step size is η·c_t, c_t = (1 − βᵗ)/(1 − β) at step t (1 + βc_t
  # with Nesterov), as documented in optax_l1.preconditioners.sgd: the factor by which momentum
  # has multiplied a constant gradient so far, so the fixed point is the minimiser of
  # f + λ₁‖w‖₁ at every t (with η alone, that of f + (1 − β)λ₁‖w‖₁ in the limit).
  lr, l1, l2, weight_decay = map(_schedule, (lr, l1, l2, weight_decay))

  def factor(k):
    if momentum is None:
      return 1.0
    warmed_up = (1 - momentum ** (k + 1)) / (1 - momentum)
    return 1 + momentum * warmed_up if nesterov else warmed_up

  def init(w):
    return np.zeros_like(w)

  def step(w, g, trace, k):
    if momentum is None:
      direction = g
    else:
      trace = g + momentum * trace
      direction = g + momentum * trace if nesterov else trace
    eta = lr(k)
    z = w - eta * (direction + weight_decay(k) * w)
    return elastic_net(z, l1(k), l2(k), eta * factor(k)), trace

  return init, step


def adam(
  lr, l1=0.0, l2=0.0, weight_decay=0.0, b1=0.9, b2=0.999, eps=1e-8, *, in_metric=True, prox=None
):
  """ProxGen AdamL1 (Yun et al. 2021): w ← prox(w − η(m̂/d + μw), s = η/d), d = √v̂ + ε."""
  # m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², bias-corrected; μ: decoupled weight decay
  # (AdamW), before the prox. The default prox is the elastic net in the metric d,
  # argmin_y d/(2η)(y − z)² + λ₁|y| + λ₂y²/2; ``prox(z, s, k)`` replaces it (group lasso, L0).
  # ``in_metric=False`` is the naive chain optax.adam then l1_prox: the step size η, not η/d.
  lr, l1, l2, weight_decay = map(_schedule, (lr, l1, l2, weight_decay))
  prox = prox or _elastic_net_prox(l1, l2)

  def init(w):
    return np.zeros_like(w), np.zeros_like(w)

  def step(w, g, state, k):
    m, v = state
    t = k + 1
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat = m / (1 - b1**t)
    # A coordinate with no gradient yet (v = 0) has its metric floored at √ε (optax_l1's rule,
    # documented in optax_l1.preconditioners.adam).
    d = np.where(v == 0, np.sqrt(eps), np.sqrt(v / (1 - b2**t)) + eps)
    eta = lr(k)
    z = w - eta * (m_hat / d + weight_decay(k) * w)
    return prox(z, eta / d if in_metric else eta, k), (m, v)

  return init, step


def rmsprop(lr, l1=0.0, l2=0.0, decay=0.9, eps=1e-8, eps_in_sqrt=True):
  """RMSProp in its own metric: v ← ρv + (1 − ρ)g², d = √(v + ε) or √v + ε, then Adam's prox."""
  lr, l1, l2 = map(_schedule, (lr, l1, l2))

  def init(w):
    return np.zeros_like(w)

  def step(w, g, v, k):
    v = decay * v + (1 - decay) * g * g
    # √(v + ε) is at least √ε; √v + ε is floored there where v = 0, as Adam's.
    d = np.sqrt(v + eps) if eps_in_sqrt else np.where(v == 0, np.sqrt(eps), np.sqrt(v) + eps)
    eta = lr(k)
    return elastic_net(w - eta * g / d, l1(k), l2(k), eta / d), v

  return init, step


def adagrad(lr, l1=0.0, l2=0.0, initial_accumulator_value=0.1):
  """TF1 ProximalAdagrad: n ← n + g², s = η/√n, w ← elastic_net(w − sg, λ₁, λ₂, s); no ε."""
  lr, l1, l2 = map(_schedule, (lr, l1, l2))

  def init(w):
    return np.full_like(w, initial_accumulator_value)

  def step(w, g, n, k):
    n = n + g * g
    eta = lr(k) / np.sqrt(n)
    return elastic_net(w - eta * g, l1(k), l2(k), eta), n

  return init, step


def adabelief(lr, l1=0.0, b1=0.9, b2=0.999, eps=1e-16, eps_root=1e-16):
  """AdaBelief (Zhuang et al. 2020) in its own metric: v ← β₂v + (1 − β₂)(g − m)² + ε_root."""
  # d = √v̂ + ε and the step m̂/d as Adam's, then soft(z, ηλ₁/d).
  lr, l1 = map(_schedule, (lr, l1))

  def init(w):
    return np.zeros_like(w), np.zeros_like(w)

  def step(w, g, state, k):
    m, v = state
    t = k + 1
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * (g - m) ** 2 + eps_root
    # A coordinate with no gradient yet (v = 0) has its metric floored at √ε (optax_l1's rule,
    # documented in optax_l1.preconditioners.adam).
    d = np.where(v == 0, np.sqrt(eps), np.sqrt(v / (1 - b2**t)) + eps)
    eta = lr(k)
    return elastic_net(w - eta * (m / (1 - b1**t)) / d, l1(k), 0.0, eta / d), (m, v)

  return init, step


def run(optimizer, params, grads_seq):
  """An ``(init, step)`` pair's float64 params after each step, from an array or dict ``params``."""
  init, step = optimizer
  if not isinstance(params, dict):
    return [w["w"] for w in run(optimizer, {"w": params}, [{"w": g} for g in grads_seq])]
  params = {k: np.asarray(v, np.float64) for k, v in params.items()}
  state = {k: init(v) for k, v in params.items()}
  trajectory = []
  for k, grads in enumerate(grads_seq):
    for name in params:
      g = np.asarray(grads[name], np.float64)
      params[name], state[name] = step(params[name], g, state[name], k)
    trajectory.append(dict(params))
  return trajectory


# ----------------------------------------------------------------------------------------------
# Optimality conditions of the penalised problems (for the full-batch solver).
# ----------------------------------------------------------------------------------------------


def group_lasso_kkt_violation(grad, w, strength, axis=-1):
  """The largest violation of 0 ∈ ∇f(w) + λ Σ_G √|G|·∂‖w_G‖₂, groups the indices along
  ``axis``: ‖g_G + λ√|G|·w_G/‖w_G‖‖ where w_G ≠ 0, (‖g_G‖ − λ√|G|)₊ where w_G = 0."""
  grad, w = np.asarray(grad, np.float64), np.asarray(w, np.float64)
  grad, w = np.moveaxis(grad, axis, 0), np.moveaxis(w, axis, 0)
  weight = strength * np.sqrt(w[0].size)
  worst = 0.0
  for g_group, w_group in zip(grad, w, strict=True):
    norm = np.linalg.norm(w_group)
    if norm > 0:
      worst = max(worst, np.linalg.norm(g_group + weight * w_group / norm))
    else:
      worst = max(worst, np.linalg.norm(g_group) - weight)
  return worst
