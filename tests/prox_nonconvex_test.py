"""Tests of the non-convex proxes :func:`optax_l1.prox.mcp` and :func:`optax_l1.prox.scad`.

References: skglm's ``prox_1d`` where its closed form is the exact prox (MCP for s <= γ, SCAD
for s != a − 1), and a brute-force argmin over a fine grid everywhere, the non-convex regimes
(s >= γ, s >= a − 1) included. Then the library's contract: exact ``+0.0`` in every float
dtype, per-coordinate steps, pytrees, jit, NaN, complex entries, argument checks, doctests.
"""

import doctest
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skglm.penalties import SCAD, MCPenalty

from optax_l1 import prox
from optax_l1.prox import _mcp_leaf, _scad_leaf

from x64_mode import enable_x64

FLOAT_DTYPES = ("float32", "bfloat16", "float16")

# ----------------------------------------------------------------------------------------------
# The penalties in NumPy (float64), from Zhang (2010) and Fan & Li (2001).
# ----------------------------------------------------------------------------------------------


def mcp_penalty(y, lam, gamma):
  t = np.abs(y)
  return np.where(t <= gamma * lam, lam * t - t * t / (2 * gamma), gamma * lam * lam / 2)


def scad_penalty(y, lam, a):
  t = np.abs(y)
  middle = (2 * a * lam * t - t * t - lam * lam) / (2 * (a - 1))
  return np.where(t <= lam, lam * t, np.where(t <= a * lam, middle, (a + 1) * lam * lam / 2))


PENALTIES: dict[str, tuple[Any, Any, Any, str]] = {
  # name: (the library's prox, NumPy penalty, skglm penalty class, shape parameter's name)
  "mcp": (prox.mcp, mcp_penalty, MCPenalty, "gamma"),
  "scad": (prox.scad, scad_penalty, SCAD, "a"),
}


def call(name, x, lam, s, shape):
  fn, _, _, shape_name = PENALTIES[name]
  return fn(x, lam, s, **{shape_name: shape})


def objective(name, y, x, lam, s, shape):
  penalty = PENALTIES[name][1]
  return (y - x) ** 2 / (2 * s) + penalty(y, lam, shape)


def brute_force(name, x, lam, s, shape, size=24_001):
  """Per case (1-D arrays): the grid minimum, the grid argmin and whether the minimiser is
  unique (every grid point farther than ``delta`` from the argmin is worse by a margin)."""
  x, lam, s = (np.asarray(v, np.float64)[:, None] for v in (x, lam, s))
  # The minimiser lies between 0 and x; the grid overshoots both and holds both exactly.
  y = np.concatenate([np.linspace(-0.1, 1.1, size)[None, :] * x, 0 * x, x], axis=1)
  values = objective(name, y, x, lam, s, shape)
  best = np.argmin(values, axis=1)
  rows = np.arange(len(x))
  minimum, argmin = values[rows, best], y[rows, best]
  delta = 1e-3 * (1 + np.abs(x[:, 0]))
  far = np.abs(y - argmin[:, None]) > delta[:, None]
  runner_up = np.min(np.where(far, values, np.inf), axis=1)
  unique = runner_up > minimum + 1e-7
  return minimum, argmin, unique, delta


def test_numpy_penalties_match_skglm():
  rng = np.random.default_rng(0)
  for name, (_, penalty, skglm_penalty, _) in PENALTIES.items():
    for lam, shape in [(0.3, 2.5), (1.0, 3.7), (2.0, 6.0)]:
      w = rng.uniform(-1.5, 1.5, 50) * shape * lam
      reference = [skglm_penalty(lam, shape).value(np.array([v])) for v in w]
      np.testing.assert_allclose(penalty(w, lam, shape), reference, rtol=1e-12, err_msg=name)


# ----------------------------------------------------------------------------------------------
# (a) skglm, where its closed form is exact.
# ----------------------------------------------------------------------------------------------

