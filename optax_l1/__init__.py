"""optax_l1: L1 regularisation that gives exact zeros, as optax transformations."""

from optax_l1 import preconditioners
from optax_l1._alias import adagrad, adam, adamw, rmsprop, sgd
from optax_l1._prox import prox_elastic_net, soft_threshold
from optax_l1._sparsity import LeafSparsity, SparsityReport, sparsity
from optax_l1._transform import ProximalState, l1_prox, proximal

__version__ = "0.1.0"

__all__ = [
  "LeafSparsity",
  "ProximalState",
  "SparsityReport",
  "adagrad",
  "adam",
  "adamw",
  "l1_prox",
  "preconditioners",
  "prox_elastic_net",
  "proximal",
  "rmsprop",
  "sgd",
  "soft_threshold",
  "sparsity",
]
