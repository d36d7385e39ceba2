"""optax_l1: L1 regularisation that gives exact zeros, as optax transformations."""

from optax_l1 import preconditioners, prox
from optax_l1._alias import adagrad, adam, adamw, rmsprop, sgd
from optax_l1._compaction import CompactionReport, compact_dense_stack, compact_mlp
from optax_l1._compaction_attention import compact_attention
from optax_l1._compaction_conv import compact_conv_stack
from optax_l1._export import to_bcoo
from optax_l1._fista import FistaInfo, fista, fista_path
from optax_l1._ftrl import FtrlState, ftrl
from optax_l1._groups import GroupAxis
from optax_l1._last_stage import group_l1_prox, keep_zeros, l1_prox
from optax_l1._proximal import ProximalState, proximal
from optax_l1._report import LeafSparsity, SparsityReport, sparsity
from optax_l1._target_sparsity import (
  PolynomialSparsity,
  TargetSparsityState,
  polynomial_sparsity,
  target_strength,
)
from optax_l1.prox import block_soft_threshold, hard_threshold, prox_elastic_net, soft_threshold

__version__ = "0.2.0.dev0"

__all__ = [
  "CompactionReport",
  "FistaInfo",
  "FtrlState",
  "GroupAxis",
  "LeafSparsity",
  "PolynomialSparsity",
  "ProximalState",
  "SparsityReport",
  "TargetSparsityState",
  "adagrad",
  "adam",
  "adamw",
  "block_soft_threshold",
  "compact_attention",
  "compact_conv_stack",
  "compact_dense_stack",
  "compact_mlp",
  "fista",
  "fista_path",
  "ftrl",
  "group_l1_prox",
  "hard_threshold",
  "keep_zeros",
  "l1_prox",
  "polynomial_sparsity",
  "preconditioners",
  "prox",
  "prox_elastic_net",
  "proximal",
  "rmsprop",
  "sgd",
  "soft_threshold",
  "sparsity",
  "target_strength",
  "to_bcoo",
]
