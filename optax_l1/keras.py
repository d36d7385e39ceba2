r"""``optax_l1.keras``: Keras 3 optimizers that give exact zeros, for ``model.fit``.

Change one line: ``model.compile(optimizer=optax_l1.keras.Adam(1e-3, l1=1e-3), ...)`` in place
of ``keras.optimizers.Adam(1e-3)`` with ``kernel_regularizer=keras.regularizers.l1(1e-3)`` on
the layers (drop the regularizer: the optimizer applies the penalty). The optimizers
:class:`SGD`, :class:`Adam`, :class:`AdamW`, :class:`RMSprop` and :class:`Adagrad` take Keras'
own arguments and defaults, plus ``l1``, ``l2``, ``group_l1``, ``target_sparsity`` and
``penalize``; their steps are those of :func:`optax_l1.proximal` with the matching
:mod:`optax_l1.preconditioners`, and with no penalty they are Keras' optimizers step for step.
:class:`OptaxOptimizer` runs any optax transformation in ``fit``; :func:`sparsity` and
:class:`SparsityCallback` report the exact zeros of a model.

Keras 3 with its JAX backend is required (``pip install 'optax_l1[keras]'``). Keras chooses its
backend when it is first imported: importing ``optax_l1.keras`` before ``keras`` selects JAX
unless the environment variable ``KERAS_BACKEND`` names another backend (this takes precedence
over a backend named in ``~/.keras/keras.json``). ``import optax_l1`` does not import Keras.

The optimizers are registered with Keras (package ``"optax_l1"``): ``model.save("m.keras")``
stores their arguments and state, and ``keras.models.load_model("m.keras")`` restores them
without ``custom_objects`` in a process that has imported ``optax_l1.keras`` (Keras looks the
class up in its registry, which the import fills), so that training resumes exactly.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Callable
from typing import Any

if "keras" not in sys.modules:  # Keras reads its backend once, at its first import
  os.environ.setdefault("KERAS_BACKEND", "jax")

try:
  import keras
except ImportError as error:  # pragma: no cover - the keras extra is not installed
  raise ImportError(
    "optax_l1.keras needs Keras 3 and its JAX backend: pip install 'optax_l1[keras]'."
  ) from error

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optax_l1
from optax_l1 import _validation, preconditioners

if int(keras.__version__.split(".")[0]) < 3:  # pragma: no cover - Keras 2 (tf-keras)
  raise ImportError(
    f"optax_l1.keras needs Keras 3, found Keras {keras.__version__}: pip install 'keras>=3.10'."
  )

Predicate = Callable[[str, tuple[int, ...]], bool]  # (variable.path, variable.shape) -> bool

_PACKAGE = "optax_l1"


def _check_jax_backend(name: str) -> None:
  backend = keras.backend.backend()
  if backend != "jax":
    raise RuntimeError(
      f"optax_l1.keras.{name} needs Keras' JAX backend, but Keras is running on {backend!r}. "
      "Select JAX before keras is first imported: set the environment variable "
      "KERAS_BACKEND=jax (in Python, `os.environ['KERAS_BACKEND'] = 'jax'` before "
      '`import keras`), or write "backend": "jax" in ~/.keras/keras.json.'
    )


def _is_kernel(path: str, shape: tuple[int, ...]) -> bool:
  """The default ``penalize``: kernels (2 or more dimensions), not biases or norms' scales."""
  del path
  return len(shape) >= 2


def _check_predicate(fn: Any, name: str) -> None:
  if fn is not None and not callable(fn):
    raise TypeError(
      f"{name} must be None or a function of (path, shape) returning a bool, e.g. "
      f"`lambda path, shape: len(shape) >= 2 and 'embedding' not in path`; got {fn!r}."
    )


def _selected(fn: Predicate | None, variable: Any, name: str) -> bool:
  """``fn(variable.path, variable.shape)``, checked to be a bool."""
  chosen = (fn or _is_kernel)(variable.path, tuple(variable.shape))
  if not isinstance(chosen, (bool, np.bool_)):
    raise TypeError(
      f"{name} must return a bool, but returned {chosen!r} for the variable "
      f"{variable.path!r} of shape {tuple(variable.shape)}."
    )
  return bool(chosen)


def _check_strength(value: Any, name: str) -> None:
  if value is None:
    return
  if callable(value):
    raise TypeError(
      f"{name} must be a number in optax_l1.keras's optimizers (it is saved with the model), "
      f"got the callable {value!r}. For a schedule of the strength, use "
      f"optax_l1.keras.OptaxOptimizer(lambda lr: optax_l1.adam(lr, {name}=schedule, "
      "mask=...), learning_rate=...)."
    )
  _validation.check_hyperparameter(value, name)


def _serialize_target(target: Any) -> Any:
  if target is None or isinstance(target, (int, float)):
    return target
  if isinstance(target, optax_l1.PolynomialSparsity):
    return {"polynomial_sparsity": dataclasses.asdict(target)}  # polynomial_sparsity's kwargs
  raise TypeError(
    "target_sparsity must be a number in [0, 1) or optax_l1.polynomial_sparsity(...) to be "
    f"saved with the model, got {target!r}."
  )


def _deserialize_target(config: Any) -> Any:
  if isinstance(config, dict) and "polynomial_sparsity" in config:
    return optax_l1.polynomial_sparsity(**config["polynomial_sparsity"])
  return config


