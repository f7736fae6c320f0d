"""Pieces every architecture of the zoo uses: the knob checks and the plain stack."""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn


def check_positive_ints(**knobs: Any) -> None:
    """Raise ``ValueError`` naming the first knob that is not an integer >= 1 (bools are not)."""
    for name, value in knobs.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def check_positive_number(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite real number > 0 (bools are not)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a positive number, got {value!r}")


class SequentialClassifier(nn.Module):
    """A classifier whose whole map is the ``nn.Sequential`` held in ``self.net``."""

    net: nn.Sequential

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> logits (B, n_classes)."""
        return self.net(x)


def fully_connected(
    input_shape: tuple[int, int, int],
    n_classes: int,
    width: int,
    depth: int,
    hidden: Callable[[int, int], list[nn.Module]],
    head_bias: bool,
) -> nn.Sequential:
    """``flatten -> hidden(fan_in, width) * depth -> Linear(n_classes)``.

    ``hidden(fan_in, width)`` returns the layers of one hidden stage; ``width`` and
    ``depth`` are checked here, so every fully connected architecture checks them alike.
    """
    check_positive_ints(width=width, depth=depth)
    c, h, w = input_shape
    layers: list[nn.Module] = [nn.Flatten()]
    fan_in = c * h * w
    for _ in range(depth):
        layers += hidden(fan_in, width)
        fan_in = width
    layers.append(nn.Linear(fan_in, n_classes, bias=head_bias))
    return nn.Sequential(*layers)
