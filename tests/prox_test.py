"""Tests of the proximal operators (``optax_l1.prox``): closed forms, brute-force argmins and
properties.

First the operators on float32 arrays, against ``references`` and brute-force argmins. Then
property tests (hypothesis) of ``soft_threshold``, ``prox_elastic_net``, ``hard_threshold`` and
``block_soft_threshold`` on scalars, vectors, matrices, 3-d and zero-size arrays, in float32,
bfloat16, float16 and float64 (under ``jax.enable_x64``), with thresholds that are 0, ties with
an entry, random, or one per entry. Then pytrees, dtypes, NaN and bad input.

The property tests predict the zero set the way the library computes it: in the compute dtype
(float32 for bfloat16/float16/float32 leaves, float64 for float64 ones), from the leaf's value
and the threshold cast to that dtype. Two effects of finite precision are allowed for, and only
them: XLA on CPU flushes subnormal results to zero (so an entry whose exact result is below
the smallest normal number of its dtype may come out as 0), and a group whose norm is within a
tiny relative band of the threshold may go either way. Subnormal inputs are excluded.
"""

import contextlib

import chex
import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optax_l1

import references
from x64_mode import enable_x64

soft_threshold = jax.jit(optax_l1.soft_threshold)
prox_elastic_net = jax.jit(optax_l1.prox_elastic_net)

# XLA flushes subnormals to zero on CPU, so they are outside what the operators promise.
finite = st.floats(-10, 10, allow_nan=False, allow_subnormal=False, width=32)
threshold_floats = st.floats(0, 5, allow_nan=False, allow_subnormal=False, width=32)
vectors = hnp.arrays(np.float32, st.integers(1, 16), elements=finite)


# ----------------------------------------------------------------------------------------------
# Soft thresholding and the elastic net: closed forms and brute-force argmins.
# ----------------------------------------------------------------------------------------------


@given(x=vectors, t=threshold_floats)
def test_soft_threshold_properties(x, t):
  out = np.asarray(soft_threshold(jnp.asarray(x), t))
  assert np.all(np.abs(out) <= np.abs(x))
  assert np.all((out == 0) | (np.sign(out) == np.sign(x)))
  np.testing.assert_array_equal(out == 0, np.abs(x) <= np.float32(t))
  np.testing.assert_allclose(out, references.soft_threshold(x, np.float32(t)), atol=1e-6)


def _with_thresholds(n):
  return st.tuples(
    hnp.arrays(np.float32, n, elements=finite), hnp.arrays(np.float32, n, elements=threshold_floats)
  )


@given(x_and_t=st.integers(1, 16).flatmap(_with_thresholds))
def test_soft_threshold_with_a_threshold_per_entry(x_and_t):
  # Adaptive optimizers threshold each coordinate by its own lr·l1/d_i.
  x, t = x_and_t
  out = np.asarray(soft_threshold(jnp.asarray(x), jnp.asarray(t)))
  np.testing.assert_array_equal(out == 0, np.abs(x) <= t)
  np.testing.assert_allclose(out, references.soft_threshold(x, t), atol=1e-6)


@given(x=vectors, y=vectors, t=threshold_floats)
def test_soft_threshold_is_non_expansive(x, y, t):
  n = min(len(x), len(y))
  x, y = x[:n], y[:n]
  px = np.asarray(soft_threshold(jnp.asarray(x), t), np.float64)
  py = np.asarray(soft_threshold(jnp.asarray(y), t), np.float64)
  diff = np.linalg.norm(x.astype(np.float64) - y)
  assert np.linalg.norm(px - py) <= diff * (1 + 1e-6) + 1e-6


@given(
  x=finite, l1=threshold_floats, l2=st.floats(0, 3, width=32), s=st.floats(0.0625, 2, width=32)
)
def test_elastic_net_is_the_argmin_of_its_objective(x, l1, l2, s):
  grid = np.linspace(-12, 12, 480_001)  # spacing 5e-5
  objective = 0.5 * (x - grid) ** 2 + s * (l1 * np.abs(grid) + 0.5 * l2 * grid**2)
  best = grid[np.argmin(objective)]
  out = float(prox_elastic_net(jnp.float32(x), l1, l2, s))
  assert abs(out - best) <= 1e-4


