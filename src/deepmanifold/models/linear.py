"""Deep linear network: a product of matrices, no nonlinearity."""

from __future__ import annotations

import math

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
    classification, cf. Saxe et al. 2014). Init: LeCun normal (``std =
    1/sqrt(fan_in)``) for every layer, which keeps the signal scale independent of
    ``depth``.

    Parameters
    ----------
    input_shape : tuple (C_in, H, W)
    n_classes : int
    width : int
        Units per hidden layer.
    depth : int
        Number of hidden linear layers (>= 1); ``depth + 1`` weight matrices in all.
    """

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int, width: int = 128,
                 depth: int = 2) -> None:
        super().__init__()
        self.net = fully_connected(input_shape, n_classes, width, depth, _linear, head_bias=False)
        for layer in self.net[1:]:
            nn.init.normal_(layer.weight, std=1.0 / math.sqrt(layer.in_features))
