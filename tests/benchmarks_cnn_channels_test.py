"""The CNN channel benchmark runs, counts what compaction removes, and prunes by outgoing norm."""

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

ROOT = pathlib.Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import cnn_channels  # noqa: E402


def test_quick_run_compacts_each_method_to_equal_logits(capsys):
  methods = ["target_out_layer:0.5"]
  cnn_channels.main(["--quick", "--seeds", "0", "--methods", ",".join(methods)])
  rows = {}
  for line in capsys.readouterr().out.splitlines():
    cells = [c.strip() for c in line.split("|")[1:-1]]
    if cells and cells[0] in methods:
      rows[cells[0]] = cells
  assert set(rows) == set(methods)
  for cells in rows.values():
    # Half of every layer's 32 channels, removed by compact_conv_stack, the logits unchanged.
    assert cells[2].startswith("50.0") and cells[3] == "16.0 / 16.0 / 16.0", cells
    assert float(cells[4]) <= 1e-5


def test_outgoing_masks_keep_the_channels_with_the_largest_outgoing_norms():
  rng = np.random.default_rng(0)
  norms = rng.permutation(np.arange(1.0, 9.0))
  kernel = rng.normal(size=(3, 8, 4))  # (window, in, out): the input channels are the groups
  kernel *= (norms / np.linalg.norm(kernel, axis=(0, 2)))[None, :, None]
  head = rng.normal(size=(8, 10))
  params = {"conv3": {"kernel": jnp.asarray(kernel)}, "head": {"kernel": jnp.asarray(head)}}
  masks = cnn_channels._outgoing_masks(params, jnp.float32(0.25))
  kept = np.asarray(masks["conv3"]["kernel"])
  assert np.all(kept == kept[:1, :, :1])  # whole input channels
  np.testing.assert_array_equal(kept[0, :, 0], norms > 2)  # 25 % of 8: the two smallest go
  head_kept = np.asarray(masks["head"]["kernel"])
  assert head_kept.all(axis=1).sum() == 6 and np.all(head_kept == head_kept[:, :1])
  assert jax.tree.structure(masks) == jax.tree.structure(params)