@given(x=finite, t=threshold_floats)
def test_soft_threshold_is_the_argmin_of_its_objective(x, t):
  grid = np.linspace(-12, 12, 480_001)
  best = grid[np.argmin(0.5 * (x - grid) ** 2 + t * np.abs(grid))]
  assert abs(float(soft_threshold(jnp.float32(x), t)) - best) <= 1e-4


def test_elastic_net_closed_form():
  x = jnp.array([-3.0, -0.4, 0.0, 0.4, 3.0])
  out = prox_elastic_net(x, 0.5, 2.0, 0.5)
  expected = references.elastic_net(x, 0.5, 2.0, 0.5)
  chex.assert_trees_all_close(out, jnp.asarray(expected), atol=1e-7)


def test_removed_entries_are_positive_zero():
  out = soft_threshold(jnp.array([-0.5, 0.5, -3.0]), 1.0)
  np.testing.assert_array_equal(np.signbit(np.asarray(out)), [False, False, True])


def test_operators_are_differentiable():
  grad = jax.grad(lambda x: jnp.sum(optax_l1.soft_threshold(x, 1.0) ** 2))(jnp.array([0.5, 2.0]))
  chex.assert_trees_all_close(grad, jnp.array([0.0, 2.0]), atol=1e-7)


def test_negative_threshold_does_what_the_docstring_says():
  # Not validated when traced; documented: a threshold of −c adds c to every entry.
  out = jax.jit(optax_l1.soft_threshold)(jnp.array([-2.0, 0.0, 0.1, 2.0]), jnp.float32(-0.5))
  np.testing.assert_array_equal(out, np.float32([-1.5, 0.5, 0.6, 2.5]))


# ----------------------------------------------------------------------------------------------
# Hard thresholding and block soft thresholding.
# ----------------------------------------------------------------------------------------------


def test_hard_threshold_is_an_argmin_of_its_objective():
  rng = np.random.default_rng(1)
  x = rng.normal(size=200).astype(np.float32) * 2
  t = 1.0
  out = np.asarray(optax_l1.hard_threshold(jnp.asarray(x), t))
  # Per entry: keeping costs t²/2, zeroing costs x²/2: keep exactly when |x| > t.
  np.testing.assert_array_equal(out, references.hard_threshold(x, t))


@pytest.mark.parametrize(
  "shape,axis", [((6, 5), -1), ((6, 5), 0), ((3, 3, 4, 5), -1), ((3, 3, 4, 5), 2), ((7,), 0)]
)
def test_block_soft_threshold_matches_reference(shape, axis):
  x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
  norms = np.sqrt(
    np.sum(
      x.astype(np.float64) ** 2, axis=tuple(i for i in range(len(shape)) if i != axis % len(shape))
    )
  )
  ordered = np.sort(norms.ravel())
  k = len(ordered) // 2
  t = float(ordered[k - 1] + ordered[k]) / 2  # between two norms: removes about half the groups
  out = np.asarray(jax.jit(lambda x: optax_l1.block_soft_threshold(x, t, axis=axis))(x))
  expected = references.block_soft_threshold(x, t, axis)
  np.testing.assert_array_equal(out == 0, expected == 0)
  np.testing.assert_allclose(out, expected, atol=1e-6)
  if len(shape) > 1:
    assert 0 < np.mean(expected == 0) < 1  # some groups removed, some kept


@given(
  x=hnp.arrays(np.float32, (4, 3), elements=st.floats(-5, 5, width=32, allow_subnormal=False)),
  t=st.floats(0, 4, width=32, allow_subnormal=False),
)
def test_block_soft_threshold_properties(x, t):
  out = np.asarray(block_soft_threshold(jnp.asarray(x), t))  # jitted, below: one compilation
  x64 = x.astype(np.float64)
  in_norms, out_norms = np.linalg.norm(x64, axis=0), np.linalg.norm(out, axis=0)
  assert np.all(out_norms <= in_norms * (1 + 1e-6) + 1e-30)  # shrinks every group's norm
  removed = np.all(out == 0, axis=0)
  assert np.all(removed[in_norms < t * (1 - 1e-5)]) and not np.any(
    removed[in_norms > t * (1 + 1e-5)]
  )
  # Directions are kept: out is a non-negative multiple of x, group by group.
  ratio = out_norms / np.where(in_norms > 0, in_norms, 1)
  np.testing.assert_allclose(out, x64 * ratio, rtol=1e-5, atol=1e-6)
  # A zero threshold is the identity.
  np.testing.assert_array_equal(np.asarray(block_soft_threshold(jnp.asarray(x), 0.0)), x)


