"""The soft-threshold forms benchmark runs, and the forms it compares compute the same thing."""

import pathlib
import subprocess
import sys

import jax
import numpy as np

ROOT = pathlib.Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import threshold_forms  # noqa: E402


def test_clip_and_select_forms_agree_with_the_closed_form():
  keys = jax.random.split(jax.random.key(0), 3)
  p = 1e-7 * jax.random.normal(keys[0], (4096,))  # on the scale of the threshold lr·l1
  g = 1e-4 * jax.random.normal(keys[1], (4096,))
  nu = jax.random.uniform(keys[2], (4096,))
  p, g = p.at[0].set(np.nan), g.at[1].set(np.nan)
  forms = {name: np.asarray(fn(p, g, nu)) for name, (_, fn) in threshold_forms.FORMS.items()}
  clip, select = (forms[f"+ soft threshold ({how}, array t)"] for how in ("jnp.clip", "selects"))
  np.testing.assert_array_equal(clip, select)  # NaN where NaN, bit for bit elsewhere
  s = 1 / np.sqrt(np.float64(nu) + threshold_forms.EPS)
  v = np.float64(p) - threshold_forms.LR * np.float64(g) * s
  t = threshold_forms.T * s
  expected = np.sign(v) * np.maximum(np.abs(v) - t, 0)
  np.testing.assert_allclose(select, expected, rtol=1e-5, atol=1e-12)
  assert np.isnan(select[:2]).all() and (select == 0).sum() > 1000  # about half are removed


def test_script_prints_every_form():
  out = subprocess.run(
    [sys.executable, "benchmarks/threshold_forms.py", "--size", "1e4", "--repeats", "2"],
    check=True,
    capture_output=True,
    text=True,
    cwd=ROOT,
  ).stdout
  names = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")]
  assert names[1:] == list(threshold_forms.FORMS)