def _variable_name(path: Any) -> str:
  """A Keras variable name for a leaf of the optax state (Keras forbids ``/`` in names)."""
  return "optax" + re.sub(r"[^0-9A-Za-z]+", "_", jax.tree_util.keystr(path)).rstrip("_")


class _OptaxState(keras.optimizers.Optimizer):
  """A Keras optimizer whose step is one optax update of all its variables at once.

  The optax state lives in Keras optimizer variables (one per leaf of the state, after
  ``iteration`` and ``learning_rate`` in ``optimizer.variables``), so ``model.save`` stores it
  and ``load_model`` restores it. Keras calls ``_backend_update_step`` with every gradient
  and variable together, after clipping (``clipnorm``, ``global_clipnorm``, ``clipvalue``),
  weight decay and loss-scale unscaling, and under gradient accumulation and EMA; it reads
  the learning rate (a schedule at the iteration count, or the variable that
  ``ReduceLROnPlateau`` sets) and passes it in, and the transformation is built with it.
  """

  def __init__(self, learning_rate: Any, **kwargs: Any) -> None:
    _check_jax_backend(type(self).__name__)
    super().__init__(learning_rate=learning_rate, **kwargs)

  def _transformation(self, learning_rate: Any) -> optax.GradientTransformation:
    raise NotImplementedError

  def _initial_learning_rate(self) -> float:
    return float(keras.ops.convert_to_numpy(self.learning_rate))

  def _check_built_on(self, stepped: list[Any]) -> None:
    """A hook for subclasses: raise if ``stepped`` (the variables) does not fit them."""

  def build(self, variables: list[Any]) -> None:
    if self.built:
      return
    super().build(variables)
    # float8 scales and the like are overwritten by their gradient, not stepped (as Keras does)
    stepped = [v for v in variables if not getattr(v, "overwrite_with_gradient", False)]
    self._stepped_keys = [self._var_key(v) for v in stepped]
    self._check_built_on(stepped)
    state = self._transformation(self._initial_learning_rate()).init([v.value for v in stepped])
    with_path, treedef_ = jax.tree_util.tree_flatten_with_path(state)
    treedef: Any = treedef_
    state_variables = []
    for path, leaf in with_path:
      leaf = jnp.asarray(leaf)
      variable = self.add_variable(shape=leaf.shape, dtype=leaf.dtype, name=_variable_name(path))
      variable.assign(leaf)
      state_variables.append(variable)
    self._state_treedef = treedef
    self._state_variables = state_variables

  def _backend_update_step(
    self, grads: list[Any], trainable_variables: list[Any], learning_rate: Any
  ) -> None:
    variables = list(trainable_variables)
    if [self._var_key(v) for v in variables] != self._stepped_keys:
      raise ValueError(
        f"optax_l1.keras.{type(self).__name__} updates all its variables in one step, but it "
        f"was given {len(variables)} of the {len(self._stepped_keys)} it was built with (a "
        "gradient was None, or another list of variables was passed): pass a gradient for "
        "every variable, zeros where there is none."
      )
    tx = self._transformation(keras.ops.convert_to_tensor(learning_rate))
    params = [v.value for v in variables]
    grads = [jnp.asarray(g).astype(p.dtype) for g, p in zip(grads, params, strict=True)]
    state = self._state_treedef.unflatten([v.value for v in self._state_variables])
    updates, state = tx.update(grads, state, params)
    for variable, value in zip(variables, optax.apply_updates(params, updates), strict=True):
      self.assign(variable, value)
    for variable, value in zip(
      self._state_variables, self._state_treedef.flatten_up_to(state), strict=True
    ):
      self.assign(variable, value)


class _Proximal(_OptaxState):
  """The optimizers with exact zeros: :func:`optax_l1.proximal` with one preconditioner."""

  def __init__(
    self,
    learning_rate: Any,
    preconditioner: preconditioners.Preconditioner,
    *,
    l1: float | None,
    l2: float | None,
    group_l1: float | None,
    target_sparsity: Any,
    penalize: Predicate | None,
    use_ema: bool,
    **kwargs: Any,
  ) -> None:
    super().__init__(learning_rate=learning_rate, use_ema=use_ema, **kwargs)
    for value, name in ((l1, "l1"), (l2, "l2"), (group_l1, "group_l1")):
      _check_strength(value, name)
    _serialize_target(target_sparsity)  # raises for what could not be saved
    _check_predicate(penalize, "penalize")
    if use_ema and (l1 or group_l1 or target_sparsity is not None):
      raise ValueError(
        "use_ema=True replaces the weights with their moving average at the end of fit(), and "
        "an average of weights that reached zero at different steps is not zero: the exact "
        "zeros would be lost. Train without use_ema."
      )
    self._preconditioner = preconditioner
    self.l1, self.l2, self.group_l1 = l1, l2, group_l1
    self.target_sparsity = target_sparsity
    self.penalize = penalize
    self._mask: Any = None  # one bool per stepped variable, set by build
    self._transformation(1.0)  # checks every argument now, not at the first step

  def _check_built_on(self, stepped: list[Any]) -> None:
    self._mask = tuple(_selected(self.penalize, v, "penalize") for v in stepped)
    penalties = [
      name
      for name, on in (
        ("l1", self.l1),
        ("l2", self.l2),
        ("group_l1", self.group_l1),
        ("target_sparsity", self.target_sparsity is not None),
      )
      if on
    ]
    if penalties and not any(self._mask):
      shown = ", ".join(repr(v.path) for v in stepped[:4]) + (", …" if len(stepped) > 4 else "")
      raise ValueError(
        f"{' and '.join(penalties)} apply to the variables `penalize` selects, but it selects "
        f"none of the {len(stepped)} trainable variables ({shown}). The default selects "
        "kernels (2 or more dimensions); pass penalize=lambda path, shape: ... to choose others."
      )

  def _transformation(self, learning_rate: Any) -> optax.GradientTransformation:
    return optax_l1.proximal(
      self._preconditioner,
      learning_rate,
      l1=self.l1,
      l2=self.l2,
      group_l1=self.group_l1,
      target_sparsity=self.target_sparsity,
      mask=None if self._mask is None else list(self._mask),
    )

  def get_config(self) -> dict[str, Any]:
    config = super().get_config()
    config.update(
      l1=self.l1,
      l2=self.l2,
      group_l1=self.group_l1,
      target_sparsity=_serialize_target(self.target_sparsity),
      penalize=None
      if self.penalize is None
      else keras.saving.serialize_keras_object(self.penalize),
    )
    return config

  @classmethod
  def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> Any:
    config = dict(config)
    config["target_sparsity"] = _deserialize_target(config.get("target_sparsity"))
    if config.get("penalize") is not None:
      config["penalize"] = keras.saving.deserialize_keras_object(
        config["penalize"], custom_objects=custom_objects
      )
    return super().from_config(config, custom_objects=custom_objects)