# skglm's prox_MCP is firm thresholding: 0 up to sλ, x beyond γλ, the linear piece between.
# It is the prox for s <= γ (at s = γ the linear piece is empty: a hard threshold at γλ); for
# s > γ it thresholds at sλ instead of λ√(sγ). skglm's prox_SCAD (after Gong et al. 2013)
# takes the best of three candidates by objective: soft(x, sλ) (not clipped to the first
# piece), the middle piece's stationary point, and x. For s < a − 1 the prox is one of them;
# for s > a − 1 too (the prox is then soft(x, sλ) or x, and the stationary point, a maximum,
# never wins); at s = a − 1 it divides by zero.


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 3.0, 7.0])
@pytest.mark.parametrize("lam", [0.3, 1.0])
def test_mcp_matches_skglm_for_steps_up_to_gamma(lam, gamma):
  values = np.linspace(-1.5, 1.5, 301) * max(gamma, 1.0) * lam * 2
  steps = gamma * np.array([0.0, 0.01, 0.2, 0.5, 0.9, 0.999, 1.0])
  penalty = MCPenalty(lam, gamma)
  with enable_x64(True):
    for s in steps:
      expected = [penalty.prox_1d(v, s, 0) for v in values]
      got = prox.mcp(jnp.asarray(values), lam, s, gamma=gamma)
      assert got.dtype == jnp.float64
      np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9, err_msg=f"s={s}")


@pytest.mark.parametrize("a", [2.01, 2.5, 3.7, 6.0])
@pytest.mark.parametrize("lam", [0.3, 1.0])
def test_scad_matches_skglm_for_steps_other_than_a_minus_one(lam, a):
  values = np.linspace(-1.5, 1.5, 301) * a * lam * 2
  steps = (a - 1) * np.array([0.01, 0.2, 0.5, 0.9, 0.999, 1.001, 1.3, 2.0, 3.1])
  penalty = SCAD(lam, a)
  with enable_x64(True):
    for s in steps:
      expected = [penalty.prox_1d(v, s, 0) for v in values]
      got = prox.scad(jnp.asarray(values), lam, s, a=a)
      assert got.dtype == jnp.float64
      np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9, err_msg=f"s={s}")


# ----------------------------------------------------------------------------------------------
# (b) A brute-force argmin, in both regimes.
# ----------------------------------------------------------------------------------------------


def random_cases(name, shape, rng, n=240):
  """(x, λ, s) per case: half the steps in the convex regime, half in the non-convex one,
  a few exactly on the boundaries, and x spread over every breakpoint."""
  lam = rng.uniform(0.1, 2.0, n)
  edge = shape if name == "mcp" else shape - 1  # the convex regime is s < edge
  s = np.where(np.arange(n) % 2 == 0, edge * rng.uniform(0, 1, n), edge * rng.uniform(1, 6, n))
  s[:8] = edge
  if name == "scad":
    s[8:16] = shape + 1  # where the threshold changes form
  breakpoints = np.maximum.reduce([s * lam, shape * lam, (1 + s) * lam, lam * np.sqrt(s * shape)])
  x = rng.choice([-1.0, 1.0], n) * rng.uniform(0, 1.4, n) * breakpoints
  return x, lam, s


@pytest.mark.parametrize(
  "name,shape",
  [("mcp", g) for g in (0.5, 1.0, 3.0, 6.0)] + [("scad", a) for a in (2.05, 3.0, 3.7, 8.0)],
)
def test_global_minimiser_by_brute_force(name, shape):
  rng = np.random.default_rng(int(shape * 100))
  x, lam, s = random_cases(name, shape, rng)
  with enable_x64(True):
    # One call, per-coordinate strengths and steps: both regimes in the same array.
    got = np.asarray(call(name, jnp.asarray(x), jnp.asarray(lam), jnp.asarray(s), shape))
  minimum, argmin, unique, delta = brute_force(name, x, lam, s, shape)
  value = objective(name, got, x, lam, s, shape)
  # Never worse than the grid (which holds 0 and x exactly).
  np.testing.assert_array_less(value, minimum + 1e-10 * (1 + minimum))
  # The grid's argmin where the minimiser is unique.
  assert np.all(np.abs(got - argmin)[unique] <= delta[unique])
  edge = shape if name == "mcp" else shape - 1
  nonconvex = s >= edge
  assert np.sum(unique & nonconvex) > 60 and np.sum(unique & ~nonconvex) > 60


