"""Deep linear network: a product of matrices, no nonlinearity."""

from __future__ import annotations

import math

import torch
from torch import nn

from .zoo import _check_positive

__all__ = ["DeepLinear"]


class DeepLinear(nn.Module):
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

    def __init__(
        self, input_shape: tuple[int, int, int], n_classes: int, width: int = 128, depth: int = 2
    ) -> None:
        super().__init__()
        _check_positive("width", width)
        _check_positive("depth", depth)
        c, h, w = input_shape
        fan_in = c * h * w
        layers: list[nn.Module] = [nn.Flatten()]
        for _ in range(depth):
            layers.append(nn.Linear(fan_in, width, bias=False))
            fan_in = width
        layers.append(nn.Linear(fan_in, n_classes, bias=False))
        for layer in layers[1:]:
            nn.init.normal_(layer.weight, std=1.0 / math.sqrt(layer.in_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> logits (B, n_classes)."""
        return self.net(x)