_PENALTY_ARGUMENTS = r"""    l1: the L1 strength :math:`\lambda_1 \ge 0`, the λ of ``keras.regularizers.l1(λ)``
      (a number); ``None`` (default) or ``0`` for none.
    l2: the L2 strength :math:`\lambda_2 \ge 0`, of the penalty
      :math:`\tfrac{\lambda_2}{2}\|w\|_2^2` (``keras.regularizers.l2(λ)`` is ``l2=2λ``).
    group_l1: the group-lasso strength: whole output units (the last axis of a kernel) to
      zero, each unit's weights as one group; see :func:`optax_l1.proximal`.
    target_sparsity: instead of a strength, the fraction of exact zeros wanted over the
      penalised variables, ranked together: a number in [0, 1) or
      :func:`optax_l1.polynomial_sparsity` (its steps count optimizer updates); see
      :func:`optax_l1.proximal`.
    penalize: which variables are penalised: a function called once per trainable variable
      by ``build``, with the variable's path as Keras writes it (``variable.path``, a ``str``
      such as ``"sequential/dense/kernel"``) and its shape (a ``tuple`` of ints), returning
      a ``bool``. Default: the kernels, variables with 2 or more dimensions (not biases, nor
      normalisation scales), as one writes ``kernel_regularizer``. To save it with the
      model, register it with ``keras.saving.register_keras_serializable`` (Keras' rule for
      custom functions).
"""

_KERAS_ARGUMENTS = r"""    weight_decay: the decoupled weight decay :math:`\mu`, applied by Keras before the step,
      :math:`w \leftarrow w - \eta_t\mu w`, to every variable that
      ``exclude_from_weight_decay`` does not exclude (biases too, as in Keras): for the
      penalised variables this is :func:`optax_l1.adamw`'s decay.
    clipnorm: as in Keras: the gradients are clipped before the step.
    clipvalue: as in Keras.
    global_clipnorm: as in Keras.
    use_ema: as in Keras, but with a penalty it raises: an average of sparse weights is not
      sparse.
    ema_momentum: as in Keras.
    ema_overwrite_frequency: as in Keras.
    loss_scale_factor: as in Keras.
    gradient_accumulation_steps: as in Keras: the step (and the optax state) advances once
      every this many batches, with the averaged gradient.
    name: as in Keras.
"""


def _documented(cls: Any) -> Any:
  """Writes the shared arguments into ``cls``'s docstring and registers it with Keras."""
  cls.__doc__ = cls.__doc__.replace("    <keras arguments>\n", _KERAS_ARGUMENTS).replace(
    "    <penalty arguments>\n", _PENALTY_ARGUMENTS
  )
  return keras.saving.register_keras_serializable(package=_PACKAGE)(cls)