def test_block_soft_threshold_all_zero_group_has_no_nan_value_or_gradient():
  x = jnp.array([[0.0, 1.0], [0.0, 2.0]])
  out = optax_l1.block_soft_threshold(x, 0.5)
  assert np.all(np.isfinite(out)) and float(out[0, 0]) == 0.0
  grad = jax.grad(lambda x: jnp.sum(optax_l1.block_soft_threshold(x, 0.5)))(x)
  assert np.all(np.isfinite(grad))


@pytest.mark.parametrize(
  ("scale", "threshold"),
  [
    (1e30, 1e29),  # squares overflow float32: the scaled form
    (1e-25, 1e-26),  # squares underflow: the scaled form
    (1e-25, 0.0),  # a zero threshold keeps the groups, whichever form
    (1e-25, 1e-10),  # squares flush to 0, but the threshold is above any such norm: plain
    (1.0, 0.1),  # the plain sum of squares
  ],
)
def test_block_soft_threshold_norm_over_the_float32_range(scale, threshold):
  # Column norms in float64 (numpy), against a leaf whose columns span small and large norms, with
  # an all-zero column: the plain sum of squares must not be used where it would be wrong.
  rng = np.random.default_rng(0)
  x = rng.normal(size=(6, 4)) * np.array([1.0, 3.0, 0.0, 30.0])
  x32 = (x * scale).astype(np.float32)
  norms = np.linalg.norm(x32.astype(np.float64), axis=0)
  keep = norms > threshold
  expected = x32 * np.where(keep, 1 - threshold / np.where(keep, norms, 1), 0)
  out = np.asarray(jax.jit(optax_l1.block_soft_threshold)(jnp.asarray(x32), threshold))
  assert np.all(np.isfinite(out))
  np.testing.assert_array_equal(out == 0, expected == 0)
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=0)


# ----------------------------------------------------------------------------------------------
# Every operator over shapes, dtypes and thresholds (hypothesis).
# ----------------------------------------------------------------------------------------------


DTYPES = ["float32", "bfloat16", "float16", "float64"]
SHAPES = [(), (0,), (7,), (3, 4), (4, 1), (2, 0, 3), (2, 3, 4)]
BLOCK_SHAPES = [(7,), (3, 4), (5, 1), (1, 5), (4, 0), (2, 3, 4)]
EXAMPLES = settings(max_examples=40, deadline=None)
# Compiled once per (shape, dtype, axis): cheaper than op-by-op dispatch of a dozen primitives.
block_soft_threshold = jax.jit(optax_l1.block_soft_threshold, static_argnames="axis")


def np_dtype(name):
  return np.dtype(jnp.dtype(name))


def compute_dtype(name):
  """As the library: at least float32."""
  return np.float64 if name == "float64" else np.float32


def tiny(name):
  """The smallest normal number: below it, XLA on CPU may flush a result to zero."""
  return float(jnp.finfo(jnp.dtype(name)).tiny)


def eps(name):
  return float(jnp.finfo(jnp.dtype(name)).eps)


def x64(name):
  return enable_x64(True) if name == "float64" else contextlib.nullcontext()


def to_dtype(values, name):
  """``values`` (float64) in dtype ``name``, with the dtype's subnormals replaced by zero."""
  x = np.asarray(values, np.float64).astype(np_dtype(name))
  x[np.abs(x.astype(np.float64)) < tiny(name)] = 0
  return x


@st.composite
def arrays(draw, shapes=SHAPES, dtype=None):
  """(dtype name, array of that dtype): magnitudes from 1e-4 to 1e3, zeros and ties."""
  name = dtype or draw(st.sampled_from(DTYPES))
  shape = draw(st.sampled_from(shapes))
  values = draw(
    hnp.arrays(
      np.float64,
      shape,
      elements=st.one_of(
        st.just(0.0),
        st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
        st.floats(-1e-2, 1e-2, allow_nan=False, allow_subnormal=False),
      ),
    )
  )
  return name, to_dtype(values, name)