def test_mcp_hard_threshold_regime_is_lambda_sqrt_s_gamma():
  # s = 4 >= γ = 1: 0 up to λ√(sγ) = 2 (0 at the tie), x beyond; skglm's formula would keep
  # nothing up to sλ = 4.
  x = jnp.array([1.9, 2.0, np.nextafter(np.float32(2), np.float32(3)), 3.0, -3.5], jnp.float32)
  np.testing.assert_array_equal(prox.mcp(x, 1.0, 4.0, gamma=1.0), [0, 0, x[2], 3.0, -3.5])


def test_scad_nonconvex_thresholds_and_ties():
  # s = 3, a = 4 (a − 1 <= s < a + 1): soft up to (s + a + 1)λ/2 = 4 (soft at the tie).
  x = jnp.array([3.5, 4.0, np.nextafter(np.float32(4), np.float32(5)), -4.5], jnp.float32)
  np.testing.assert_array_equal(prox.scad(x, 1.0, 3.0, a=4.0), [0.5, 1.0, x[2], -4.5])
  # s = 5 >= a + 1: a hard threshold at λ√(s(a + 1)) = 5.
  x = jnp.array([4.9, 5.0, np.nextafter(np.float32(5), np.float32(6)), -6.0], jnp.float32)
  np.testing.assert_array_equal(prox.scad(x, 1.0, 5.0, a=4.0), [0, 0, x[2], -6.0])


def test_regimes_meet_continuously_at_the_boundary():
  x = np.linspace(-10, 10, 2001)
  with enable_x64(True):
    for name, shape, edge in [("mcp", 3.0, 3.0), ("scad", 3.7, 2.7)]:
      below = call(name, jnp.asarray(x), 1.0, edge * (1 - 1e-12), shape)
      at = call(name, jnp.asarray(x), 1.0, edge, shape)
      # Equal except within 1e-9 of the jump at the threshold (γλ for MCP, aλ for SCAD).
      away = np.abs(np.abs(x) - shape) > 1e-3
      np.testing.assert_allclose(np.asarray(below)[away], np.asarray(at)[away], atol=1e-9)


# ----------------------------------------------------------------------------------------------
# (c) Exact zeros in every float dtype; (f) NaN; complex entries.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name,shape,steps", [("mcp", 3.0, (0.5, 5.0)), ("scad", 3.7, (1.0, 4.0))])
def test_removed_entries_are_positive_zero(name, shape, steps, dtype):
  x = jnp.array([-0.75, -0.5, -0.0, 0.0, 0.25, 0.5, -20.0, 20.0], dtype)
  for s in steps:  # one step in each regime; strength 2: thresholds 1 and more
    out = call(name, x, 2.0, s, shape)
    assert out.dtype == x.dtype
    values = np.asarray(out, np.float32)
    np.testing.assert_array_equal(values[:6], 0)
    assert not np.any(np.signbit(values[:6])), (s, values)
    np.testing.assert_array_equal(values[6:], [-20, 20])
    # Per-coordinate steps too (the select path).
    out = call(name, x, 2.0, jnp.full(x.shape, s, jnp.float32), shape)
    assert not np.any(np.signbit(np.asarray(out, np.float32)[:6]))


