"""Input adapters: turn one modality's raw tensor into a (B, M, C) array of input positions."""

from perceiver.adapters.base import InputAdapter
from perceiver.adapters.image import ImageInputAdapter

__all__ = ["ImageInputAdapter", "InputAdapter"]