@st.composite
def thresholds(draw, x, name, per_entry=True):
  """A threshold for ``x``: 0, |x_i| (a tie), a random number, or (optionally) one per entry."""
  kinds = ["zero", "random"] + (["tie"] if x.size else []) + (["array"] if per_entry else [])
  kind = draw(st.sampled_from(kinds))
  if kind == "zero":
    return 0.0
  if kind == "tie":
    i = draw(st.integers(0, x.size - 1))
    return float(abs(x.ravel()[i].astype(np.float64)))
  width = 64 if name == "float64" else 32
  if kind == "random":
    return draw(st.floats(0, 1e3, width=width, allow_subnormal=False))
  t = draw(
    hnp.arrays(
      compute_dtype(name),
      x.shape,
      elements=st.floats(0, 1e3, width=width, allow_subnormal=False),
    )
  )
  return t


def as_compute(x, name):
  return x.astype(compute_dtype(name))


def soft_in_compute_dtype(x, t, name):
  """``references.soft_threshold`` in the compute dtype, as the library computes it (before the
  cast), and the entries it removes."""
  cdtype = compute_dtype(name)
  return references.soft_threshold(x, t, cdtype), np.abs(as_compute(x, name)) <= np.asarray(
    t, cdtype
  )


def check_common(x, out, name):
  """dtype and shape kept; sign kept; |out| <= |x|."""
  assert out.dtype == x.dtype and out.shape == x.shape
  o, x64_ = out.astype(np.float64), x.astype(np.float64)
  assert np.all((o == 0) | (np.sign(o) == np.sign(x64_)))
  assert np.all(np.abs(o) <= np.abs(x64_))


def check_zero_set(out, removed, exact, name):
  """Zero exactly where ``removed``; elsewhere non-zero unless the exact result is subnormal."""
  o = out.astype(np.float64)
  assert np.all(o[removed] == 0)
  representable = np.abs(exact) >= tiny(name)
  assert np.all(o[~removed & representable] != 0)


@EXAMPLES
@given(data=st.data(), case=arrays())
def test_soft_threshold(data, case):
  name, x = case
  t = data.draw(thresholds(x, name))
  a = data.draw(st.floats(0, 10, width=32))
  with x64(name):
    out = np.asarray(optax_l1.soft_threshold(jnp.asarray(x), t))
    exact, removed = soft_in_compute_dtype(x, t, name)
    check_common(x, out, name)
    check_zero_set(out, removed, exact, name)
    # The value is the compute-dtype result cast back, bit for bit (up to flushed subnormals).
    representable = np.abs(exact) >= tiny(compute_dtype(name).__name__)
    np.testing.assert_array_equal(out[representable], exact.astype(x.dtype)[representable])
    # A zero threshold is the identity (−0.0 comes out as +0.0).
    np.testing.assert_array_equal(np.asarray(optax_l1.soft_threshold(jnp.asarray(x), 0.0)), x)
    # soft(soft(x, t), a) = soft(x, t + a), up to the rounding of the intermediate result.
    if np.ndim(t) == 0:
      twice = optax_l1.soft_threshold(optax_l1.soft_threshold(jnp.asarray(x), t), a)
      once = optax_l1.soft_threshold(jnp.asarray(x), t + a)
      twice, once = np.asarray(twice, np.float64), np.asarray(once, np.float64)
      tol = 4 * eps(name) * (np.abs(x.astype(np.float64)) + t + a) + tiny(name)
      assert np.all(np.abs(twice - once) <= tol)


@EXAMPLES
@given(
  data=st.data(),
  case=arrays(),
  l1=st.floats(0, 100, width=32),
  l2=st.floats(0, 100, width=32),
  scaling=st.floats(0, 10, width=32),
)
def test_prox_elastic_net(data, case, l1, l2, scaling):
  name, x = case
  with x64(name):
    out = np.asarray(optax_l1.prox_elastic_net(jnp.asarray(x), l1, l2, scaling))
    _, removed = soft_in_compute_dtype(x, scaling * l1, name)
    exact = references.elastic_net(x, l1, l2, scaling, compute_dtype(name))
    check_common(x, out, name)
    check_zero_set(out, removed, exact, name)
    np.testing.assert_allclose(out.astype(np.float64), exact, rtol=eps(name), atol=tiny(name))


