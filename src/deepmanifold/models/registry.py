"""One registry: architecture name + size knobs -> ``nn.Module``."""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
from torch import nn

from .linear import DeepLinear
from .mean_field import MeanFieldCNN, MeanFieldMLP
from .vit import ViT
from .wrn import WideResNet
from .zoo import MLP, AllCNN, ConvMixer

__all__ = [
    "build_model",
    "available_models",
    "model_knobs",
    "count_parameters",
    "describe_models",
]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "mlp": MLP,
    "cnn": AllCNN,
    "convmixer": ConvMixer,
    "wrn": WideResNet,
    "vit": ViT,
    "linear": DeepLinear,
    "mf_mlp": MeanFieldMLP,
    "mf_cnn": MeanFieldCNN,
}


def available_models() -> list[str]:
    """Architecture names accepted by :func:`build_model`, sorted."""
    return sorted(_REGISTRY)


def _check_name(name: str) -> Callable[..., nn.Module]:
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown architecture {name!r}; available: {', '.join(available_models())}"
        )
    return _REGISTRY[name]


def model_knobs(name: str) -> dict[str, Any]:
    """The size knobs of architecture ``name`` and their defaults.

    Returns
    -------
    dict[str, Any]
        E.g. ``{"width": 128, "depth": 2}`` for ``"mlp"``.
    """
    cls = _check_name(name)
    params = inspect.signature(cls.__init__).parameters
    return {
        k: p.default
        for k, p in params.items()
        if k not in ("self", "input_shape", "n_classes")
    }


def build_model(
    name: str, input_shape: tuple[int, int, int], n_classes: int, **knobs: Any
) -> nn.Module:
    """Build a freshly initialised classifier.

    Parameters
    ----------
    name : str
        One of :func:`available_models`: ``"mlp"`` (:class:`MLP`), ``"cnn"``
        (:class:`AllCNN`), ``"convmixer"`` (:class:`ConvMixer`), ``"wrn"``
        (:class:`WideResNet`), ``"vit"`` (:class:`ViT`), ``"linear"``
        (:class:`DeepLinear`), ``"mf_mlp"`` (:class:`MeanFieldMLP`), ``"mf_cnn"``
        (:class:`MeanFieldCNN`).
    input_shape : tuple (C_in, H, W)
        Shape of one input.
    n_classes : int
        Number of output logits ``C``.
    **knobs
        Architecture knobs (see :func:`model_knobs`): ``width``, ``depth`` for all;
        ``kernel_size``, ``patch_size`` for ``"convmixer"``; ``base`` for ``"wrn"``
        (whose ``width`` is the widening factor k and ``depth`` must be 6n+4);
        ``heads``, ``patch_size``, ``mlp_ratio`` for ``"vit"``.

    Returns
    -------
    nn.Module
        Maps ``(B, C_in, H, W)`` float32 to logits ``(B, n_classes)``. Initialised from
        torch's global RNG: seed it (``torch.manual_seed``) for reproducibility.

    Raises
    ------
    ValueError
        Unknown architecture or knob, or an invalid knob value / input shape.
    """
    cls = _check_name(name)
    allowed = model_knobs(name)
    unknown = sorted(set(knobs) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown knob(s) {', '.join(map(repr, unknown))} for architecture {name!r}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s >= 1 for s in shape):
        raise ValueError(f"input_shape must be (C_in, H, W) positive ints, got {input_shape!r}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    return cls(shape, n_classes, **knobs)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable, by default) parameters of ``model``."""
    return int(
        sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
    )


def describe_models(input_shape: tuple[int, int, int], n_classes: int) -> list[dict[str, Any]]:
    """One row per architecture, built with its default knobs for this data shape.

    Parameters
    ----------
    input_shape : tuple (C_in, H, W)
    n_classes : int

    Returns
    -------
    list of dict
        Sorted by name; each ``{"name": str, "knobs": dict (defaults),
        "parameters": int (trainable parameter count)}``. Torch's global RNG state is
        left untouched.

    Raises
    ------
    ValueError
        Invalid ``input_shape`` or ``n_classes`` (as :func:`build_model`).
    """
    rows = []
    with torch.random.fork_rng(devices=[]):
        for name in available_models():
            model = build_model(name, input_shape, n_classes)
            rows.append(
                {"name": name, "knobs": model_knobs(name), "parameters": count_parameters(model)}
            )
    return rows
