r"""The Neural Feature Ansatz (NFA): how closely each layer's ``W^T W`` follows a power of its AGOP.

The ansatz of Radhakrishnan et al. (Science 2024) states that after training, for
every layer with weight ``W``,

.. math::

    W^\top W \;\propto\; G_W^{\,\alpha},

where ``G_W`` is the average gradient outer product of the network with respect to
what ``W`` multiplies (:func:`deepmanifold.features.agop` with ``layer=``: the
layer's input, or the patches of a convolution) and ``α = 1/2`` (``α = 1`` is the
other power the literature reports). Since the claim is a proportionality, it is
judged by scale-free similarities of the two matrices:

.. math::

    \rho = \operatorname{corr}\big(\operatorname{vec} W^\top W,\;
                                   \operatorname{vec} G_W^{\alpha}\big),
    \qquad
    \cos = \frac{\langle W^\top W, G_W^\alpha \rangle_F}
                {\|W^\top W\|_F \, \|G_W^\alpha\|_F},

the Pearson correlation over all ``d^2`` entries (as in the paper) and the cosine
similarity. The paper's baseline is the same numbers for the network at
initialisation, whose random ``W`` bears little relation to its AGOP.

Contents
--------
:func:`nfa`
    Both similarities for each layer, for a trained model and optionally its
    initial state.
:class:`NFAResult`, :class:`LayerNFA`
    What :func:`nfa` returns.
:func:`pearson`, :func:`cosine`
    The two similarities of two matrices, NaN where undefined.
:func:`following_batchnorms`
    The BatchNorm after each layer, whose eval-mode gain :func:`nfa` folds into ``W``.

References
----------
.. [1] A. Radhakrishnan, D. Beaglehole, P. Pandit, M. Belkin, "Mechanism for feature
       learning in neural networks and backpropagation-free machine learning models",
       Science 383 (6690), 1461-1467, 2024. doi:10.1126/science.adi5639
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..utils import jsonable
from ._agop import layer_agops, matrix_power_psd, resolve_layers, weight_gram

__all__ = ["LayerNFA", "NFAResult", "cosine", "following_batchnorms", "nfa", "pearson"]


@dataclass(frozen=True)
class LayerNFA:
    """The NFA similarities of one layer.

    Attributes
    ----------
    name : str
        The layer's name in ``model.named_modules()``.
    kind : {"linear", "conv"}
        ``nn.Linear`` or ``nn.Conv2d``.
    shape : tuple of int
        ``(d, d)``, the shape of ``W^T W`` and of the AGOP.
    pearson, cosine : float
        :func:`pearson` and :func:`cosine` of ``W^T W`` and ``AGOP^alpha``; NaN where
        undefined.
    pearson_initial, cosine_initial : float or None
        The same for the initial model (its own ``W^T W`` against its own AGOP);
        ``None`` when no initial model was given.
    batchnorm : str or None
        The BatchNorm folded into ``W`` (:func:`nfa`'s ``fold_batchnorm``), by name; None
        when there was none or folding was off.
    """

    name: str
    kind: str
    shape: tuple[int, int]
    pearson: float
    cosine: float
    pearson_initial: float | None = None
    cosine_initial: float | None = None
    batchnorm: str | None = None

    def to_dict(self) -> dict:
        """Strict-JSON dict of the fields (NaN becomes ``None``, ``shape`` a list)."""
        return jsonable({"name": self.name, "kind": self.kind, "shape": self.shape,
                         "pearson": self.pearson, "cosine": self.cosine,
                         "pearson_initial": self.pearson_initial,
                         "cosine_initial": self.cosine_initial, "batchnorm": self.batchnorm})


@dataclass(frozen=True)
class NFAResult:
    """What :func:`nfa` returns.

    Attributes
    ----------
    layers : tuple of LayerNFA
        One per layer, in the order the layers were selected.
    alpha : float
        The power of the AGOP compared with ``W^T W``.
    outputs : {"logits", "probs"}
        What the AGOPs differentiate.
    n_samples : int
        The samples the AGOPs average over.
    """

    layers: tuple[LayerNFA, ...]
    alpha: float
    outputs: str
    n_samples: int

    @property
    def pearson(self) -> np.ndarray:
        """``(n_layers,)`` float64: each layer's Pearson correlation."""
        return np.array([layer.pearson for layer in self.layers], dtype=np.float64)

    @property
    def cosine(self) -> np.ndarray:
        """``(n_layers,)`` float64: each layer's cosine similarity."""
        return np.array([layer.cosine for layer in self.layers], dtype=np.float64)

    def to_dict(self) -> dict:
        """Strict-JSON dict: ``alpha``, ``outputs``, ``n_samples`` and ``layers``
        (:meth:`LayerNFA.to_dict` each)."""
        return jsonable({"alpha": self.alpha, "outputs": self.outputs, "n_samples": self.n_samples,
                         "layers": [layer.to_dict() for layer in self.layers]})


def pearson(A, B) -> float:
    r"""Pearson correlation of the entries of two arrays of the same shape.

    .. math::

        \rho = \frac{\langle a - \bar a, b - \bar b \rangle}{\|a - \bar a\| \, \|b - \bar b\|},
        \qquad a = \operatorname{vec} A, \; b = \operatorname{vec} B.

    Returns NaN, without a warning, when either array is constant (``1 x 1``
    matrices included): the correlation is then undefined.
    """
    a, b = _flat_pair(A, B)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return _normalised_inner(a - a.mean(), b - b.mean())


def cosine(A, B) -> float:
    r"""Cosine similarity ``<A, B>_F / (||A||_F ||B||_F)`` of two arrays of the same shape.

    Returns NaN, without a warning, when either array is zero.
    """
    return _normalised_inner(*_flat_pair(A, B))


def _flat_pair(A, B) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(A, dtype=np.float64)
    b = np.asarray(B, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"expected two non-empty arrays of the same shape, got {a.shape} and {b.shape}")
    return a.ravel(), b.ravel()


def _normalised_inner(a: np.ndarray, b: np.ndarray) -> float:
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    if not 0 < norm < math.inf:
        return math.nan
    return float(np.clip(a @ b / norm, -1.0, 1.0))


_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def following_batchnorms(model: nn.Module, modules: dict[str, nn.Module]) -> dict[str, str]:
    """For each layer of ``modules``, the BatchNorm applied right after it, by name.

    A BatchNorm follows a layer when both are consecutive children of one ``nn.Sequential``,
    it normalises as many features as the layer has outputs, and it keeps running
    statistics (which eval mode uses, so that it is a fixed per-unit affine map).
    """
    names = {id(m): n for n, m in model.named_modules()}
    found = {}
    for parent in model.modules():
        if not isinstance(parent, nn.Sequential):
            continue
        children = list(parent)
        for layer, after in zip(children, children[1:]):
            name = names.get(id(layer))
            if (name in modules and isinstance(after, _BATCHNORMS) and after.track_running_stats
                    and after.num_features == layer.weight.shape[0]):
                found[name] = names[id(after)]
    return found


def _folded_gram(layer: nn.Module, bn: nn.Module | None) -> np.ndarray:
    """``W^T W`` of the layer, its rows scaled by the BatchNorm's eval-mode gain
    ``γ / sqrt(running_var + eps)`` when one follows it."""
    if bn is None:
        return weight_gram(layer)
    gain = (bn.weight.detach() if bn.affine else torch.ones_like(bn.running_var)).to("cpu", torch.float64)
    scale = gain / torch.sqrt(bn.running_var.detach().to("cpu", torch.float64) + bn.eps)
    W = layer.weight.detach().to("cpu", torch.float64).reshape(layer.weight.shape[0], -1) * scale[:, None]
    W = W.numpy()
    return W.T @ W


def _similarities(modules: dict[str, nn.Module], agops: dict[str, np.ndarray], alpha: float,
                  folded: dict[str, nn.Module]) -> dict[str, tuple[float, float]]:
    """``{name: (pearson, cosine)}`` of ``W^T W`` (BatchNorm folded where given) against
    ``AGOP^alpha`` for each layer."""
    out = {}
    for name, module in modules.items():
        gram = _folded_gram(module, folded.get(name))
        target = matrix_power_psd(agops[name], alpha)
        out[name] = (pearson(gram, target), cosine(gram, target))
    return out


def nfa(model: nn.Module, X, *, alpha: float = 0.5, initial: nn.Module | None = None, layers=None,
        outputs: str = "logits", batch_size: int = 256, fold_batchnorm: bool = True,
        agops: dict | None = None) -> NFAResult:
    r"""How closely each layer's ``W^T W`` follows ``AGOP^alpha`` (the Neural Feature Ansatz).

    For each selected layer, the Pearson correlation :math:`\rho` of the entries of
    ``W^T W`` (:func:`~deepmanifold.features.weight_gram`) and
    ``G_W^alpha`` (:func:`~deepmanifold.features.layer_agops`, then
    :func:`~deepmanifold.features.matrix_power_psd`), and their cosine
    similarity (module docstring). With ``initial``, the same two numbers for the
    initial model, on the same samples.

    Parameters
    ----------
    model : nn.Module
        The trained network, in eval mode (see :mod:`deepmanifold.features._agop`).
    X : torch.Tensor or array_like, shape (n, ...)
        Samples the AGOPs average over (``n >= 1``, finite).
    alpha : float
        The power of the AGOP, ``> 0``; 1/2 by default.
    initial : nn.Module, optional
        A model of the same architecture, e.g. a copy of ``model`` saved before
        training, in eval mode; its layers are found by the same names.
    layers : None, str, nn.Module or iterable of them
        As :func:`~deepmanifold.features.layer_agops`: by default every
        ``nn.Linear`` and ``nn.Conv2d`` the forward pass calls.
    outputs : {"logits", "probs"}
    batch_size : int
    fold_batchnorm : bool, default True
        Compare the effective weight ``diag(γ / sqrt(running_var + eps)) W`` of a layer
        followed by a BatchNorm (:func:`following_batchnorms`) instead of ``W``: in eval
        mode the two compute the same function from the layer's input, hence have the same
        AGOP, and only the effective weight's rows carry the scale the network uses.
    agops : dict, optional
        The layers' AGOPs of ``model`` on ``X`` when the caller already has them
        (:func:`~deepmanifold.features.layer_agops`'s result, e.g. with ``include_input``);
        ``layers``, ``outputs`` and ``batch_size`` then apply to ``initial`` only.

    Returns
    -------
    NFAResult

    Raises
    ------
    ValueError
        ``alpha`` not a finite number ``> 0``; ``initial`` lacking a selected layer
        or holding it with another weight shape; and everything
        :func:`~deepmanifold.features.layer_agops` raises.

    Notes
    -----
    A layer whose ``W^T W`` or ``AGOP^alpha`` is constant (a ``1 x 1`` matrix, a zero
    weight, a layer the outputs do not depend on) gets NaN for the Pearson
    correlation, and a zero matrix NaN for the cosine, with no warning.

    A BatchNorm right after a layer makes the network invariant to the norm of each
    row of ``W``: ``W^T W`` then carries row scales that training leaves free to
    drift (SGD with momentum does, on the digits MLP: the first layer's Pearson
    correlation of the raw ``W`` falls from 0.79 at initialisation to 0.37 for one
    seed), while the effective weight follows the ansatz closely (0.95-0.97 for every
    seed); hence ``fold_batchnorm=True``. Cost: one
    :func:`~deepmanifold.features.layer_agops` per model and one ``d x d``
    ``eigh`` per layer.
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)) \
            or not math.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a finite number > 0, got {alpha!r}")
    if agops is None:
        agops = layer_agops(model, X, layers=layers, outputs=outputs, batch_size=batch_size)
    agops = {name: G for name, G in agops.items() if name is not None}
    modules = resolve_layers(model, list(agops))
    bn_names = following_batchnorms(model, modules) if fold_batchnorm else {}
    named = dict(model.named_modules())
    current = _similarities(modules, agops, alpha, {k: named[v] for k, v in bn_names.items()})
    before = None
    if initial is not None:
        _check_initial(modules, initial)
        initial_modules = resolve_layers(initial, list(agops))
        initial_named = dict(initial.named_modules())
        initial_bns = following_batchnorms(initial, initial_modules) if fold_batchnorm else {}
        before = _similarities(initial_modules, layer_agops(
            initial, X, layers=list(agops), outputs=outputs, batch_size=batch_size), alpha,
            {k: initial_named[v] for k, v in initial_bns.items()})
    results = tuple(
        LayerNFA(
            name=name,
            kind="conv" if isinstance(module, nn.Conv2d) else "linear",
            shape=agops[name].shape,
            pearson=current[name][0],
            cosine=current[name][1],
            pearson_initial=None if before is None else before[name][0],
            cosine_initial=None if before is None else before[name][1],
            batchnorm=bn_names.get(name),
        )
        for name, module in modules.items()
    )
    return NFAResult(layers=results, alpha=float(alpha), outputs=outputs, n_samples=len(X))


def _check_initial(modules: dict[str, nn.Module], initial: nn.Module) -> None:
    named = dict(initial.named_modules())
    for name, module in modules.items():
        other = named.get(name)
        if type(other) is not type(module) or other.weight.shape != module.weight.shape:
            found = "no such module" if other is None else f"a {type(other).__name__}"
            if other is not None and hasattr(other, "weight"):
                found += f" with weight {tuple(other.weight.shape)}"
            raise ValueError(
                f"initial must have the architecture of model: layer {name!r} is a "
                f"{type(module).__name__} with weight {tuple(module.weight.shape)} in model, "
                f"{found} in initial"
            )