@pytest.mark.parametrize("name,shape", [("mcp", 3.0), ("scad", 3.7)])
def test_nan_in_nan_out(name, shape):
  x = jnp.array([np.nan, -np.nan, 0.0, 1.0, np.inf, -np.inf], jnp.float32)
  for s in (0.5, 10.0):
    out = np.asarray(call(name, x, 1.0, s, shape))
    assert np.all(np.isnan(out[:2]))
    np.testing.assert_array_equal(out[4:], [np.inf, -np.inf])
    for lam, step in [(np.nan, s), (1.0, np.nan)]:
      assert np.all(np.isnan(np.asarray(call(name, x, lam, step, shape)))), (lam, step)
    nan_shape = jnp.asarray(np.nan, jnp.float32)  # traced: not checked
    out = jax.jit(lambda x, g, s=s: call(name, x, 1.0, s, g))(x, nan_shape)
    assert np.all(np.isnan(np.asarray(out)))


@pytest.mark.parametrize("name,shape", [("mcp", 3.0), ("scad", 3.7)])
def test_complex_entries_shrink_the_modulus_and_keep_the_phase(name, shape):
  rng = np.random.default_rng(1)
  r = rng.uniform(0, 8, 64)
  phase = np.exp(1j * rng.uniform(0, 2 * np.pi, 64))
  for s in (0.5, 5.0):
    out = np.asarray(call(name, jnp.asarray(r * phase, jnp.complex64), 1.0, s, shape))
    expected = np.asarray(call(name, jnp.asarray(r, jnp.float32), 1.0, s, shape)) * phase
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    removed = np.abs(expected) == 0
    assert removed.any() and not np.any(np.signbit(out[removed].real))
    assert not np.any(np.signbit(out[removed].imag))
  z = jnp.array([complex(np.nan, 0), complex(0, np.nan), complex(0, 0)], jnp.complex64)
  out = np.asarray(call(name, z, 1.0, 1.0, shape))
  assert np.all(np.isnan(out[:2])) and out[2] == 0
  # A kept entry is returned as it is, an infinite one included.
  z = jnp.array([complex(np.inf, 0), complex(30, -40)], jnp.complex64)
  np.testing.assert_array_equal(call(name, z, 1.0, 1.0, shape), z)


# ----------------------------------------------------------------------------------------------
# (d) Per-coordinate steps and pytrees; (e) jit; the private kernels.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,shape", [("mcp", 2.0), ("scad", 3.7)])
def test_per_coordinate_steps_match_scalar_steps(name, shape):
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.uniform(-8, 8, (3, 5)), jnp.float32)
  steps = jnp.asarray(rng.uniform(0.01, 8, (3, 5)), jnp.float32)  # both regimes
  lam = jnp.asarray(rng.uniform(0.1, 1.5, (5,)), jnp.float32)  # broadcast along rows
  out = np.asarray(call(name, x, lam, steps, shape))
  for i in range(3):
    for j in range(5):
      expected = call(name, x[i, j], float(lam[j]), float(steps[i, j]), shape)
      assert out[i, j] == np.asarray(expected), (i, j)
  with pytest.raises(ValueError, match="scaling"):
    call(name, x, 1.0, jnp.ones((4,)), shape)


@pytest.mark.parametrize("name,shape", [("mcp", 3.0), ("scad", 3.7)])
def test_pytrees(name, shape):
  params = {
    "w": jnp.array([[-3.0, 0.5], [1.5, 9.0]]),
    "b": jnp.array([0.2, -2.5], jnp.bfloat16),
    "n": jnp.array([1, -7], jnp.int32),
    "flag": jnp.array([True, False]),
  }
  scaling = {"w": jnp.array([0.5, 6.0]), "b": 1.0, "n": 1.0, "flag": 1.0}
  strength = {"w": 1.0, "b": 0.5, "n": 1.0, "flag": 1.0}
  out = call(name, params, strength, scaling, shape)
  chex.assert_trees_all_equal_structs(out, params)
  for key in ("w", "b"):
    expected = call(name, params[key], strength[key], scaling[key], shape)
    assert out[key].dtype == params[key].dtype
    np.testing.assert_array_equal(
      np.asarray(out[key], np.float32), np.asarray(expected, np.float32)
    )
  assert out["n"] is params["n"] and out["flag"] is params["flag"]
  with pytest.raises(ValueError, match="scaling"):
    call(name, params, 1.0, {"w": 1.0}, shape)