@_documented
class SGD(_Proximal):
  r"""Proximal SGD with ``keras.optimizers.SGD``'s arguments: :func:`optax_l1.sgd` in ``fit``.

  .. math::

    w \leftarrow \frac{\operatorname{soft}(w - \eta_t p,\ \eta_t\lambda_1 c_k)}
      {1 + \eta_t\lambda_2 c_k},

  with :math:`p` the gradient, or the (Nesterov) momentum direction, and :math:`c_k` the
  momentum's warm-up factor (:math:`c_k = 1` without momentum; see
  :func:`optax_l1.preconditioners.sgd`). With a constant learning rate and no penalty the
  steps are ``keras.optimizers.SGD``'s; with momentum under a learning-rate schedule they
  differ (Keras accumulates :math:`\eta_t g`, optax :math:`g` then scales by :math:`\eta_t`).

  Args:
    learning_rate: :math:`\eta_t`: a float, a ``keras.optimizers.schedules`` schedule or a
      callable of no argument, as in Keras.
    momentum: the momentum :math:`0 \le \beta < 1` (``0.0``: none).
    nesterov: whether to use Nesterov momentum.
    <keras arguments>
    <penalty arguments>
    **kwargs: passed to ``keras.optimizers.Optimizer``.

  Examples:
    >>> import optax_l1.keras
    >>> optimizer = optax_l1.keras.SGD(0.1, momentum=0.9, l1=1e-3)
    >>> optimizer.get_config()["l1"]
    0.001

  References:
    Duchi & Singer, `Efficient Online and Batch Learning Using Forward Backward Splitting
    <https://jmlr.org/papers/v10/duchi09a.html>`_, 2009
  """

  def __init__(
    self,
    learning_rate: Any = 0.01,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    use_ema: bool = False,
    ema_momentum: float = 0.99,
    ema_overwrite_frequency: int | None = None,
    loss_scale_factor: float | None = None,
    gradient_accumulation_steps: int | None = None,
    name: str | None = None,
    *,
    l1: float | None = None,
    l2: float | None = None,
    group_l1: float | None = None,
    target_sparsity: Any = None,
    penalize: Predicate | None = None,
    **kwargs: Any,
  ) -> None:
    super().__init__(
      learning_rate,
      preconditioners.sgd(momentum or None, nesterov),
      l1=l1,
      l2=l2,
      group_l1=group_l1,
      target_sparsity=target_sparsity,
      penalize=penalize,
      weight_decay=weight_decay,
      clipnorm=clipnorm,
      clipvalue=clipvalue,
      global_clipnorm=global_clipnorm,
      use_ema=use_ema,
      ema_momentum=ema_momentum,
      ema_overwrite_frequency=ema_overwrite_frequency,
      loss_scale_factor=loss_scale_factor,
      gradient_accumulation_steps=gradient_accumulation_steps,
      name=name,
      **kwargs,
    )
    self.momentum, self.nesterov = momentum, nesterov

  def get_config(self) -> dict[str, Any]:
    return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


def _adam_preconditioner(beta_1: float, beta_2: float, epsilon: float, amsgrad: bool) -> Any:
  if amsgrad:
    raise ValueError(
      "amsgrad=True is not available in optax_l1.keras (there is no proximal AMSGrad here): "
      "pass amsgrad=False, or use optax_l1.keras.OptaxOptimizer(optax.amsgrad(...)) without "
      "exact zeros."
    )
  return preconditioners.adam(beta_1, beta_2, epsilon, eps_hat=True)


@_documented
class Adam(_Proximal):
  r"""Adam with the L1 prox in Adam's metric and ``keras.optimizers.Adam``'s arguments.

  .. math::

    d = \sqrt{\hat v} + \frac{\epsilon}{\sqrt{1-\beta_2^t}}, \qquad
    w \leftarrow \frac{\operatorname{soft}(w - \eta_t \hat m / d,\ \eta_t\lambda_1/d)}
      {1 + \eta_t\lambda_2/d},

  :func:`optax_l1.adam` with Keras' placement of :math:`\epsilon` (added to :math:`\sqrt{v}`
  before the bias correction: ``preconditioners.adam(..., eps_hat=True)``), so that with no
  penalty the steps are ``keras.optimizers.Adam``'s. It minimises
  :math:`\mathrm{loss} + \lambda_1\|w\|_1` over the penalised variables, the objective of
  ``kernel_regularizer=keras.regularizers.l1(λ)`` with ``l1=λ``, and reaches exact zeros.

  Args:
    learning_rate: :math:`\eta_t`: a float, a ``keras.optimizers.schedules`` schedule or a
      callable of no argument, as in Keras.
    beta_1: the decay :math:`\beta_1` of the first moment.
    beta_2: the decay :math:`\beta_2` of the second moment.
    epsilon: Keras' :math:`\epsilon` ("epsilon hat").
    amsgrad: must be ``False`` (AMSGrad is not available; ``True`` raises).
    <keras arguments>
    <penalty arguments>
    **kwargs: passed to ``keras.optimizers.Optimizer``.

  Examples:
    >>> import keras, numpy as np, optax_l1.keras
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    >>> model.compile(optimizer=optax_l1.keras.Adam(1e-2, l1=0.1), loss="mse")
    >>> x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    >>> _ = model.fit(x, x[:, :4] * 0.01, epochs=20, verbose=0)
    >>> optax_l1.keras.sparsity(model).fraction > 0.5  # most of the kernel is exactly zero
    True

  References:
    Yun, Lozano & Yang, `Adaptive Proximal Gradient Methods for Structured Neural Networks
    <https://proceedings.neurips.cc/paper/2021/hash/cc3f5463bc4d26bc38eadc8bcffbc654-Abstract.html>`_,
    NeurIPS 2021

    Kingma & Ba, `Adam: A Method for Stochastic Optimization
    <https://arxiv.org/abs/1412.6980>`_, 2014
  """

  def __init__(
    self,
    learning_rate: Any = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    amsgrad: bool = False,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    use_ema: bool = False,
    ema_momentum: float = 0.99,
    ema_overwrite_frequency: int | None = None,
    loss_scale_factor: float | None = None,
    gradient_accumulation_steps: int | None = None,
    name: str | None = None,
    *,
    l1: float | None = None,
    l2: float | None = None,
    group_l1: float | None = None,
    target_sparsity: Any = None,
    penalize: Predicate | None = None,
    **kwargs: Any,
  ) -> None:
    super().__init__(
      learning_rate,
      _adam_preconditioner(beta_1, beta_2, epsilon, amsgrad),
      l1=l1,
      l2=l2,
      group_l1=group_l1,
      target_sparsity=target_sparsity,
      penalize=penalize,
      weight_decay=weight_decay,
      clipnorm=clipnorm,
      clipvalue=clipvalue,
      global_clipnorm=global_clipnorm,
      use_ema=use_ema,
      ema_momentum=ema_momentum,
      ema_overwrite_frequency=ema_overwrite_frequency,
      loss_scale_factor=loss_scale_factor,
      gradient_accumulation_steps=gradient_accumulation_steps,
      name=name,
      **kwargs,
    )
    self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

  def get_config(self) -> dict[str, Any]:
    return {
      **super().get_config(),
      "beta_1": self.beta_1,
      "beta_2": self.beta_2,
      "epsilon": self.epsilon,
      "amsgrad": self.amsgrad,
    }


