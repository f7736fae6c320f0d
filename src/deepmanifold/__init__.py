"""deepmanifold: how deep networks learn, seen through what they predict."""

__version__ = "0.1.0"