@pytest.mark.parametrize("name,shape", [("mcp", 3.0), ("scad", 3.7)])
def test_jit_matches_eager_with_traced_hyperparameters(name, shape):
  x = jnp.linspace(-10, 10, 101)
  jitted = jax.jit(lambda x, lam, s, shape: call(name, x, lam, s, shape))
  for s in (0.3, shape, 2 * shape):
    eager = np.asarray(call(name, x, 1.0, s, shape))
    for out in (jitted(x, 1.0, s, shape), jax.jit(lambda x, s=s: call(name, x, 1.0, s, shape))(x)):
      # The same up to XLA's fusion of the arithmetic (an ulp); the same zeros exactly.
      np.testing.assert_allclose(out, eager, rtol=1e-6, atol=0)
      np.testing.assert_array_equal(np.asarray(out) == 0, eager == 0)


@pytest.mark.parametrize("name,leaf,shape", [("mcp", _mcp_leaf, 3.0), ("scad", _scad_leaf, 3.7)])
@pytest.mark.parametrize("dtype", ("float32", "bfloat16"))
def test_private_leaf_kernels_take_per_coordinate_steps(name, leaf, shape, dtype):
  # As an optimizer calls them: step = learning rate × a per-coordinate scale, in float32.
  rng = np.random.default_rng(3)
  x = jnp.asarray(rng.uniform(-8, 8, (4, 6)), dtype)
  step = 0.1 * jnp.asarray(rng.uniform(0.1, 80, (4, 6)), jnp.float32)
  out = jax.jit(leaf)(x, 0.7, step, shape)
  assert out.dtype == x.dtype and out.shape == x.shape
  np.testing.assert_array_equal(out, call(name, x, 0.7, step, shape))


# ----------------------------------------------------------------------------------------------
# (g) Argument checks; (h) doctests.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", [0, 0.0, -1.0, np.nan, np.inf, np.array([1.0, 2.0])])
def test_bad_gamma_raises(gamma):
  with pytest.raises(ValueError, match=r"^gamma must be"):
    prox.mcp(jnp.ones(3), 1.0, gamma=gamma)


@pytest.mark.parametrize("a", [2, 2.0, 1.5, -3.0, np.nan, np.inf, np.array([3.0, 4.0])])
def test_bad_a_raises(a):
  with pytest.raises(ValueError, match=r"^a must be"):
    prox.scad(jnp.ones(3), 1.0, a=a)


def test_non_numeric_shape_parameters_raise_type_error():
  with pytest.raises(TypeError, match=r"^gamma must be"):
    prox.mcp(jnp.ones(3), 1.0, gamma="3")
  with pytest.raises(TypeError, match=r"^a must be"):
    prox.scad(jnp.ones(3), 1.0, a=lambda count: 3.7)


def test_good_shape_parameters_are_accepted():
  prox.mcp(jnp.ones(3), 1.0, gamma=1e-3)
  prox.mcp(jnp.ones(3), 1.0, gamma=np.float32(2.0))
  prox.scad(jnp.ones(3), 1.0, a=2.0001)
  prox.scad(jnp.ones(3), 1.0, a=jnp.asarray(3.7))


@pytest.mark.parametrize("fn", [prox.mcp, prox.scad])
def test_doctests(fn):
  flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
  runner = doctest.DocTestRunner(optionflags=flags)
  tests = doctest.DocTestFinder().find(fn, globs={})
  assert tests and tests[0].examples
  for test in tests:
    runner.run(test)
  assert runner.summarize(verbose=False).failed == 0
