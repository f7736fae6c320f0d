"""Wide residual network WRN-d-k (Zagoruyko & Komodakis 2016), any input size."""

from __future__ import annotations

import torch
from torch import nn

from ._common import check_positive_ints

__all__ = ["WideResNet"]


def _stride(h: int, w: int) -> tuple[int, int]:
    """Stride 2 along each spatial axis that is still >= 2 pixels, else 1."""
    return (2 if h >= 2 else 1, 2 if w >= 2 else 1)


def _down(size: int, stride: int) -> int:
    # 3x3 conv, padding 1 (and the 1x1 shortcut, padding 0): ceil(size / stride).
    return (size - 1) // stride + 1


class _PreActBlock(nn.Module):
    """Pre-activation basic block: ``BN-ReLU-conv3x3(stride)-BN-ReLU-conv3x3`` + shortcut.

    The shortcut is the identity when shape is preserved, otherwise a 1x1 conv (no
    bias, same stride) applied to the *activated* input ``ReLU(BN(x))``, as in the
    authors' reference implementation.
    """

    def __init__(self, c_in: int, c_out: int, stride: tuple[int, int]) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module | None = None
        if c_in != c_out or stride != (1, 1):
            self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.relu(self.bn1(x))
        y = self.conv2(self.relu(self.bn2(self.conv1(o))))
        return y + (x if self.shortcut is None else self.shortcut(o))


class WideResNet(nn.Module):
    """Wide ResNet WRN-``depth``-``width`` (Zagoruyko & Komodakis 2016).

    ``conv3x3(C_in -> base)``, then three groups of ``n = (depth - 4) / 6``
    pre-activation basic blocks (see :class:`_PreActBlock`) with
    ``base*width, 2*base*width, 4*base*width`` channels; the first block of each
    group has stride 1, 2, 2 respectively, then ``BN -> ReLU -> global average
    pooling -> Linear(n_classes)``. Convolutions have no bias. ``depth = 6n + 4``
    follows the paper's naming (WRN-16-4: ``n = 2`` blocks per group, 4x wider).

    Strides are per spatial axis: an axis already smaller than 2 is not strided, so
    tiny inputs (1x1, 1x200 vectors) work. No dropout. Init: Kaiming-normal
    (fan_out) convolutions, BN ``gamma=1, beta=0``, zero head bias.

    Parameters
    ----------
    input_shape : tuple (C_in, H, W)
    n_classes : int
    width : int
        Widening factor ``k`` (``width=1``: the thin pre-activation ResNet).
    depth : int
        ``6n + 4`` with ``n >= 1`` (10, 16, 22, 28, ...). WRN-10-4: ``depth=10,
        width=4``; WRN-16-4: ``depth=16, width=4``.
    base : int
        Channels of the stem conv and unit of the group widths (16 in the paper).
    """

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int, width: int = 4,
                 depth: int = 10, base: int = 16) -> None:
        super().__init__()
        check_positive_ints(width=width, depth=depth, base=base)
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(f"depth must be 6n+4 with n >= 1 (10, 16, 22, ...), got {depth!r}")
        n = (depth - 4) // 6
        c, h, w = input_shape
        self.stem = nn.Conv2d(c, base, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        c_in = base
        for group in range(3):
            c_out = base * width * 2**group
            for i in range(n):
                stride = _stride(h, w) if (group > 0 and i == 0) else (1, 1)
                blocks.append(_PreActBlock(c_in, c_out, stride))
                h, w = _down(h, stride[0]), _down(w, stride[1])
                c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(c_in, n_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> logits (B, n_classes)."""
        return self.head(self.blocks(self.stem(x)))