@_documented
class AdamW(Adam):
  r"""AdamW with the L1 prox in Adam's metric and ``keras.optimizers.AdamW``'s arguments.

  .. math::

    w \leftarrow \frac{\operatorname{soft}(w - \eta_t(\hat m / d + \mu w),\ \eta_t\lambda_1/d)}
      {1 + \eta_t\lambda_2/d},

  :class:`Adam` with Keras' decoupled weight decay :math:`\mu` (default 0.004), which Keras
  applies before the step to every variable not excluded by ``exclude_from_weight_decay``;
  on the penalised variables this is :func:`optax_l1.adamw`. With no penalty the steps are
  ``keras.optimizers.AdamW``'s.

  Args:
    learning_rate: :math:`\eta_t`: a float, a ``keras.optimizers.schedules`` schedule or a
      callable of no argument, as in Keras.
    weight_decay: the decoupled weight decay :math:`\mu \ge 0` (a number, not ``None``).
    beta_1: the decay :math:`\beta_1` of the first moment.
    beta_2: the decay :math:`\beta_2` of the second moment.
    epsilon: Keras' :math:`\epsilon` ("epsilon hat").
    amsgrad: must be ``False``.
    clipnorm: as in Keras.
    clipvalue: as in Keras.
    global_clipnorm: as in Keras.
    use_ema: as in Keras, but with a penalty it raises: an average of sparse weights is not
      sparse.
    ema_momentum: as in Keras.
    ema_overwrite_frequency: as in Keras.
    loss_scale_factor: as in Keras.
    gradient_accumulation_steps: as in Keras.
    name: as in Keras.
    <penalty arguments>
    **kwargs: passed to ``keras.optimizers.Optimizer``.

  Examples:
    >>> import optax_l1.keras
    >>> optimizer = optax_l1.keras.AdamW(1e-3, weight_decay=1e-2, l1=1e-4)
    >>> optimizer.exclude_from_weight_decay(var_names=["bias"])

  References:
    Loshchilov & Hutter, `Decoupled Weight Decay Regularization
    <https://arxiv.org/abs/1711.05101>`_, 2019
  """

  def __init__(
    self,
    learning_rate: Any = 0.001,
    weight_decay: float = 0.004,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
    amsgrad: bool = False,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    use_ema: bool = False,
    ema_momentum: float = 0.99,
    ema_overwrite_frequency: int | None = None,
    loss_scale_factor: float | None = None,
    gradient_accumulation_steps: int | None = None,
    name: str | None = None,
    *,
    l1: float | None = None,
    l2: float | None = None,
    group_l1: float | None = None,
    target_sparsity: Any = None,
    penalize: Predicate | None = None,
    **kwargs: Any,
  ) -> None:
    if weight_decay is None:
      raise ValueError(
        "AdamW's weight_decay must be a number (default 0.004), got None: for no decay use "
        "optax_l1.keras.Adam."
      )
    _validation.check_hyperparameter(weight_decay, "weight_decay", schedule=False)
    super().__init__(
      learning_rate,
      beta_1,
      beta_2,
      epsilon,
      amsgrad,
      weight_decay=weight_decay,
      clipnorm=clipnorm,
      clipvalue=clipvalue,
      global_clipnorm=global_clipnorm,
      use_ema=use_ema,
      ema_momentum=ema_momentum,
      ema_overwrite_frequency=ema_overwrite_frequency,
      loss_scale_factor=loss_scale_factor,
      gradient_accumulation_steps=gradient_accumulation_steps,
      name=name,
      l1=l1,
      l2=l2,
      group_l1=group_l1,
      target_sparsity=target_sparsity,
      penalize=penalize,
      **kwargs,
    )


