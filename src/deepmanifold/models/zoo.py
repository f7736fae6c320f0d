"""The model zoo: small image classifiers with width/depth knobs.

Every model maps inputs of shape ``(B, C_in, H, W)`` to logits of shape
``(B, n_classes)`` and works for any input size (8x8 digits, 28x28, 32x32x3, ...).
Default knobs are tuned for the 8x8 digits dataset (fast on one CPU thread).
"""

from __future__ import annotations

import torch
from torch import nn

from ._common import SequentialClassifier, check_positive_ints, fully_connected

__all__ = ["MLP", "AllCNN", "ConvMixer"]


#: Activation functions of :class:`MLP`'s hidden layers, by name.
MLP_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


class MLP(SequentialClassifier):
    """Fully connected network with BatchNorm.

    ``flatten -> [Linear(width) -> BatchNorm1d -> activation] * depth -> Linear(n_classes)``;
    the hidden linear layers have no bias (BatchNorm's shift replaces it).

    Parameters
    ----------
    input_shape : tuple (C_in, H, W)
    n_classes : int
    width : int
        Hidden units per layer.
    depth : int
        Number of hidden layers (>= 1).
    activation : {"relu", "tanh"}
        Of the hidden layers: a saturating tanh network against the ReLU default is the
        information-plane study's comparison (Saxe et al. 2018).
    """

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int, width: int = 128,
                 depth: int = 2, activation: str = "relu") -> None:
        super().__init__()
        if activation not in MLP_ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(MLP_ACTIVATIONS)}, got {activation!r}")
        act = MLP_ACTIVATIONS[activation]
        self.net = fully_connected(
            input_shape, n_classes, width, depth,
            lambda fan_in, w: [nn.Linear(fan_in, w, bias=False), nn.BatchNorm1d(w), act()], head_bias=True
        )


def _conv_bn_relu(c_in: int, c_out: int, stride: int = 1, kernel: int = 3) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    ]


class AllCNN(SequentialClassifier):
    """Small All-CNN-like network (Springenberg et al. 2015) with BatchNorm.

    Convolutions only, no max pooling: ``depth`` stages, each a 3x3 conv followed
    by a 3x3 conv of stride 2 (stride 1 once the feature map is smaller than 4x4, so
    any input size works), with ``width * 2**stage`` channels, each conv followed by
    BatchNorm2d and ReLU; then a 1x1 conv to ``n_classes`` and global average
    pooling, giving logits.

    Parameters
    ----------
    input_shape : tuple (C_in, H, W)
    n_classes : int
    width : int
        Channels of the first stage (doubled at each following stage).
    depth : int
        Number of stages (>= 1), each 2 conv layers.
    """

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int, width: int = 32,
                 depth: int = 2) -> None:
        super().__init__()
        check_positive_ints(width=width, depth=depth)
        c, h, w = input_shape
        layers: list[nn.Module] = []
        c_in, size = c, min(h, w)
        for stage in range(depth):
            c_out = width * 2**stage
            layers += _conv_bn_relu(c_in, c_out)
            stride = 2 if size >= 4 else 1
            layers += _conv_bn_relu(c_out, c_out, stride=stride)
            size = (size + 1) // 2 if stride == 2 else size
            c_in = c_out
        layers += [
            nn.Conv2d(c_in, n_classes, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        ]
        self.net = nn.Sequential(*layers)


class _Residual(nn.Module):
    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) + x


class ConvMixer(nn.Module):
    """ConvMixer (Trockman & Kolter 2022).

    ``patch embedding (Conv k=p, stride=p) -> GELU -> BN``, then ``depth`` blocks of
    ``x + BN(GELU(depthwise conv k))`` followed by ``BN(GELU(pointwise conv))``,
    then global average pooling and a linear head.

    Parameters
    ----------
    input_shape : tuple (C_in, H, W)
    n_classes : int
    width : int
        Embedding dimension ("dim").
    depth : int
        Number of mixer blocks (>= 1).
    kernel_size : int
        Depthwise kernel size (odd recommended; "same" padding).
    patch_size : int
        Patch size and stride of the embedding; clipped to the input size.
    """

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int, width: int = 64,
                 depth: int = 4, kernel_size: int = 5, patch_size: int = 1) -> None:
        super().__init__()
        check_positive_ints(width=width, depth=depth, kernel_size=kernel_size,
                            patch_size=patch_size)
        c, h, w = input_shape
        p = min(patch_size, h, w)
        self.embed = nn.Sequential(
            nn.Conv2d(c, width, kernel_size=p, stride=p), nn.GELU(), nn.BatchNorm2d(width)
        )
        blocks: list[nn.Module] = []
        for _ in range(depth):
            blocks += [
                _Residual(
                    nn.Sequential(
                        nn.Conv2d(width, width, kernel_size, groups=width, padding="same"),
                        nn.GELU(),
                        nn.BatchNorm2d(width),
                    )
                ),
                nn.Conv2d(width, width, kernel_size=1),
                nn.GELU(),
                nn.BatchNorm2d(width),
            ]
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> logits (B, n_classes)."""
        return self.head(self.blocks(self.embed(x)))
