"""The networks of mean-field signal-propagation theory: deep fully connected and convolutional stacks, no normalisation."""

from __future__ import annotations

import math

import torch
from torch import nn

from ._common import SequentialClassifier, check_positive_ints, check_positive_number, fully_connected

__all__ = ["MeanFieldCNN", "MeanFieldMLP", "delta_orthogonal_"]


class Erf(nn.Module):
    """``erf(x)`` as a module (the activation with closed-form Gaussian kernels)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.erf(x)


#: Activation functions of the mean-field networks, by name.
MEAN_FIELD_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "erf": Erf}


def _check_mean_field(activation, sigma_w2, sigma_b2) -> type[nn.Module]:
    """The activation's module class, after the checks both mean-field networks make."""
    if activation not in MEAN_FIELD_ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(MEAN_FIELD_ACTIVATIONS)}, got {activation!r}")
    check_positive_number("sigma_w2", sigma_w2)
    if isinstance(sigma_b2, bool) or not isinstance(sigma_b2, (int, float)) or not 0 <= sigma_b2 < math.inf:
        raise ValueError(f"sigma_b2 must be a number >= 0, got {sigma_b2!r}")
    return MEAN_FIELD_ACTIVATIONS[activation]


def _init_bias(bias: torch.Tensor, sigma_b2: float) -> None:
    with torch.no_grad():
        bias.normal_(0.0, math.sqrt(sigma_b2)) if sigma_b2 > 0 else bias.zero_()


class MeanFieldMLP(SequentialClassifier):
    """Deep fully connected network initialised as in mean-field theory.

    ``flatten -> [Linear(width) -> activation] * depth -> Linear(n_classes)``, without
    normalisation, every weight drawn from ``N(0, σ_w²/fan_in)`` and every bias from
    ``N(0, σ_b²)``: the network whose signal propagation ``deepmanifold.theory``
    describes (:func:`~deepmanifold.theory.depth_scales`; Poole et al. 2016, Schoenholz et
    al. 2017). Near the order/chaos boundary (``critical_sigma_w2``) correlations between
    inputs survive through many layers, and such networks train at depths where others
    do not.

    Parameters
    ----------
    input_shape : tuple (C_in, H, W)
    n_classes : int
    width : int
        Units per hidden layer.
    depth : int
        Number of hidden layers (>= 1).
    activation : {"tanh", "relu", "erf"}
    sigma_w2, sigma_b2 : float
        Weight and bias variances (``σ_w² > 0``, ``σ_b² >= 0``).
    """

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int, width: int = 256, depth: int = 10,
                 activation: str = "tanh", sigma_w2: float = 1.76, sigma_b2: float = 0.05) -> None:
        super().__init__()
        act = _check_mean_field(activation, sigma_w2, sigma_b2)
        self.net = fully_connected(input_shape, n_classes, width, depth,
                                   lambda fan_in, w: [nn.Linear(fan_in, w), act()], head_bias=True)
        with torch.no_grad():
            for layer in self.net:
                if isinstance(layer, nn.Linear):
                    layer.weight.normal_(0.0, math.sqrt(sigma_w2 / layer.in_features))
                    _init_bias(layer.bias, sigma_b2)


#: Initialisations of :class:`MeanFieldCNN`'s convolutions.
CNN_INITS = ("gaussian", "delta_orthogonal")


def delta_orthogonal_(weight: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Fill a convolution's ``(c_out, c_in, k, k)`` weight with the delta-orthogonal kernel.

    Every tap is zero but the centre one, which is ``gain`` times a random orthogonal
    ``(c_out, c_in)`` matrix (orthonormal rows or columns, whichever are fewer; ``c_out >=
    c_in`` keeps every input direction): at initialisation the convolution mixes channels
    orthogonally at each pixel, so signals keep their norm through any depth (Xiao,
    Bahri, Sohl-Dickstein, Schoenholz & Pennington, ICML 2018).
    """
    c_out, c_in, kh, kw = weight.shape
    with torch.no_grad():
        weight.zero_()
        q, r = torch.linalg.qr(torch.randn(max(c_out, c_in), min(c_out, c_in)))
        q = q * torch.sign(torch.diagonal(r))  # Haar-distributed
        weight[:, :, kh // 2, kw // 2] = gain * (q if c_out >= c_in else q.T)
    return weight


class MeanFieldCNN(nn.Module):
    """Deep convolutional network initialised as in mean-field theory, optionally delta-orthogonal.

    ``[Conv3x3(width, stride 1, same padding) -> activation] * depth -> global average
    pooling -> Linear(n_classes)``, no normalisation; biases ``N(0, σ_b²)``; convolution
    weights either ``N(0, σ_w²/fan_in)`` (``"gaussian"``) or delta-orthogonal with gain
    ``σ_w`` (:func:`delta_orthogonal_`), which Xiao et al. (2018) used to train
    10,000-layer tanh CNNs at the critical ``σ_w²``.

    Parameters
    ----------
    input_shape : tuple (C_in, H, W)
    n_classes : int
    width : int
        Channels of every convolution.
    depth : int
        Number of convolutions (>= 1).
    activation : {"tanh", "relu", "erf"}
    sigma_w2, sigma_b2 : float
    init : {"gaussian", "delta_orthogonal"}
    """

    def __init__(self, input_shape: tuple[int, int, int], n_classes: int, width: int = 32, depth: int = 10,
                 activation: str = "tanh", sigma_w2: float = 1.76, sigma_b2: float = 0.05,
                 init: str = "delta_orthogonal") -> None:
        super().__init__()
        check_positive_ints(width=width, depth=depth)
        act = _check_mean_field(activation, sigma_w2, sigma_b2)
        if init not in CNN_INITS:
            raise ValueError(f"init must be one of {CNN_INITS}, got {init!r}")
        c_in = input_shape[0]
        layers: list[nn.Module] = []
        for i in range(depth):
            conv = nn.Conv2d(c_in if i == 0 else width, width, 3, padding=1)
            if init == "delta_orthogonal":
                delta_orthogonal_(conv.weight, math.sqrt(sigma_w2))
            else:
                with torch.no_grad():
                    conv.weight.normal_(0.0, math.sqrt(sigma_w2 / (conv.in_channels * 9)))
            _init_bias(conv.bias, sigma_b2)
            layers += [conv, act()]
        self.net = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> logits (B, n_classes)."""
        return self.head(self.net(x))
