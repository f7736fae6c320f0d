"""Deep linear network: a product of matrices, no nonlinearity."""

from __future__ import annotations

import math
import numbers

from torch import nn

from ._common import SequentialClassifier, fully_connected

__all__ = ["DeepLinear"]


def _linear(fan_in: int, width: int) -> list[nn.Module]:
    return [nn.Linear(fan_in, width, bias=False)]


class DeepLinear(SequentialClassifier):
    """Deep linear network.

    ``flatten -> Linear(width) * depth -> Linear(n_classes)``, all without bias and
    without any nonlinearity or normalisation, so the end-to-end map is the linear
    map ``x -> W_head W_depth ... W_1 x`` (over-parameterised linear regression /
    classification, cf. Saxe et al. 2014). Init: LeCun normal scaled by
    ``init_scale`` (``std = init_scale/sqrt(fan_in)``) for every layer; ``init_scale = 1``
    keeps the signal scale independent of ``depth``, a small one (e.g. 0.01) is the
    small initialisation under which deep linear theory's closed forms hold
    (:func:`deepmanifold.theory.predict_mode_learning`).

    Parameters
    ----------
    input_shape : tuple (C_in, H, W)
    n_classes : int
    width : int
        Units per hidden layer.
    depth : int
        Number of hidden linear layers (>= 1); ``depth + 1`` weight matrices in all.
    init_scale : float, default 1
        Multiplies every layer's initial weights (> 0).
    """

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int, width: int = 128,
                 depth: int = 2, init_scale: float = 1.0) -> None:
        super().__init__()
        if isinstance(init_scale, bool) or not isinstance(init_scale, numbers.Real) \
                or not 0 < init_scale < math.inf:
            raise ValueError(f"init_scale must be a finite number > 0, got {init_scale!r}")
        self.net = fully_connected(input_shape, n_classes, width, depth, _linear, head_bias=False)
        for layer in self.net[1:]:
            nn.init.normal_(layer.weight, std=float(init_scale) / math.sqrt(layer.in_features))
