"""Worked examples of :mod:`optax_l1` on small models; each imports only the public API.

- :mod:`optax_l1.examples.digits`: a Flax NNX MLP on scikit-learn's digits, trained dense,
  with an L1 penalty in the loss, with ``optax.adam`` chained to :func:`optax_l1.l1_prox`,
  and with :func:`optax_l1.adam`; only the last gives exact zeros at full accuracy.
- :mod:`optax_l1.examples.compare`: ``optax-l1 compare``, which trains those side by side,
  prints a table and writes ``results.json`` and plots.
- :mod:`optax_l1.examples.masks`: masks chosen by parameter path (kernels penalised, biases
  and norms left free), for Flax NNX and Linen.
- :mod:`optax_l1.examples.linen_digits`: the digits MLP in Flax Linen, with a ``TrainState``
  whose ``tx`` is :func:`optax_l1.adam`.
- :mod:`optax_l1.examples.equinox_mlp`: an Equinox ``eqx.nn.MLP`` on the digits, its mask
  built with ``eqx.filter``, exact zeros with :func:`optax_l1.adam` and whole hidden units
  with ``group_axis=0`` (Equinox's ``(out, in)`` weights).
- :mod:`optax_l1.examples.click_through`: hashed logistic regression on generated sparse
  features (2^18 ids, Zipf frequencies), one pass with :func:`optax_l1.ftrl` against
  Adagrad with and without L1: log loss, AUC and non-zero weights.
- :mod:`optax_l1.examples.transformer`: a small transformer classifier on MNIST-1D (40
  tokens), whole attention heads and MLP neurons removed with target sparsity on groups, then
  compacted with :func:`optax_l1.compact_attention` and :func:`optax_l1.compact_mlp`: the
  same logits, a faster forward pass.
- :mod:`optax_l1.examples.mnist1d_cnn`: conv channels removed from an MNIST-1D CNN (dense,
  group penalty in the loss, group prox, target-sparsity groups per layer, channel magnitude
  pruning), each compacted with :func:`optax_l1.compact_conv_stack`, its logits checked and
  its forward pass timed against the original's.
- :mod:`optax_l1.examples.mnist1d_data` generates MNIST-1D for both, and
  :mod:`optax_l1.examples.timing` times their forward passes.
"""