@_documented
class RMSprop(_Proximal):
  r"""RMSProp with the L1 prox in its metric and ``keras.optimizers.RMSprop``'s arguments.

  .. math::

    v \leftarrow \rho v + (1-\rho) g^2, \quad d = \sqrt{v + \epsilon}, \quad
    w \leftarrow \frac{\operatorname{soft}(w - \eta_t g / d,\ \eta_t\lambda_1/d)}
      {1 + \eta_t\lambda_2/d},

  with :math:`d = \sqrt{v - m^2 + \epsilon}` when ``centered`` (:math:`m` the mean gradient)
  and, with ``momentum``, the direction the trace of :math:`g/d` (see
  :func:`optax_l1.preconditioners.rmsprop`). With no penalty and a constant learning rate the
  steps are ``keras.optimizers.RMSprop``'s.

  Args:
    learning_rate: :math:`\eta_t`: a float, a ``keras.optimizers.schedules`` schedule or a
      callable of no argument, as in Keras.
    rho: the decay :math:`\rho` of the squared-gradient average.
    momentum: the momentum :math:`0 \le \mu < 1` (``0.0``: none).
    epsilon: :math:`\epsilon`, inside the square root as in Keras.
    centered: whether to subtract the squared mean gradient from :math:`v`.
    <keras arguments>
    <penalty arguments>
    **kwargs: passed to ``keras.optimizers.Optimizer``.

  Examples:
    >>> import optax_l1.keras
    >>> optimizer = optax_l1.keras.RMSprop(1e-3, centered=True, l1=1e-4)

  References:
    Tieleman & Hinton, `Lecture 6.5 — RMSProp
    <https://www.cs.toronto.edu/~tijmen/csc321/slides/lecture_slides_lec6.pdf>`_, 2012
  """

  def __init__(
    self,
    learning_rate: Any = 0.001,
    rho: float = 0.9,
    momentum: float = 0.0,
    epsilon: float = 1e-7,
    centered: bool = False,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    use_ema: bool = False,
    ema_momentum: float = 0.99,
    ema_overwrite_frequency: int | None = None,
    loss_scale_factor: float | None = None,
    gradient_accumulation_steps: int | None = None,
    name: str | None = None,
    *,
    l1: float | None = None,
    l2: float | None = None,
    group_l1: float | None = None,
    target_sparsity: Any = None,
    penalize: Predicate | None = None,
    **kwargs: Any,
  ) -> None:
    super().__init__(
      learning_rate,
      preconditioners.rmsprop(rho, epsilon, centered=centered, momentum=momentum or None),
      l1=l1,
      l2=l2,
      group_l1=group_l1,
      target_sparsity=target_sparsity,
      penalize=penalize,
      weight_decay=weight_decay,
      clipnorm=clipnorm,
      clipvalue=clipvalue,
      global_clipnorm=global_clipnorm,
      use_ema=use_ema,
      ema_momentum=ema_momentum,
      ema_overwrite_frequency=ema_overwrite_frequency,
      loss_scale_factor=loss_scale_factor,
      gradient_accumulation_steps=gradient_accumulation_steps,
      name=name,
      **kwargs,
    )
    self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

  def get_config(self) -> dict[str, Any]:
    return {
      **super().get_config(),
      "rho": self.rho,
      "momentum": self.momentum,
      "epsilon": self.epsilon,
      "centered": self.centered,
    }


@_documented
class Adagrad(_Proximal):
  r"""Proximal Adagrad with ``keras.optimizers.Adagrad``'s arguments.

  .. math::

    n \leftarrow n + g^2, \quad \tilde\eta = \eta_t / \sqrt{n + \epsilon}, \quad
    w \leftarrow \frac{\operatorname{soft}(w - \tilde\eta g,\ \tilde\eta\lambda_1)}
      {1 + \tilde\eta\lambda_2},

  :func:`optax_l1.adagrad` (TensorFlow's ``ProximalAdagradOptimizer`` with :math:`\epsilon`);
  with no penalty the steps are ``keras.optimizers.Adagrad``'s.

  Args:
    learning_rate: :math:`\eta_t`: a float, a ``keras.optimizers.schedules`` schedule or a
      callable of no argument, as in Keras.
    initial_accumulator_value: the initial value of :math:`n`.
    epsilon: added to :math:`n` inside the square root.
    <keras arguments>
    <penalty arguments>
    **kwargs: passed to ``keras.optimizers.Optimizer``.

  Examples:
    >>> import optax_l1.keras
    >>> optimizer = optax_l1.keras.Adagrad(0.1, l1=1e-3)

  References:
    Duchi, Hazan & Singer, `Adaptive Subgradient Methods for Online Learning and Stochastic
    Optimization <https://jmlr.org/papers/v12/duchi11a.html>`_, 2011
  """

  def __init__(
    self,
    learning_rate: Any = 0.001,
    initial_accumulator_value: float = 0.1,
    epsilon: float = 1e-7,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    use_ema: bool = False,
    ema_momentum: float = 0.99,
    ema_overwrite_frequency: int | None = None,
    loss_scale_factor: float | None = None,
    gradient_accumulation_steps: int | None = None,
    name: str | None = None,
    *,
    l1: float | None = None,
    l2: float | None = None,
    group_l1: float | None = None,
    target_sparsity: Any = None,
    penalize: Predicate | None = None,
    **kwargs: Any,
  ) -> None:
    super().__init__(
      learning_rate,
      preconditioners.adagrad(initial_accumulator_value, epsilon),
      l1=l1,
      l2=l2,
      group_l1=group_l1,
      target_sparsity=target_sparsity,
      penalize=penalize,
      weight_decay=weight_decay,
      clipnorm=clipnorm,
      clipvalue=clipvalue,
      global_clipnorm=global_clipnorm,
      use_ema=use_ema,
      ema_momentum=ema_momentum,
      ema_overwrite_frequency=ema_overwrite_frequency,
      loss_scale_factor=loss_scale_factor,
      gradient_accumulation_steps=gradient_accumulation_steps,
      name=name,
      **kwargs,
    )
    self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

  def get_config(self) -> dict[str, Any]:
    return {
      **super().get_config(),
      "initial_accumulator_value": self.initial_accumulator_value,
      "epsilon": self.epsilon,
    }


