"""Full-batch proximal gradient: FISTA with backtracking for ``fun(params) + penalty(params)``.

The penalties and their proxes are those of the optimizers (:class:`_penalties.Strengths`,
:func:`_penalties.prox_in_metric` with the identity metric); the loop is one
``jax.lax.while_loop``; derivatives of the solution come from the fixed point, not the loop.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from optax_l1 import _numerics, _penalties, _validation

# The line search's step-size warm start (benchmarks/solver.py --ablation measures each choice;
# benchmarks/RESULTS.md, "Full-batch solver", has the numbers):
_GROWTH = 1.25  # after a step accepted at the first try, the next try is this much longer
_PROBE = True  # the first try is 1/(curvature along the first gradient), not 1
_BB = False  # the next try is the Barzilai–Borwein step of the last two points, not the growth
_NOISE = 4.0  # a sufficient-decrease test within _NOISE·eps·(|f(y)| + |f(x⁺)|) says nothing

_STRENGTHS = ("l1", "l2", "group_l1", "l0", "mcp", "scad")


class FistaInfo(NamedTuple):
  r"""What :func:`fista` did, as arrays (one per solve under ``jax.vmap``).

  Attributes:
    iterations: the number of proximal gradient steps taken (int32).
    error: the stopping quantity of the last step: the norm of the prox-gradient mapping
      :math:`\|x^+ - y\|_2 / \eta` at the point :math:`y` the step was taken from (see
      :func:`fista`); ``inf`` before the first step.
    converged: whether ``error <= tol`` was reached, with finite values, within ``maxiter``.
    nonfinite: whether the loop stopped because ``fun``'s value or the step was NaN or
      infinite (the returned params are then the last finite iterate).
    value: the objective ``fun(params, *args) + penalty(params)`` at the returned params; it
      carries derivatives, as the params do.
    stepsize: the step size :math:`\eta` of the last step.
    evaluations: the number of calls of ``fun`` (a value and its gradient count as one).
  """

  iterations: jax.Array
  error: jax.Array
  converged: jax.Array
  nonfinite: jax.Array
  value: jax.Array
  stepsize: jax.Array
  evaluations: jax.Array


def fista(
  fun: Callable[..., Any],
  init_params: Any,
  *args: Any,
  l1: Any = 0.0,
  l2: Any = 0.0,
  group_l1: Any = 0.0,
  group_axis: _penalties.GroupAxes = None,
  l0: Any = 0.0,
  mcp: Any = 0.0,
  mcp_gamma: float = 3.0,
  scad: Any = 0.0,
  scad_a: float = 3.7,
  mask: _numerics.Mask | None = None,
  stepsize: Any = None,
  maxiter: int = 1000,
  tol: float = 1e-5,
  acceleration: bool = True,
  restart: bool = True,
  maxls: int = 30,
) -> tuple[Any, FistaInfo]:
  r"""Minimises ``fun(params, *args) + penalty(params)`` by proximal gradient (FISTA).

  The objective is

  .. math::

    F(x) = f(x) + \sum_{\text{penalised leaves}} \Big(l_1\|x\|_1 + \tfrac{l_2}{2}\|x\|_2^2
      + \text{group\_l1}\sum_G \sqrt{|G|}\,\|x_G\|_2\Big)

  (or one of the non-convex penalties alone: :math:`l_0\|x\|_0`, MCP, SCAD), with the
  strengths meaning what they mean in the optimizers and in :mod:`optax_l1.prox`:
  ``l1=α`` is scikit-learn's ``Lasso(alpha=α)`` when ``fun`` is
  :math:`\tfrac{1}{2n}\|y - Xw\|_2^2`. Each step is, from the point :math:`y`,

  .. math::

    x^+ = \operatorname{prox}_{\eta R}\big(y - \eta\nabla f(y)\big), \qquad
    t^+ = \tfrac{1}{2}\big(1 + \sqrt{1 + 4t^2}\big), \qquad
    y^+ = x^+ + \tfrac{t - 1}{t^+}(x^+ - x),

  Beck and Teboulle's FISTA. With ``stepsize=None`` the step size :math:`\eta` is found by
  backtracking: it is halved (at most ``maxls`` times) until
  :math:`f(x^+) \le f(y) + \langle\nabla f(y), x^+ - y\rangle + \|x^+ - y\|_2^2/(2\eta)`,
  the test being accepted when it fails by less than the rounding of ``fun``'s values. The
  first try is the inverse curvature of ``fun`` along its first gradient; after a step
  accepted at the first try, the next try is 1.25 times longer. With ``restart``, the momentum
  is reset (:math:`t = 1`, :math:`y^+ = x^+`) whenever
  :math:`\langle y - x^+, x^+ - x\rangle > 0`, O'Donoghue and Candès' gradient scheme.

  The loop stops when ``error <= tol``, where ``error`` is the norm of the prox-gradient
  mapping at :math:`y`, :math:`\|x^+ - y\|_2/\eta` (over all leaves; in the units of
  :math:`\nabla f`). It is zero exactly at a minimiser, and for convex :math:`f` with an
  :math:`L`-Lipschitz gradient it bounds the distance from 0 to the subdifferential of
  :math:`F` at the returned :math:`x^+`: :math:`\operatorname{dist}(0, \partial F(x^+)) \le
  (1 + \eta L)\,\text{error}`. It also stops after ``maxiter`` steps (``converged`` is then
  false), and on a NaN or infinite value of ``fun`` or of the step (``nonfinite``: the params
  returned are the last finite iterate).

  ``fista`` works under ``jax.jit`` and ``jax.vmap``: strengths (and ``*args``) may be traced,
  so ``jax.vmap`` over a grid of strengths solves a regularisation path in one call (the loop
  runs until every member stops); :func:`fista_path` solves one with warm starts. Derivatives
  of the solution with respect to the strengths and to ``*args`` (reverse mode: ``jax.grad``,
  ``jax.vjp``) come from the implicit function theorem at the fixed point
  :math:`x^\star = \operatorname{prox}_{\eta R}(x^\star - \eta\nabla f(x^\star))`, one linear
  solve (BiCGSTAB) with Hessian-vector products of ``fun``, not from unrolling the loop: they are
  exact at the solution where the support (which coordinates are zero) does not change nearby,
  and they are zero with respect to ``init_params``.

  A call compiles one solve per ``fun``, shapes and configuration (which strengths are on,
  ``mask``, whether ``stepsize`` is given, ``acceleration``, ``restart``, and the leaves of
  ``*args`` that are not arrays, which are static as for ``jax.jit``) and keeps it: another
  strength, ``tol`` or ``maxiter``, or other arrays of the same shapes, reuse it.

  The non-convex penalties (``l0``, ``mcp``, ``scad``) take their exact proxes, but FISTA has
  no convergence guarantee for them: the result depends on the start and on the step size
  (``acceleration=False``, proximal gradient descent with backtracking, does not increase the
  objective from one step to the next, up to rounding).

  Args:
    fun: the smooth part, ``fun(params, *args)``, returning a real scalar; differentiable
      with respect to ``params`` (twice, for the derivatives of the solution).
    init_params: the starting point: a pytree of real floating-point arrays (a warm start,
      e.g. the solution at a nearby strength).
    *args: passed to ``fun`` (the data); the solution may be differentiated with respect to
      them. Pass arrays here rather than closing over them in ``fun``: what ``fun`` closes
      over is read when the solve is compiled and kept with it, as with ``jax.jit``.
    l1: the L1 strength :math:`\ge 0`: a number, a scalar array (traced under ``jax.vmap``
      or ``jax.grad``), or a pytree with the structure of the params (or a prefix of it) of
      those, one strength per leaf.
    l2: the L2 strength :math:`\ge 0` (elastic net), in the same forms.
    group_l1: the group-lasso strength :math:`\ge 0` (penalty
      :math:`\text{group\_l1}\sum_G\sqrt{|G|}\,\|x_G\|_2`), in the same forms; with ``l1``
      too, the sparse group lasso.
    group_axis: how each penalised leaf splits into groups, as in the optimizers: an int (the
      axis whose indices are the groups), an :class:`optax_l1.GroupAxis` (blocks of
      consecutive indices), a pytree of them with the params' structure (or a prefix of it),
      or a function of the params returning one; ``None`` (default) is the last axis.
    l0: the L0 strength :math:`\ge 0` (non-convex, alone).
    mcp: the MCP strength :math:`\ge 0` (non-convex, alone; see :func:`optax_l1.prox.mcp`).
    mcp_gamma: MCP's :math:`\gamma > 0`.
    scad: the SCAD strength :math:`\ge 0` (non-convex, alone; see :func:`optax_l1.prox.scad`).
    scad_a: SCAD's :math:`a > 2`.
    mask: which leaves are penalised, resolved as ``optax.masked`` does (a pytree of bools, a
      prefix of the params' structure, or a function of the params returning one); the others
      take plain gradient steps.
    stepsize: a fixed step size :math:`\eta > 0` (e.g. :math:`1/L`), or ``None`` (default)
      for the backtracking line search.
    maxiter: the most steps to take (an int >= 1).
    tol: the ``error`` at which to stop (>= 0; 0 runs ``maxiter`` steps).
    acceleration: FISTA's momentum; ``False`` is proximal gradient descent (ISTA).
    restart: reset the momentum by O'Donoghue and Candès' gradient scheme.
    maxls: the most halvings of the step size in one line search (an int >= 1).

  Returns:
    ``(params, info)``: the solution, with the structure and dtypes of ``init_params``, and
    a :class:`FistaInfo`.

  Raises:
    ValueError: at the call, for a negative or non-finite strength given as a number, a
      non-positive ``stepsize``, ``maxiter < 1``, a negative ``tol``, or a non-convex
      penalty combined with another.
    TypeError: at the call, if ``fun`` does not return a real scalar, or a leaf of
      ``init_params`` is not a real floating-point array.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_l1
    >>> x = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    >>> y = jnp.array([2.0, 1.0, 0.1, 3.1])
    >>> loss = lambda w, x, y: 0.5 * jnp.mean((x @ w - y) ** 2)
    >>> w, info = optax_l1.fista(loss, jnp.zeros(3), x, y, l1=0.1)
    >>> [round(float(v), 4) for v in w], bool(info.converged)  # sklearn's Lasso(alpha=0.1)
    ([1.9, 0.9, 0.0], True)

  References:
    Beck & Teboulle, `A Fast Iterative Shrinkage-Thresholding Algorithm for Linear Inverse
    Problems <https://doi.org/10.1137/080716542>`_, 2009

    O'Donoghue & Candès, `Adaptive Restart for Accelerated Gradient Schemes
    <https://doi.org/10.1007/s10208-013-9150-3>`_, 2015

    Blondel et al., `Efficient and Modular Implicit Differentiation
    <https://arxiv.org/abs/2105.15183>`_, 2022

  .. seealso:: :func:`fista_path`, :mod:`optax_l1.prox`
  """
  if stepsize is not None:
    _validation.check_greater_than(stepsize, "stepsize", 0)
  group_axis = _penalties.check_group_axis(group_axis)
  maxiter = _validation.check_int(maxiter, "maxiter", 1)
  maxls = _validation.check_int(maxls, "maxls", 1)
  _validation.check_hyperparameter(tol, "tol", schedule=False)
  if not callable(fun):
    raise TypeError(f"fun must be a function fun(params, *args) -> scalar, got {fun!r}.")
  leaves, treedef_ = jax.tree.flatten(init_params)
  treedef: Any = treedef_
  if not leaves:
    raise ValueError("init_params has no arrays: pass the starting point of the parameters.")
  leaves = [_float_leaf(leaf, path) for leaf, path in zip(leaves, _paths(init_params), strict=True)]
  params = treedef.unflatten(leaves)
  given = {"l1": l1, "l2": l2, "group_l1": group_l1, "l0": l0, "mcp": mcp, "scad": scad}
  penalties = _leaf_penalties(params, treedef, given, group_axis, mcp_gamma, scad_a, mask)
  _check_fun(fun, params, args)
  # One compiled solve per function and configuration: arrays and strengths are its arguments,
  # so calling fista again (another strength, other data of the same shapes) reuses it.
  arg_leaves, arg_treedef = jax.tree.flatten(args)
  dynamic_args = [isinstance(leaf, (jax.Array, np.ndarray)) for leaf in arg_leaves]
  spec, values = _split_penalties(penalties)
  config = _Config(
    fun=fun,
    treedef=treedef,
    penalties=spec,
    arg_treedef=arg_treedef,
    static_args=tuple(
      None if on else leaf for leaf, on in zip(arg_leaves, dynamic_args, strict=True)
    ),
    fixed_step=stepsize is not None,
    acceleration=bool(acceleration),
    restart=bool(restart),
  )
  operands = _Operands(
    leaves=leaves,
    args=[leaf for leaf, on in zip(arg_leaves, dynamic_args, strict=True) if on],
    penalties=values,
    stepsize=stepsize,
    maxiter=maxiter,
    tol=tol,
    maxls=maxls,
  )
  try:
    hash(config)
  except TypeError:  # an argument that is no array and cannot be hashed: trace it each time
    return _run(config, operands)
  return _run_jitted(config, operands)


class _Config(NamedTuple):
  """What a compiled solve is specialised on (hashed by jax.jit)."""

  fun: Callable[..., Any]
  treedef: Any
  penalties: tuple  # per leaf: None (not penalised), or (group_axis, the strengths that are on)
  arg_treedef: Any
  static_args: tuple  # the leaves of args that are not arrays; None where an array goes
  fixed_step: bool
  acceleration: bool
  restart: bool


class _Operands(NamedTuple):
  """The arguments of a compiled solve."""

  leaves: list
  args: list  # the array leaves of args
  penalties: list  # per penalised leaf: the values of its strengths that are on, γ and a
  stepsize: Any
  maxiter: Any
  tol: Any
  maxls: Any


def _split_penalties(penalties):
  """Each leaf's Strengths as a static part (which strengths are on, the group axis) and its
  values (strengths that are a static 0 cost nothing and stay out)."""
  spec: list[Any] = []
  values: list[dict[str, Any]] = []
  for p in penalties:
    on = (
      ()
      if p is None
      else tuple(n for n in _STRENGTHS if not _numerics.is_static_zero(getattr(p, n)))
    )
    if not on:  # no penalty: the same solve as a leaf left out by the mask
      spec.append(None)
      continue
    spec.append((p.group_axis, on))
    values.append(
      {**{name: getattr(p, name) for name in on}, "mcp_gamma": p.mcp_gamma, "scad_a": p.scad_a}
    )
  return tuple(spec), values


def _join_penalties(spec, values):
  remaining = iter(values)
  penalties: list[Any] = []
  for leaf in spec:
    if leaf is None:
      penalties.append(None)
      continue
    axis, _ = leaf
    penalties.append(_penalties.Strengths(group_axis=axis, **next(remaining)))
  return penalties


def _run(config: _Config, operands: _Operands) -> tuple[Any, FistaInfo]:
  """The solve: the loop without derivatives, then the solution with implicit derivatives."""
  treedef, leaves = config.treedef, operands.leaves
  dynamic_args = iter(operands.args)
  args = config.arg_treedef.unflatten(
    [next(dynamic_args) if leaf is None else leaf for leaf in config.static_args]
  )
  penalties = _join_penalties(config.penalties, operands.penalties)
  dtype = jnp.result_type(*leaves)

  def value(xs, args):
    return jnp.asarray(config.fun(treedef.unflatten(xs), *args)).astype(dtype)

  def value_and_grad(xs, args):
    return jax.value_and_grad(value)(xs, args)

  # The loop sees no derivatives (reverse mode cannot go through a while_loop); _implicit
  # gives them to the solution.
  x_star, info = _solve(
    value_and_grad,
    value,
    _stop(leaves),
    _stop(args),
    _stop(penalties),
    dtype=dtype,
    stepsize=None if not config.fixed_step else _stop(operands.stepsize),
    maxiter=operands.maxiter,
    tol=operands.tol,
    acceleration=config.acceleration,
    restart=config.restart,
    maxls=operands.maxls,
  )
  dynamic, rebuild = _traced((penalties, args))

  def optimality(xs, dynamic, eta):
    """T(x) − x, zero at the solution: T(x) = prox_{ηR}(x − η∇f(x))."""
    penalties, args = rebuild(dynamic)
    _, grads = value_and_grad(xs, args)
    return _sub(_prox(_axpy(-eta, grads, xs), eta, penalties), xs)

  root = _implicit(optimality, x_star, dynamic, jax.lax.stop_gradient(info.stepsize))
  penalties, args = rebuild(dynamic)
  objective = value(root, args) + _penalty_value(root, penalties, dtype)
  return treedef.unflatten(root), info._replace(value=objective)


_run_jitted = jax.jit(_run, static_argnums=0)


def fista_path(
  fun: Callable[..., Any], init_params: Any, *args: Any, **options: Any
) -> tuple[Any, FistaInfo]:
  r"""Solves :func:`fista` along a path of strengths, each solve warm-started from the last.

  Every strength given as a 1-D array (``l1``, ``l2``, ``group_l1``, ``l0``, ``mcp``,
  ``scad``, or a leaf of one given as a pytree) is a path: the :math:`k`-th solve uses its
  :math:`k`-th entry and starts from the :math:`(k-1)`-th solution (the first from
  ``init_params``); strengths given as numbers stay fixed. Put the path in decreasing order
  of strength, as ``sklearn.linear_model.lasso_path`` does, so that each start is close to
  the next solution and sparse. The solves run in one ``jax.lax.scan``; derivatives with
  respect to the strengths and ``*args`` are those of each solve (:func:`fista`).

  Args:
    fun: the smooth part, ``fun(params, *args)``, as in :func:`fista`.
    init_params: the start of the first solve.
    *args: passed to ``fun``.
    **options: the keyword arguments of :func:`fista`: the strengths (at least one a 1-D
      array, all of the same length) and the solver's settings (``maxiter``, ``tol``, ...).

  Returns:
    ``(params, info)``: the solutions, each leaf with a leading axis along the path, and a
    :class:`FistaInfo` with that leading axis.

  Raises:
    ValueError: if no strength is a 1-D array, their lengths differ, a strength has more
      than one axis, or an entry is negative or not finite; and as :func:`fista`.

  Examples:
    >>> import jax.numpy as jnp
    >>> import optax_l1
    >>> x = jnp.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    >>> y = jnp.array([2.0, 1.0, 0.1, 3.1])
    >>> loss = lambda w, x, y: 0.5 * jnp.mean((x @ w - y) ** 2)
    >>> path, info = optax_l1.fista_path(loss, jnp.zeros(3), x, y, l1=jnp.array([1.0, 0.5, 0.01]))
    >>> (path == 0).sum(axis=1)  # exact zeros at each strength
    Array([2, 1, 0], dtype=int32)

  .. seealso:: :func:`fista`
  """
  lengths = {}
  for name in _STRENGTHS:
    if name not in options:
      continue
    for path, leaf in jax.tree_util.tree_flatten_with_path(options[name])[0]:
      label = name + jax.tree_util.keystr(path)
      if np.ndim(leaf) > 1:
        raise ValueError(
          f"{label} has shape {np.shape(leaf)}: a path of strengths is a 1-D array (one "
          "entry per solve), and a fixed strength a number."
        )
      if np.ndim(leaf) == 1:
        lengths[label] = np.shape(leaf)[0]
        if not isinstance(leaf, jax.core.Tracer):
          for i, entry in enumerate(np.asarray(leaf)):
            _validation.check_hyperparameter(entry, f"{label}[{i}]", schedule=False)
  if not lengths:
    raise ValueError(
      "fista_path needs at least one strength given as a 1-D array (the path), e.g. "
      "l1=jnp.geomspace(1.0, 0.01, 20); for one strength, call fista."
    )
  if len(set(lengths.values())) > 1:
    raise ValueError(f"the paths of strengths must have one length, got {lengths}.")
  steps = next(iter(lengths.values()))

  def solve(params, k):
    at_k = {
      name: jax.tree.map(lambda v: jnp.asarray(v)[k] if np.ndim(v) == 1 else v, options[name])
      for name in _STRENGTHS
      if name in options
    }
    params, info = fista(fun, params, *args, **{**options, **at_k})
    return params, (params, info)

  _, (path, info) = jax.lax.scan(solve, init_params, jnp.arange(steps))
  return path, info


# ----------------------------------------------------------------------------------------------
# The loop.
# ----------------------------------------------------------------------------------------------


class _Carry(NamedTuple):
  k: jax.Array  # steps taken
  x: list  # the last finite iterate
  y: list  # the point the next step is taken from, with f(y) and ∇f(y)
  f_y: jax.Array
  g_y: list
  t: jax.Array
  eta: jax.Array  # the step size of the last step
  grow: jax.Array  # whether the next line search starts from a longer step
  error: jax.Array
  nonfinite: jax.Array
  evaluations: jax.Array


def _solve(
  value_and_grad,
  value,
  x0,
  args,
  penalties,
  *,
  dtype,
  stepsize,
  maxiter,
  tol,
  acceleration,
  restart,
  maxls,
):
  """The FISTA loop on flat lists of leaves; returns the last finite iterate and its info."""
  eps = jnp.finfo(dtype).eps
  f0, g0 = value_and_grad(x0, args)
  evaluations = jnp.asarray(1, jnp.int32)
  if stepsize is not None:
    eta0 = jnp.asarray(stepsize, dtype)
  elif _PROBE:
    # 1/(the curvature of fun along its first gradient), from a short step along it.
    length = 1e-2 * jnp.maximum(_norm(x0, dtype), 1) / jnp.maximum(_norm(g0, dtype), 1e-30)
    probe = _axpy(-length, g0, x0)
    _, g_probe = value_and_grad(probe, args)
    evaluations += 1
    s = _sub(probe, x0)
    eta0 = _vdot(s, s, dtype) / _vdot(s, _sub(g_probe, g0), dtype)
    eta0 = jnp.where(jnp.isfinite(eta0) & (eta0 > 0), eta0, 1.0).astype(dtype)
  else:
    eta0 = jnp.asarray(1.0, dtype)
  start = _Carry(
    k=jnp.asarray(0, jnp.int32),
    x=x0,
    y=x0,
    f_y=f0,
    g_y=g0,
    t=jnp.asarray(1.0, dtype),
    eta=eta0,
    grow=jnp.asarray(False),
    error=jnp.asarray(jnp.inf, dtype),
    nonfinite=~jnp.isfinite(f0),
    evaluations=evaluations,
  )

  def line_search(c):
    """The step from c.y: the first η, halved, with which f is below its quadratic bound."""

    def trial(eta):
      xp = _prox(_axpy(-eta, c.g_y, c.y), eta, penalties)
      fp = value(xp, args)
      d = _sub(xp, c.y)
      remainder = fp - c.f_y - _vdot(c.g_y, d, dtype)
      bound = _vdot(d, d, dtype) / (2 * eta)
      # Within the rounding of fun's values the test says nothing: accept, and do not grow
      # (growing on noise would lengthen the step until the iterates blow up).
      noise = _NOISE * eps * (jnp.abs(c.f_y) + jnp.abs(fp))
      return xp, fp, remainder <= bound + noise, (remainder <= bound) & (bound > noise)

    def halve(s):
      eta, *_, tries = s
      return (eta / 2, *trial(eta / 2), tries + 1)

    eta = jnp.where(c.grow, c.eta * _GROWTH, c.eta)
    eta, xp, fp, _, sure, tries = jax.lax.while_loop(
      lambda s: ~s[3] & (s[5] < maxls), halve, (eta, *trial(eta), jnp.asarray(1, jnp.int32))
    )
    return eta, xp, jnp.isfinite(fp), (tries == 1) & sure, tries

  def body(c):
    if stepsize is None:
      eta, xp, finite, grow, tries = line_search(c)
    else:
      eta, grow, tries = c.eta, c.grow, 0
      xp = _prox(_axpy(-eta, c.g_y, c.y), eta, penalties)
      finite = jnp.asarray(True)
    d = _sub(xp, c.y)
    error = _norm(d, dtype) / eta
    t_next = c.t
    y_next = xp
    if acceleration:
      step = _sub(xp, c.x)
      t = jnp.where(_vdot(d, step, dtype) < 0, 1.0, c.t) if restart else c.t
      t_next = (1 + jnp.sqrt(1 + 4 * t * t)) / 2
      y_next = _axpy((t - 1) / t_next, step, xp)
    f_next, g_next = value_and_grad(y_next, args)
    if _BB and stepsize is None:
      s = _sub(y_next, c.y)
      bb = _vdot(s, s, dtype) / _vdot(s, _sub(g_next, c.g_y), dtype)
      eta = jnp.where(jnp.isfinite(bb) & (bb > 0), jnp.clip(bb, eta / 2, eta * 2), eta)
      grow = jnp.asarray(False)
    finite &= jnp.isfinite(error) & jnp.isfinite(f_next)
    return _Carry(
      k=c.k + 1,
      x=[jnp.where(finite, new, old) for new, old in zip(xp, c.x, strict=True)],
      y=y_next,
      f_y=f_next,
      g_y=g_next,
      t=t_next,
      eta=eta,
      grow=grow,
      error=jnp.where(finite, error, c.error),
      nonfinite=~finite,
      evaluations=c.evaluations + tries + 1,
    )

  c = jax.lax.while_loop(lambda c: (c.k < maxiter) & (c.error > tol) & ~c.nonfinite, body, start)
  info = FistaInfo(
    iterations=c.k,
    error=c.error,
    converged=(c.error <= tol) & ~c.nonfinite,
    nonfinite=c.nonfinite,
    value=jnp.asarray(jnp.nan, dtype),  # filled in by fista, with derivatives
    stepsize=c.eta,
    evaluations=c.evaluations,
  )
  return c.x, info


# ----------------------------------------------------------------------------------------------
# Implicit differentiation of the fixed point.
# ----------------------------------------------------------------------------------------------


def _stop(tree):
  """``tree`` with no derivatives flowing through its traced leaves (others kept as they are:
  a Python 0 stays the static zero that skips its penalty)."""
  return jax.tree.map(
    lambda v: jax.lax.stop_gradient(v) if isinstance(v, jax.core.Tracer) else v, tree
  )


def _traced(tree):
  """The traced leaves of ``tree`` (what derivatives may flow to), and a function that puts
  new values in their place."""
  leaves, treedef_ = jax.tree.flatten(tree)
  treedef: Any = treedef_
  traced = [i for i, leaf in enumerate(leaves) if isinstance(leaf, jax.core.Tracer)]

  def rebuild(values):
    out = list(leaves)
    for i, v in zip(traced, values, strict=True):
      out[i] = v
    return treedef.unflatten(out)

  return [leaves[i] for i in traced], rebuild


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _implicit(optimality, x_star, dynamic, eta):
  """``x_star``, differentiated as the solution of ``optimality(x, dynamic, eta) = 0``."""
  del optimality, dynamic, eta
  return x_star


def _implicit_fwd(optimality, x_star, dynamic, eta):
  return x_star, (x_star, dynamic, eta)


def _implicit_bwd(optimality, residuals, cotangent):
  # F(x*(θ), θ) = 0 gives dx*/dθ = −(∂ₓF)⁻¹∂_θF: θ's cotangent is uᵀ∂_θF, with (∂ₓF)ᵀu = −v.
  x_star, dynamic, eta = residuals
  _, vjp_x = jax.vjp(lambda xs: optimality(xs, dynamic, eta), x_star)
  tol = 1e-10 if jnp.finfo(eta.dtype).bits == 64 else 1e-5
  # BiCGSTAB keeps no Krylov basis; the eigenvalues are real (a symmetric PSD prox Jacobian D
  # times I − ηH with H symmetric is similar to a symmetric matrix).
  u, _ = jax.scipy.sparse.linalg.bicgstab(lambda w: vjp_x(w)[0], [-v for v in cotangent], tol=tol)

  _, vjp_dynamic = jax.vjp(lambda d: optimality(x_star, d, eta), dynamic)
  (d_dynamic,) = vjp_dynamic(u)
  return [jnp.zeros_like(x) for x in x_star], d_dynamic, jnp.zeros_like(eta)


_implicit.defvjp(_implicit_fwd, _implicit_bwd)


# ----------------------------------------------------------------------------------------------
# Flat lists of leaves: arithmetic, the prox and the penalty.
# ----------------------------------------------------------------------------------------------


def _axpy(a, x, y):
  """``a·x + y``, leaf by leaf, in each leaf's dtype."""
  return [yi + jnp.asarray(a).astype(yi.dtype) * xi for xi, yi in zip(x, y, strict=True)]


def _sub(x, y):
  return [xi - yi for xi, yi in zip(x, y, strict=True)]


def _vdot(x, y, dtype):
  total = jnp.zeros((), dtype)
  for xi, yi in zip(x, y, strict=True):
    total += jnp.vdot(xi, yi).astype(dtype)
  return total


def _norm(x, dtype):
  return jnp.sqrt(_vdot(x, x, dtype))


def _prox(v, eta, penalties):
  """The prox of the penalties at step ``eta`` (the identity metric); unpenalised leaves pass."""
  return [
    vi if p is None else _penalties.prox_in_metric(vi, eta, 1.0, p)
    for vi, p in zip(v, penalties, strict=True)
  ]


def _penalty_value(xs, penalties, dtype):
  total = jnp.zeros((), dtype)
  for x, p in zip(xs, penalties, strict=True):
    if p is not None:
      total += _leaf_penalty(x.astype(_numerics.compute_dtype(x.dtype)), p).astype(dtype)
  return total


def _leaf_penalty(x, p):
  """One leaf's penalty, as :class:`_penalties.Strengths` defines it (and MCP and SCAD as
  :func:`optax_l1.prox.mcp` and :func:`optax_l1.prox.scad` do)."""
  total = jnp.zeros((), x.dtype)
  magnitude = jnp.abs(x)
  if not _numerics.is_static_zero(p.l1):
    total += p.l1 * jnp.sum(magnitude)
  if not _numerics.is_static_zero(p.l2):
    total += p.l2 / 2 * jnp.sum(x * x)
  if not _numerics.is_static_zero(p.group_l1):
    split, axis = _penalties.split_groups(x, p.group_axis)
    axes = _numerics.group_reduction_axes(split.shape, axis)
    size = math.prod(split.shape[i] for i in axes)
    squares = jnp.sum(split * split, axis=axes)
    # The norm of a zero group is 0 with a zero derivative (sqrt's would be inf·0 = NaN).
    norms = jnp.where(squares > 0, jnp.sqrt(jnp.where(squares > 0, squares, 1)), 0)
    total += p.group_l1 * math.sqrt(size) * jnp.sum(norms)
  if not _numerics.is_static_zero(p.l0):
    total += p.l0 * jnp.sum(x != 0)
  if not _numerics.is_static_zero(p.mcp):
    lam, gamma = p.mcp, p.mcp_gamma
    inner = lam * magnitude - magnitude**2 / (2 * gamma)
    total += jnp.sum(jnp.where(magnitude <= gamma * lam, inner, gamma * lam**2 / 2))
  if not _numerics.is_static_zero(p.scad):
    lam, a = p.scad, p.scad_a
    middle = (2 * a * lam * magnitude - magnitude**2 - lam**2) / (2 * (a - 1))
    outer = (a + 1) * lam**2 / 2
    inner = jnp.where(magnitude <= a * lam, middle, outer)
    total += jnp.sum(jnp.where(magnitude <= lam, lam * magnitude, inner))
  return total


# ----------------------------------------------------------------------------------------------
# Checks and set-up, at the call.
# ----------------------------------------------------------------------------------------------


def _paths(tree):
  return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _float_leaf(leaf, path):
  array = jnp.asarray(leaf)
  if not jnp.issubdtype(array.dtype, jnp.floating):
    raise TypeError(
      f"init_params must be real floating-point arrays; the leaf init_params{path} has dtype "
      f"{array.dtype}. Cast it (e.g. jnp.asarray(x, jnp.float32)), or pass what is not "
      "optimised to fun through *args."
    )
  return array


def _check_fun(fun, params, args):
  out = jax.eval_shape(fun, params, *args)
  if not (hasattr(out, "shape") and out.shape == () and jnp.issubdtype(out.dtype, jnp.floating)):
    shown = jax.tree.map(lambda s: f"{s.dtype}{list(s.shape)}", out)
    raise TypeError(
      f"fun must return a real floating-point scalar (the loss), got {shown}. Reduce it "
      "(e.g. jnp.mean) and return auxiliary outputs some other way."
    )


def _leaf_penalties(params, treedef, given, group_axis, mcp_gamma, scad_a, mask):
  """One :class:`_penalties.Strengths` per leaf of ``params`` (None where not penalised),
  every strength checked with its name."""
  for name, value in given.items():
    for path, leaf in jax.tree_util.tree_flatten_with_path(value)[0]:
      label = name + jax.tree_util.keystr(path)
      if callable(leaf):
        raise TypeError(
          f"{label} must be a number or a scalar array, got the callable {leaf!r}: fista "
          "takes no schedule (fista_path solves along a path of strengths)."
        )
      _validation.check_hyperparameter(leaf, label, schedule=False)
  per_leaf = {
    name: treedef.flatten_up_to(_numerics.broadcast_like(value, params, name=name))
    for name, value in given.items()
  }
  penalised = treedef.flatten_up_to(_numerics.resolve_mask(mask, params))
  # The groups must fit the leaves that have them (penalised, with a group_l1 not a static 0).
  grouped = [
    on and not _numerics.is_static_zero(strength)
    for on, strength in zip(penalised, per_leaf["group_l1"], strict=True)
  ]
  layouts = treedef.flatten_up_to(
    _penalties.leaf_layouts(group_axis, params, treedef.unflatten(grouped))
  )
  return [
    _penalties.Strengths.create(
      **{name: values[i] for name, values in per_leaf.items()},
      group_axis=layouts[i],
      mcp_gamma=mcp_gamma,
      scad_a=scad_a,
    )
    if on
    else None
    for i, on in enumerate(penalised)
  ]