@EXAMPLES
@given(
  data=st.data(),
  name=st.sampled_from(DTYPES),
  t=st.floats(0, 100, width=32),
  l2=st.floats(0, 10, width=32),
)
def test_soft_threshold_and_elastic_net_are_non_expansive(data, name, t, l2):
  shape = data.draw(st.sampled_from(SHAPES))
  _, x = data.draw(arrays(shapes=[shape], dtype=name))
  _, y = data.draw(arrays(shapes=[shape], dtype=name))
  with x64(name):
    for op in (
      lambda v: optax_l1.soft_threshold(v, t),
      lambda v: optax_l1.prox_elastic_net(v, t, l2),
    ):
      px = np.asarray(op(jnp.asarray(x)), np.float64)
      py = np.asarray(op(jnp.asarray(y)), np.float64)
      assert_non_expansive(x, y, px, py, name)


def assert_non_expansive(x, y, px, py, name):
  """‖P(x) − P(y)‖ ≤ ‖x − y‖, up to the rounding of P's outputs to the dtype."""
  distance = np.linalg.norm(x.astype(np.float64) - y.astype(np.float64))
  rounding = (eps(name) + 1e-6) * (np.linalg.norm(px) + np.linalg.norm(py))
  assert np.linalg.norm(px - py) <= distance + rounding + np.sqrt(px.size) * tiny(name)


@EXAMPLES
@given(data=st.data(), case=arrays())
def test_hard_threshold(data, case):
  name, x = case
  t = data.draw(thresholds(x, name))
  with x64(name):
    out = np.asarray(optax_l1.hard_threshold(jnp.asarray(x), t))
    expected = references.hard_threshold(x, t, compute_dtype(name)).astype(x.dtype)
    check_common(x, out, name)
    # Kept entries are not shrunk; removed ones are +0.0; no precision band is needed.
    np.testing.assert_array_equal(out, expected)
    assert not np.any(np.signbit(out[expected == 0]))
    # Idempotent, bit for bit.
    again = np.asarray(optax_l1.hard_threshold(jnp.asarray(out), t))
    assert again.tobytes() == out.tobytes()


@st.composite
def block_cases(draw):
  name, x = draw(arrays(shapes=BLOCK_SHAPES))
  axis = draw(st.integers(-x.ndim, x.ndim - 1))
  norms = group_norms(x, axis)
  kind = draw(st.sampled_from(["zero", "random", "tie"] if norms.size else ["zero", "random"]))
  if kind == "zero":
    t = 0.0
  elif kind == "tie":
    t = float(draw(st.sampled_from(sorted(set(norms.ravel().tolist())))))
  else:
    t = draw(st.floats(0, 1e3, width=32))
  return name, x, axis, t


def reduction_axes(x, axis):
  return tuple(i for i in range(x.ndim) if i != axis % x.ndim)


def group_norms(x, axis):
  """Each group's norm in float64, keepdims (the groups are the indices along ``axis``)."""
  x = x.astype(np.float64)
  return np.sqrt(np.sum(x * x, axis=reduction_axes(x, axis), keepdims=True))


def band(name):
  """The relative band around the threshold where a group's fate is left open."""
  return 1e-12 if name == "float64" else 2e-5


def underflows(x, axis, name):
  """Groups whose squared norm the library sees as 0 (all squares below the normal range)."""
  xc = as_compute(x, name).astype(np.float64)
  return np.sum(xc * xc, axis=reduction_axes(x, axis), keepdims=True) < tiny(
    compute_dtype(name).__name__
  )


@EXAMPLES
@given(case=block_cases())
def test_block_soft_threshold(case):
  name, x, axis, t = case
  with x64(name):
    out = np.asarray(block_soft_threshold(jnp.asarray(x), t, axis=axis))
    check_common(x, out, name)
    norms = group_norms(x, axis)
    out_norms = group_norms(out, axis)
    removed = np.all(out == 0, axis=reduction_axes(x, axis), keepdims=True)
    # Groups whose norm is below the threshold are removed, whole.
    assert np.all(removed[norms < t * (1 - band(name))])
    # Groups above it are kept, unless every entry's exact result is below the normal range
    # or the library's squared norm underflows (it then treats the group as all-zero).
    largest = np.max(
      np.abs(x.astype(np.float64)), axis=reduction_axes(x, axis), keepdims=True, initial=0
    )
    with np.errstate(divide="ignore", invalid="ignore"):
      factor = np.where(norms > 0, 1 - t / np.where(norms > 0, norms, 1), 0)
    must_keep = (norms > t * (1 + band(name))) & (largest * factor > 4 * tiny(name))
    must_keep &= ~underflows(x, axis, name) | (t == 0)
    assert not np.any(removed[must_keep])
    # Every group's norm shrinks by t (up to rounding), or the group is removed.
    expected = np.maximum(norms - t, 0)
    tol = 4 * (eps(name) + band(name)) * norms + np.sqrt(x.size or 1) * tiny(name)
    ok = np.abs(out_norms - expected) <= tol
    assert np.all(ok | removed | underflows(x, axis, name))
    assert np.all(out_norms <= norms)
    # A zero threshold is the identity.
    same = np.asarray(block_soft_threshold(jnp.asarray(x), 0.0, axis=axis))
    np.testing.assert_array_equal(same, x)