_FIXED_LEARNING_RATE = (
  "This OptaxOptimizer was given a transformation, whose learning rate is inside it: Keras "
  "cannot read or set it (callbacks such as ReduceLROnPlateau, LearningRateScheduler and "
  "TensorBoard's learning-rate log need it). Pass a function of the learning rate instead, "
  "`OptaxOptimizer(lambda lr: optax.adam(lr), learning_rate=1e-3)`."
)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class OptaxOptimizer(_OptaxState):
  r"""Any optax transformation as a Keras optimizer, for ``model.fit``.

  Each step is one ``transformation.update(grads, state, params)`` over all the trainable
  variables (params is the list of their values, in ``model.trainable_variables`` order),
  then ``optax.apply_updates``; the optax state is kept in Keras optimizer variables.

  Two forms:

  - ``OptaxOptimizer(optax.adamw(1e-3))``: the learning rate is inside the transformation.
    Keras cannot see it: reading or setting ``optimizer.learning_rate`` raises (so do the
    callbacks that use it), and ``weight_decay`` is refused (put ``optax.add_decayed_weights``
    in the chain). It cannot be saved in a ``.keras`` file either: ``model.save`` raises
    (save the weights with ``model.save_weights``, and compile a new optimizer after loading).
  - ``OptaxOptimizer(make, learning_rate=1e-3)``, with ``make(learning_rate)`` returning the
    transformation: Keras owns the learning rate (a float, a ``keras.optimizers.schedules``
    schedule or a callable), ``make`` is called with its current value at each step (a
    traced scalar), and callbacks that read or set it work. ``model.save`` stores ``make`` as
    Keras stores a custom function: register it with
    ``keras.saving.register_keras_serializable`` for ``load_model`` to find it.

  Args:
    transformation: an ``optax.GradientTransformation``, or with ``learning_rate`` a function
      of the learning rate returning one.
    learning_rate: ``None`` (the learning rate is inside ``transformation``), or the learning
      rate to pass to ``transformation`` at each step.
    weight_decay: with ``learning_rate`` only: Keras' decoupled weight decay.
    clipnorm: as in Keras: the gradients are clipped before the update.
    clipvalue: as in Keras.
    global_clipnorm: as in Keras.
    use_ema: as in Keras.
    ema_momentum: as in Keras.
    ema_overwrite_frequency: as in Keras.
    loss_scale_factor: as in Keras.
    gradient_accumulation_steps: as in Keras.
    name: as in Keras.
    **kwargs: passed to ``keras.optimizers.Optimizer``.

  Raises:
    TypeError: if ``transformation`` is not a transformation (or a function, with
      ``learning_rate``).

  Examples:
    >>> import keras, numpy as np, optax, optax_l1.keras
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    >>> optimizer = optax_l1.keras.OptaxOptimizer(
    ...     lambda lr: optax.chain(optax.clip_by_global_norm(1.0), optax.lion(lr)),
    ...     learning_rate=1e-3)
    >>> model.compile(optimizer=optimizer, loss="mse")
    >>> x = np.ones((16, 8), "float32")
    >>> _ = model.fit(x, x[:, :4], epochs=2, verbose=0)
    >>> int(optimizer.iterations)
    2
  """

  def __init__(
    self,
    transformation: Any,
    learning_rate: Any = None,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    global_clipnorm: float | None = None,
    use_ema: bool = False,
    ema_momentum: float = 0.99,
    ema_overwrite_frequency: int | None = None,
    loss_scale_factor: float | None = None,
    gradient_accumulation_steps: int | None = None,
    name: str | None = None,
    **kwargs: Any,
  ) -> None:
    fixed = learning_rate is None
    is_transformation = isinstance(transformation, optax.GradientTransformation)
    if fixed and not is_transformation:
      raise TypeError(
        "transformation must be an optax.GradientTransformation (such as optax.adam(1e-3)), "
        "or a function of the learning rate returning one, with learning_rate=; got "
        f"{transformation!r}."
      )
    if not fixed and (is_transformation or not callable(transformation)):
      raise TypeError(
        "with learning_rate, transformation must be a function of the learning rate returning "
        "an optax transformation, e.g. `lambda lr: optax.adam(lr)`, not a transformation "
        f"(whose learning rate is fixed inside it); got {transformation!r}."
      )
    if fixed and weight_decay is not None:
      raise ValueError(
        "weight_decay needs the learning rate, which is inside this transformation: add "
        "optax.add_decayed_weights(...) to the transformation instead, or pass a function "
        "of the learning rate with learning_rate=."
      )
    self._lock = False  # as Keras' __init__ does first, so that attributes can be set
    self._fixed: optax.GradientTransformation | None = transformation if fixed else None
    self._make: Callable[[Any], Any] | None = None if fixed else transformation
    self._stepping = False
    super().__init__(
      learning_rate=(lambda: 0.0) if fixed else learning_rate,  # unused when fixed
      weight_decay=weight_decay,
      clipnorm=clipnorm,
      clipvalue=clipvalue,
      global_clipnorm=global_clipnorm,
      use_ema=use_ema,
      ema_momentum=ema_momentum,
      ema_overwrite_frequency=ema_overwrite_frequency,
      loss_scale_factor=loss_scale_factor,
      gradient_accumulation_steps=gradient_accumulation_steps,
      name=name,
      **kwargs,
    )
    if self._make is not None:
      tx = self._make(self._initial_learning_rate())
      if not isinstance(tx, optax.GradientTransformation):
        raise TypeError(
          f"transformation(learning_rate) must return an optax transformation, got {tx!r}."
        )

  def _transformation(self, learning_rate: Any) -> optax.GradientTransformation:
    return self._fixed if self._make is None else self._make(learning_rate)

  def _initial_learning_rate(self) -> float:
    return 0.0 if self._make is None else super()._initial_learning_rate()

  def _backend_apply_gradients(self, grads: Any, trainable_variables: Any) -> None:
    self._stepping = True  # Keras reads the learning rate during the step
    try:
      super()._backend_apply_gradients(grads, trainable_variables)
    finally:
      self._stepping = False

  @property
  def learning_rate(self) -> Any:
    if self._make is None and not self._stepping:
      raise AttributeError(_FIXED_LEARNING_RATE)
    return self._get_current_learning_rate()

  @learning_rate.setter
  def learning_rate(self, value: Any) -> None:
    if self._make is None:
      raise AttributeError(_FIXED_LEARNING_RATE)
    keras.optimizers.Optimizer.learning_rate.fset(self, value)

  def get_config(self) -> dict[str, Any]:
    if self._make is None:
      raise NotImplementedError(
        "An OptaxOptimizer given a transformation cannot be saved in a .keras file (an optax "
        "transformation is Python functions): save the weights with "
        "model.save_weights('m.weights.h5'), or pass a registered function of the learning "
        "rate, `OptaxOptimizer(make, learning_rate=...)` with make decorated by "
        "@keras.saving.register_keras_serializable()."
      )
    return {
      **super().get_config(),
      "transformation": keras.saving.serialize_keras_object(self._make),
    }

  @classmethod
  def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> Any:
    config = dict(config)
    config["transformation"] = keras.saving.deserialize_keras_object(
      config["transformation"], custom_objects=custom_objects
    )
    return super().from_config(config, custom_objects=custom_objects)


