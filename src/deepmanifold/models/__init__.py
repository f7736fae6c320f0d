"""The model zoo behind one registry: name + size knobs -> ``nn.Module``."""

from .linear import DeepLinear
from .mean_field import MeanFieldCNN, MeanFieldMLP
from .registry import (
    available_models,
    build_model,
    count_parameters,
    describe_models,
    model_knobs,
)
from .vit import ViT
from .wrn import WideResNet
from .zoo import MLP, AllCNN, ConvMixer

__all__ = [
    "MLP",
    "AllCNN",
    "ConvMixer",
    "WideResNet",
    "ViT",
    "DeepLinear",
    "MeanFieldMLP",
    "MeanFieldCNN",
    "available_models",
    "build_model",
    "count_parameters",
    "describe_models",
    "model_knobs",
]
