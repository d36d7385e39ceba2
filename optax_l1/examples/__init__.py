"""Worked examples of :mod:`optax_l1` on small models; each imports only the public API.

- :mod:`optax_l1.examples.digits`: a Flax NNX MLP on scikit-learn's digits, trained dense,
  with an L1 penalty in the loss, with ``optax.adam`` chained to :func:`optax_l1.l1_prox`,
  and with :func:`optax_l1.adam`; only the last gives exact zeros at full accuracy.
"""
