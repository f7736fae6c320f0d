"""deepmanifold: how deep networks learn, seen through what they predict.

``deepmanifold.Recorder`` records any training loop's checkpoints into a store;
:mod:`deepmanifold.geometry` is the math on probability arrays;
:mod:`deepmanifold.analysis` answers the study's questions on a store.
"""

__version__ = "0.1.0"

__all__ = ["Recorder", "__version__"]


def __getattr__(name: str):
    # The recorder pulls in torch: imported on first use, so that `import deepmanifold`
    # (and deepmanifold.geometry on its own) stays light.
    if name == "Recorder":
        from .training import Recorder

        return Recorder
    raise AttributeError(f"module 'deepmanifold' has no attribute {name!r}")