@EXAMPLES
@given(data=st.data(), t=st.floats(0, 100, width=32))
def test_block_soft_threshold_is_non_expansive_and_composes(data, t):
  name = data.draw(st.sampled_from(DTYPES))
  shape = data.draw(st.sampled_from(BLOCK_SHAPES))
  axis = data.draw(st.integers(-len(shape), len(shape) - 1))
  _, x = data.draw(arrays(shapes=[shape], dtype=name))
  _, y = data.draw(arrays(shapes=[shape], dtype=name))
  a = data.draw(st.floats(0, 100, width=32))
  with x64(name):

    def op(v, t):
      return block_soft_threshold(jnp.asarray(v), t, axis=axis)

    px, py = np.asarray(op(x, t), np.float64), np.asarray(op(y, t), np.float64)
    if not (underflows(x, axis, name).any() or underflows(y, axis, name).any()):
      assert_non_expansive(x, y, px, py, name)
      # block(block(x, t), a) = block(x, t + a): the direction is kept, norms subtract.
      twice = np.asarray(op(op(x, t), a), np.float64)
      once = np.asarray(op(x, t + a), np.float64)
      tol = 8 * (eps(name) + band(name)) * (group_norms(x, axis) + t + a) + tiny(name)
      assert np.all(np.abs(twice - once) <= tol)


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA's CPU flush-to-zero")
def test_subnormal_results_flush_to_zero_on_cpu():
  """Not guaranteed: an exact result below float32's normal range comes out as 0.0 on CPU."""
  x = jnp.array([1.5e-38, -1.5e-38, 3.0], jnp.float32)
  out = np.asarray(optax_l1.soft_threshold(x, 1.4e-38))
  assert abs(np.float64(np.float32(1.5e-38)) - np.float64(np.float32(1.4e-38))) > 0  # 1e-39
  np.testing.assert_array_equal(out, [0.0, 0.0, 3.0])  # 1e-39 is subnormal: flushed


# ----------------------------------------------------------------------------------------------
# Pytrees, dtypes and NaN.
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16, jnp.float32])
def test_low_precision_lands_on_exact_zeros_and_keeps_dtype(dtype):
  x = jnp.array([0.1, -0.1, 0.3, -2.0], dtype)
  out = soft_threshold(x, 0.11)
  assert out.dtype == dtype
  np.testing.assert_array_equal(np.asarray(out, np.float32)[:2], [0.0, 0.0])
  np.testing.assert_allclose(np.asarray(out, np.float32)[2:], [0.19, -1.89], atol=1e-2)


def test_float64():
  with enable_x64(True):
    x = jnp.array([1e-12, 1.0 + 1e-12], jnp.float64)
    out = optax_l1.soft_threshold(x, 1.0)
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(out), [0.0, 1e-12], atol=1e-20, rtol=1e-4)


def test_pytree_with_scalar_array_and_tree_thresholds():
  x = {"a": jnp.array([1.0, -2.0, 3.0]), "b": (jnp.array([[0.5, -0.5]]),)}
  chex.assert_trees_all_close(
    soft_threshold(x, 1.0),
    {"a": jnp.array([0.0, -1.0, 2.0]), "b": (jnp.array([[0.0, 0.0]]),)},
    atol=0,
  )
  per_leaf = {"a": 2.5, "b": (jnp.array([0.25, 1.0]),)}  # the second broadcasts per column
  chex.assert_trees_all_close(
    soft_threshold(x, per_leaf),
    {"a": jnp.array([0.0, 0.0, 0.5]), "b": (jnp.array([[0.25, 0.0]]),)},
    atol=0,
  )


