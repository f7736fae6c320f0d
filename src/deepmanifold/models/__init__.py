"""The model zoo behind one registry: name + size knobs -> ``nn.Module``."""

from .registry import available_models, build_model, count_parameters, model_knobs
from .zoo import MLP, AllCNN, ConvMixer

__all__ = [
    "MLP",
    "AllCNN",
    "ConvMixer",
    "available_models",
    "build_model",
    "count_parameters",
    "model_knobs",
]