def sparsity(model: Any, select: Predicate | None = None) -> optax_l1.SparsityReport:
  """Exact zeros in a Keras model's (or layer's) trainable variables, per variable and in total.

  :func:`optax_l1.sparsity` of ``{variable.path: value}`` over ``model.trainable_variables``
  (each variable's path, as Keras writes it, names its layer).

  Args:
    model: a ``keras.Model`` or ``keras.layers.Layer``.
    select: ``None`` for every trainable variable, or a function of (path, shape) returning a
      ``bool``, as the optimizers' ``penalize`` (e.g. ``lambda path, shape: len(shape) >= 2``
      for the kernels).

  Returns:
    An :class:`optax_l1.SparsityReport`: ``print`` it for a table, ``.fraction`` for the total.

  Examples:
    >>> import keras, optax_l1.keras
    >>> layer = keras.layers.Dense(3, kernel_initializer="zeros", bias_initializer="ones",
    ...                            name="dense")
    >>> layer.build((None, 2))
    >>> print(optax_l1.keras.sparsity(layer))
    path              shape          zeros          size   zero %
    -------------------------------------------------------------
    ['dense/bias']    (3,)               0             3    0.00%
    ['dense/kernel']  (2, 3)             6             6  100.00%
    -------------------------------------------------------------
    total                                6             9   66.67%
  """
  _check_predicate(select, "select")
  variables = [
    v for v in model.trainable_variables if select is None or _selected(select, v, "select")
  ]
  values: dict[str, Any] = {}
  for v in variables:
    path = v.path
    while path in values:  # two variables with one path (shared names): keep both
      path += "'"
    values[path] = v.value
  return optax_l1.sparsity(values)


class SparsityCallback(keras.callbacks.Callback):
  """Logs the fraction of exact zeros in the kernels at the end of every epoch of ``fit``.

  The fraction (in [0, 1]) is added to the epoch's ``logs`` under ``name``: the progress bar
  prints it, ``History`` records it (``history.history["zeros"]``), and callbacks after it
  (``CSVLogger``, ``TensorBoard``, ``EarlyStopping(monitor="zeros")``) see it.

  Args:
    select: the variables counted, a function of (path, shape) as the optimizers' ``penalize``;
      default: the kernels (variables with 2 or more dimensions).
    name: the key of the fraction in ``logs``.

  Examples:
    >>> import keras, numpy as np, optax_l1.keras
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    >>> model.compile(optimizer=optax_l1.keras.Adam(1e-2, l1=1.0), loss="mse")
    >>> x = np.ones((16, 8), "float32")
    >>> history = model.fit(x, x[:, :4], epochs=3, verbose=0,
    ...                     callbacks=[optax_l1.keras.SparsityCallback()])
    >>> len(history.history["zeros"])
    3
  """

  def __init__(self, select: Predicate | None = None, name: str = "zeros") -> None:
    super().__init__()
    _check_predicate(select, "select")
    self.select = select or _is_kernel
    self.name = name

  def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
    if logs is not None:
      logs[self.name] = sparsity(self.model, self.select).fraction


__all__ = [
  "SGD",
  "Adagrad",
  "Adam",
  "AdamW",
  "OptaxOptimizer",
  "RMSprop",
  "SparsityCallback",
  "sparsity",
]