def test_integer_and_bool_leaves_are_untouched():
  x = {"i": jnp.array([1, -5, 0]), "b": jnp.array([True, False]), "f": jnp.array([0.5])}
  out = soft_threshold(x, 1.0)
  assert out["i"].dtype == x["i"].dtype and out["b"].dtype == jnp.bool_
  np.testing.assert_array_equal(out["i"], x["i"])
  np.testing.assert_array_equal(out["b"], x["b"])
  np.testing.assert_array_equal(out["f"], [0.0])


def test_nan_stays_nan():
  out = np.asarray(soft_threshold(jnp.array([jnp.nan, 0.5, jnp.inf]), 1.0))
  assert np.isnan(out[0]) and out[1] == 0.0 and out[2] == np.inf


def test_nan_threshold_gives_nan_rather_than_zeros():
  # A NaN l1 injected by inject_hyperparams must not silently zero the weights: NaN updates
  # are what optax.apply_if_finite detects.
  x = jnp.array([0.0, 0.5, -3.0])
  for t in (jnp.float32(jnp.nan), jnp.array([1.0, jnp.nan, 1.0])):
    out = np.asarray(soft_threshold(x, t))
    np.testing.assert_array_equal(np.isnan(out), np.isnan(np.broadcast_to(t, x.shape)))


# ----------------------------------------------------------------------------------------------
# Bad input: thresholds that do not fit the leaves, axes that are not ints.
# ----------------------------------------------------------------------------------------------


def test_threshold_tree_that_does_not_match_raises():
  x = {"a": jnp.ones(2), "b": jnp.ones(2)}
  with pytest.raises(ValueError, match="threshold must have the structure of the params"):
    optax_l1.soft_threshold(x, {"a": 1.0, "c": 1.0})


PARAMS = {"kernel": jnp.array([[0.5, -1e-3], [2.0, 0.0]]), "bias": jnp.array([1e-3, -0.5])}


@pytest.mark.parametrize(
  ("call", "name"),
  [
    (lambda x: optax_l1.hard_threshold(x, {"kernel": 1.0, "scale": 1.0}), "threshold"),
    (lambda x: optax_l1.block_soft_threshold(x, [1.0, 2.0]), "threshold"),
    (lambda x: optax_l1.prox_elastic_net(x, {"kernel": 1.0}, 0.0), "l1"),
    (lambda x: optax_l1.prox_elastic_net(x, 1.0, {"bias": 1.0}), "l2"),
    (lambda x: optax_l1.prox_elastic_net(x, 1.0, 0.0, {"kernel": 1.0}), "scaling"),
  ],
  ids=["hard_threshold", "block_soft_threshold", "elastic_l1", "elastic_l2", "elastic_scaling"],
)
def test_threshold_tree_of_the_wrong_structure_raises_naming_it(call, name):
  with pytest.raises(ValueError, match=rf"^{name} must have the structure of the params"):
    call(PARAMS)


@pytest.mark.parametrize(
  "call, name",
  [
    (lambda x, t: optax_l1.soft_threshold(x, t), "threshold"),
    (lambda x, t: optax_l1.hard_threshold(x, t), "threshold"),
    (lambda x, t: optax_l1.prox_elastic_net(x, 1.0, t), "l2"),
    (lambda x, t: optax_l1.prox_elastic_net(x, 1.0, 0.0, t), "scaling"),
  ],
  ids=["soft_threshold", "hard_threshold", "elastic_l2", "elastic_scaling"],
)
def test_threshold_array_that_does_not_broadcast_raises_naming_it(call, name):
  # A (4,) threshold against a (3,) leaf; a (3, 1) one would silently grow the leaf to (3, 3).
  for threshold in (jnp.ones(4), jnp.ones((3, 1))):
    with pytest.raises(ValueError, match=rf"^{name} of shape .* does not broadcast to a leaf"):
      call(jnp.ones(3), threshold)


def test_block_soft_threshold_axis_out_of_range():
  with pytest.raises(ValueError, match="group axis 2 is out of range for a leaf of shape"):
    optax_l1.block_soft_threshold(jnp.ones((3, 4)), 1.0, axis=2)


