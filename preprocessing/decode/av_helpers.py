"""PyAV helpers the audio and video decode policies share.

- ``describe``: an exception as ``Type: message``, the text of a quarantine reason, without
  the memory address FFmpeg's and libsndfile's messages give the BytesIO they read.
- ``frame_to_float``: a decoded PyAV ``AudioFrame`` -> (channels, n) float32 samples, for
  every sample format FFmpeg's audio decoders output: packed (interleaved) formats are
  de-interleaved, unsigned 8-bit is centred (``(x - 128) / 128``), signed integer PCM is
  divided by ``2^(bits - 1)``, float formats are kept.
"""

from __future__ import annotations

import re

import numpy as np

_BYTESIO = re.compile(r"<_io\.BytesIO object at 0x[0-9a-f]+>")


def describe(exc: Exception) -> str:
    """``Type: message`` without the memory address of the BytesIO the decoders name."""
    return f"{type(exc).__name__}: " + _BYTESIO.sub("<bytes>", str(exc))


def frame_to_float(frame: object) -> np.ndarray:
    """A PyAV AudioFrame -> (channels, n) float32."""
    arr = frame.to_ndarray()  # type: ignore[attr-defined]
    fmt = frame.format  # type: ignore[attr-defined]
    channels = frame.layout.nb_channels  # type: ignore[attr-defined]
    if not fmt.is_planar:  # packed: (1, n * channels), interleaved
        arr = arr.reshape(-1, channels).T
    if arr.dtype == np.uint8:
        return ((arr.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        scale = float(2 ** (8 * arr.dtype.itemsize - 1))
        return (arr.astype(np.float64) / scale).astype(np.float32)
    return arr.astype(np.float32)
