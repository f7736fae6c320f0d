"""Datasets as tensors plus labels, and probe sets (fixed evaluation samples)."""

from . import datasets, probes
from .datasets import *  # noqa: F403 -- exactly the names of datasets.__all__
from .probes import *  # noqa: F403 -- exactly the names of probes.__all__

__all__ = datasets.__all__ + probes.__all__