def test_block_soft_threshold_axis_that_is_not_an_int_raises_type_error():
  with pytest.raises(TypeError, match="axis"):
    optax_l1.block_soft_threshold(jnp.ones((2, 3)), 1.0, axis=1.0)


# Regressions of the first-hour defects (x64, complex, masks, injection, Rngs, untouched rows,
# momentum, errors).


def test_block_soft_threshold_rejects_a_threshold_shaped_like_the_leaf():
  x = jnp.ones((3, 4))
  with pytest.raises(ValueError, match=r"group norms of shape \(1, 4\)"):
    optax_l1.block_soft_threshold(x, jnp.ones((3, 4)))
  np.testing.assert_allclose(
    optax_l1.block_soft_threshold(x, jnp.full((1, 4), 1.0)), optax_l1.block_soft_threshold(x, 1.0)
  )
  with pytest.raises(ValueError, match="group_l1 of shape"):
    optax_l1.prox.group_l1(x, jnp.ones((3, 4)))


# GroupAxis in the prox operators: blocks of consecutive indices (Equinox's attention heads).


@pytest.mark.parametrize("shape,layout", [((6, 8), (1, 2)), ((8, 5), (0, 4)), ((3, 4, 6), (-1, 3))])
def test_group_l1_with_a_group_axis_is_the_blockwise_reference(shape, layout):
  rng = np.random.default_rng(1)
  axis, size = layout
  x = rng.normal(size=shape).astype(np.float32)
  scale = np.repeat(np.linspace(0.1, 2.0, shape[axis] // size), size)  # some go, some stay
  x = x * np.expand_dims(scale, [i for i in range(len(shape)) if i != axis % len(shape)])
  group_axis = optax_l1.GroupAxis(axis, size)
  strength = 0.3
  out = np.asarray(jax.jit(lambda x: optax_l1.prox.group_l1(x, strength, 1.0, axis=group_axis))(x))
  expected = references.group_l1_in_metric(x, strength, 1.0, axis=axis, size=size)
  np.testing.assert_allclose(out, expected, atol=1e-6)
  np.testing.assert_array_equal(out == 0, expected == 0)
  assert 0 < np.mean(expected == 0) < 1
  # block_soft_threshold with the same blocks and threshold λ√|G| gives the same.
  group_size = x.size // (shape[axis] // size)
  blocks = optax_l1.block_soft_threshold(x, strength * np.sqrt(group_size), axis=group_axis)
  np.testing.assert_allclose(blocks, out, atol=1e-6)


def test_a_group_axis_of_size_one_is_the_int_axis():
  x = jnp.asarray(np.random.default_rng(2).normal(size=(5, 4)), jnp.float32)
  for axis in (0, 1, -1):
    np.testing.assert_array_equal(
      optax_l1.prox.group_l1(x, 0.5, axis=optax_l1.GroupAxis(axis)),
      optax_l1.prox.group_l1(x, 0.5, axis=axis),
    )


def test_a_per_group_threshold_broadcasts_to_the_split_norms():
  weight = jnp.ones((2, 6))  # 3 groups of 2 columns, norm 2 each
  group_axis = optax_l1.GroupAxis(1, 2)
  out = optax_l1.block_soft_threshold(weight, jnp.array([[[1.0], [3.0], [0.0]]]), axis=group_axis)
  np.testing.assert_allclose(out, np.repeat([[0.5, 0.0, 1.0]], 2, axis=1).repeat(2, axis=0))
  with pytest.raises(ValueError, match=r"group norms of shape \(1, 3, 1\)"):
    optax_l1.block_soft_threshold(weight, jnp.ones(6), axis=group_axis)


def test_a_group_axis_that_does_not_fit_is_an_error_naming_it():
  with pytest.raises(
    ValueError,
    match=r"^axis=GroupAxis\(axis=1, size=4\) for a leaf of shape \(3, 6\): its length 6 along axis 1 is not a multiple of the group size 4",
  ):
    optax_l1.prox.group_l1(jnp.ones((3, 6)), 0.1, axis=optax_l1.GroupAxis(1, 4))
  with pytest.raises(ValueError, match="group axis 2 is out of range for a leaf of shape"):
    optax_l1.block_soft_threshold(jnp.ones((3, 4)), 1.0, axis=optax_l1.GroupAxis(2, 2))
