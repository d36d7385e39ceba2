"""Property tests of the four operators over shapes, dtypes and thresholds (hypothesis).

tests/prox_test.py checks ``soft_threshold`` and ``prox_elastic_net`` on float32 vectors;
here every operator (``soft_threshold``, ``prox_elastic_net``, ``block_soft_threshold``,
``hard_threshold``) runs on scalars, vectors, matrices, 3-d and zero-size arrays, in float32,
bfloat16, float16 and float64 (under ``jax.enable_x64``), with thresholds that are 0, ties
with an entry, random, or one per entry.

The zero set is predicted the way the library computes it: in the compute dtype (float32 for
bfloat16/float16/float32 leaves, float64 for float64 ones), from the leaf's value and the
threshold cast to that dtype. Two effects of finite precision are allowed for, and only
them: XLA on CPU flushes subnormal results to zero (so an entry whose exact result is below
the smallest normal number of its dtype may come out as 0), and a group whose norm is within a
tiny relative band of the threshold may go either way. Subnormal inputs are excluded.

At the end: every optimizer leaves exact +0.0 after ``optax.apply_updates`` in each of the four
dtypes, and a check that XLA's CPU backend does flush subnormal results.
"""

import contextlib

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import optax_l1

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
  return jax.enable_x64(True) if name == "float64" else contextlib.nullcontext()


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


def soft_reference(x, t, name):
  """x − clip(x, −t, t) in the compute dtype, as the library computes it (before the cast)."""
  xc = as_compute(x, name)
  tc = np.asarray(t, compute_dtype(name))
  return xc - np.clip(xc, -tc, tc), np.abs(xc) <= tc


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


# ----------------------------------------------------------------------------------------------
# Soft thresholding and the elastic net.
# ----------------------------------------------------------------------------------------------


@EXAMPLES
@given(data=st.data(), case=arrays())
def test_soft_threshold(data, case):
  name, x = case
  t = data.draw(thresholds(x, name))
  a = data.draw(st.floats(0, 10, width=32))
  with x64(name):
    out = np.asarray(optax_l1.soft_threshold(jnp.asarray(x), t))
    exact, removed = soft_reference(x, t, name)
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
    soft, removed = soft_reference(x, scaling * l1, name)
    cdtype = compute_dtype(name)
    exact = soft / (1 + cdtype(scaling * l2)) if scaling * l2 else soft
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


# ----------------------------------------------------------------------------------------------
# Hard thresholding.
# ----------------------------------------------------------------------------------------------


@EXAMPLES
@given(data=st.data(), case=arrays())
def test_hard_threshold(data, case):
  name, x = case
  t = data.draw(thresholds(x, name))
  with x64(name):
    out = np.asarray(optax_l1.hard_threshold(jnp.asarray(x), t))
    keep = np.abs(as_compute(x, name)) > np.asarray(t, compute_dtype(name))
    check_common(x, out, name)
    # Kept entries are not shrunk; removed ones are +0.0; no precision band is needed.
    np.testing.assert_array_equal(out, np.where(keep, x, np.zeros((), x.dtype)))
    assert not np.any(np.signbit(out[~keep]))
    # Idempotent, bit for bit.
    again = np.asarray(optax_l1.hard_threshold(jnp.asarray(out), t))
    assert again.tobytes() == out.tobytes()


# ----------------------------------------------------------------------------------------------
# Block soft thresholding.
# ----------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------
# The optimizers: exact zeros after optax.apply_updates, in every dtype.
# ----------------------------------------------------------------------------------------------

OPTIMIZERS = {
  "sgd_momentum": lambda: optax_l1.sgd(0.01, l1=2.0, momentum=0.9),
  "adam": lambda: optax_l1.adam(0.01, l1=20.0),
  "adamw": lambda: optax_l1.adamw(0.01, weight_decay=0.1, l1=20.0, l2=1.0),
  "rmsprop": lambda: optax_l1.rmsprop(0.01, l1=5.0),
  "adagrad": lambda: optax_l1.adagrad(0.01, l1=20.0),
  "adam_l0": lambda: optax_l1.adam(0.01, l0=20.0),
  "chain_sgd_l1_prox": lambda: optax.chain(optax.sgd(0.01), optax_l1.l1_prox(20.0, 0.01)),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_optimizer_zeros_are_exact_after_apply_updates(dtype, name):
  """One step from weights of magnitudes 1e-4…10: the small ones land on exactly +0.0."""
  magnitudes = np.geomspace(1e-4, 10, 12)
  with x64(dtype):
    params = jnp.asarray(np.concatenate([magnitudes, -magnitudes]), dtype)
    grads = jnp.asarray(np.concatenate([magnitudes, -magnitudes]) * 0.1 + 0.05, dtype)
    tx = OPTIMIZERS[name]()
    updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    new = optax.apply_updates(params, updates)
    assert updates.dtype == new.dtype == params.dtype
    out = np.asarray(new).astype(np.float64)
    zeros = out == 0
    assert zeros[[0, 12]].all() and not zeros[[11, 23]].any()  # smallest removed, largest kept
    assert not np.any(np.signbit(out[zeros]))  # +0.0: p + (0 - p) is exact in any dtype


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA's CPU flush-to-zero")
def test_subnormal_results_flush_to_zero_on_cpu():
  """Not guaranteed: an exact result below float32's normal range comes out as 0.0 on CPU."""
  x = jnp.array([1.5e-38, -1.5e-38, 3.0], jnp.float32)
  out = np.asarray(optax_l1.soft_threshold(x, 1.4e-38))
  assert abs(np.float64(np.float32(1.5e-38)) - np.float64(np.float32(1.4e-38))) > 0  # 1e-39
  np.testing.assert_array_equal(out, [0.0, 0.0, 3.0])  # 1e-39 is subnormal: flushed
