"""Which layers of a network are probed, and their representations of a set of inputs.

A layer's *representation* of ``n`` inputs is its output flattened to ``(n, N)``. By
default every ``nn.Linear`` and ``nn.Conv2d`` is a layer, taken after its activation: the
first activation function (``nn.ReLU``, ``nn.GELU``, ``nn.Tanh``, ...) that follows it
in the same ``nn.Sequential``, past normalisation and dropout modules; a layer that no
activation follows (the head, or a convolution in a pre-activation block) is taken at its
own output. That is what Cohen et al. (2020) and Shwartz-Ziv & Tishby (2017) probe: the
hidden units' values.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import torch
from torch import nn

from deepmanifold.utils import check_int

__all__ = ["class_balanced_sample", "layer_representations", "representation_layers"]

_LAYER_TYPES = (nn.Linear, nn.Conv2d)
# Modules skipped between a layer and its activation: they rescale or shift, they do not
# make the layer's hidden units.
_PASS_THROUGH = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.Dropout, nn.Identity)


def _is_activation(module: nn.Module) -> bool:
    return type(module).__module__ == nn.modules.activation.__name__ and not isinstance(
        module, (nn.MultiheadAttention, nn.Softmax, nn.LogSoftmax, nn.Softmin))


def representation_layers(model: nn.Module, layers: Iterable[str] | str | None = None) -> dict[str, nn.Module]:
    """The layers probed in ``model``: name -> the module whose output is the representation.

    Parameters
    ----------
    model : nn.Module
    layers : None, str or iterable of str
        ``None``: every ``nn.Linear`` and ``nn.Conv2d``, named as in ``model.named_modules()``
        and taken after its activation (module docstring). Otherwise the named modules'
        own outputs, in the order given.

    Returns
    -------
    dict of str to nn.Module

    Raises
    ------
    ValueError
        A name that is not a module of ``model`` (the message lists the default layers),
        an empty selection, or a model without ``nn.Linear`` / ``nn.Conv2d`` layers when
        ``layers`` is None.
    """
    named = dict(model.named_modules())
    defaults = [name for name, m in named.items() if isinstance(m, _LAYER_TYPES)]
    if layers is None:
        if not defaults:
            raise ValueError(f"{type(model).__name__} has no nn.Linear or nn.Conv2d layer to probe")
        parents = {id(child): parent for parent in named.values() if isinstance(parent, nn.Sequential)
                   for child in parent.children()}
        chosen = {}
        for name in defaults:
            module = named[name]
            parent = parents.get(id(module))
            target = module
            if parent is not None:
                siblings = list(parent.children())
                for follower in siblings[next(i for i, m in enumerate(siblings) if m is module) + 1:]:
                    if _is_activation(follower):
                        target = follower
                        break
                    if not isinstance(follower, _PASS_THROUGH):
                        break
            chosen[name] = target
        return chosen
    if isinstance(layers, str):
        layers = [layers]
    chosen = {}
    for name in layers:
        if not isinstance(name, str) or name not in named or name == "":
            raise ValueError(f"unknown layer {name!r}; the default layers of {type(model).__name__} are: "
                             f"{', '.join(map(repr, defaults)) or 'none'}")
        chosen[name] = named[name]
    if not chosen:
        raise ValueError("layers selects no layer")
    return chosen


@torch.no_grad()
def layer_representations(model: nn.Module, inputs: torch.Tensor, layers: Mapping[str, nn.Module] | None = None,
                          *, batch_size: int = 256) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every probed layer's representation of ``inputs``, and the model's outputs.

    Parameters
    ----------
    model : nn.Module
        Evaluated as it is (the caller chooses train or eval mode).
    inputs : torch.Tensor, shape (n, ...)
    layers : mapping of str to nn.Module, optional
        From :func:`representation_layers` (default: its default layers).
    batch_size : int, default 256

    Returns
    -------
    representations : dict of str to ndarray, each shape (n, N_layer), float32
        Layer outputs flattened per sample, in the order of ``layers``.
    outputs : ndarray, shape (n, C), float32
        The model's outputs (logits), e.g. for the network's own decisions.

    Raises
    ------
    ValueError
        A layer whose module does not run in the forward pass (e.g. a linear layer a
        module calls functionally), or runs more than once per pass (a shared module).
    """
    layers = representation_layers(model) if layers is None else dict(layers)
    batch_size = check_int(batch_size, "batch_size")
    captured: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    calls = dict.fromkeys(layers, 0)

    def hook_for(name):
        def hook(_module, _args, output):
            calls[name] += 1
            out = output[0] if isinstance(output, tuple) else output
            captured[name].append(out.detach().reshape(out.shape[0], -1).float().cpu())
        return hook

    handles = [module.register_forward_hook(hook_for(name)) for name, module in layers.items()]
    outputs = []
    try:
        for start in range(0, inputs.shape[0], batch_size):
            before = dict(calls)
            outputs.append(model(inputs[start:start + batch_size]).detach().float().cpu())
            for name in layers:
                fired = calls[name] - before[name]
                if fired != 1:
                    why = "does not run in the forward pass" if fired == 0 else (
                        f"runs {fired} times per forward pass (a shared module)")
                    raise ValueError(f"layer {name!r} ({type(layers[name]).__name__}) {why}; name the layers "
                                     "to probe explicitly")
    finally:
        for handle in handles:
            handle.remove()
    reps = {name: torch.cat(parts).numpy() for name, parts in captured.items()}
    return reps, torch.cat(outputs).numpy()


def class_balanced_sample(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first ``per_class`` samples of every class (all of a smaller class), ascending.

    Probe sets are fixed random draws, so their first samples of a class are a random
    sample of it, and the same at every checkpoint.
    """
    per_class = check_int(per_class, "samples_per_class")
    labels = np.asarray(labels)
    picked = [np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)
