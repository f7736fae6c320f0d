"""The study's questions on top of geometry and the store."""

from .embedding import build_picture, usable_runs
from .picture import Picture, RunTrace

__all__ = ["Picture", "RunTrace", "build_picture", "usable_runs"]
