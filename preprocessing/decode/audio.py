"""The audio decode policy, shared by the Ray Data job, the tests and anyone re-deriving a row.

Policy:

1. Decode the whole file. WAV and FLAC (by extension, or by their ``RIFF``/``fLaC`` magic)
   go to soundfile (libsndfile); MP3 and anything soundfile cannot read go to PyAV (FFmpeg),
   which is also the fallback when soundfile fails. A file both decoders refuse is rejected
   with both reasons. Samples become float32 in [-1, 1] (integer PCM divided by 2^(bits-1)).
2. Reject what is not a whole clip: an empty file, a file with no audio stream or no samples,
   a truncated WAV or FLAC: fewer frames decoded than the header declares (the RIFF
   ``data`` chunk size, the FLAC STREAMINFO total) -- libsndfile silently returns the frames
   that are there -- and, before decoding, a truncated MP3 or Matroska/WebM file as read
   from its own structure by ``preprocessing.decode.truncation.container_truncation`` (a
   last MPEG audio frame cut short, fewer frames or bytes than a Xing/Info/VBRI header
   declares, a Segment or element running past the end): FFmpeg would return the frames
   that are there. PyAV audio frames become float32 with
   ``preprocessing.decode.av_helpers.frame_to_float``.
3. Downmix to mono by averaging the channels (a dual-mono file gives back its channel).
4. Resample to ``sample_rate`` (default 48 kHz) with ``preprocessing.decode.resample``
   (band-limited polyphase windowed sinc, ``scipy.signal.resample_poly``; output length
   ``ceil(n * sr_out / sr_in)``).
5. Cut a window of ``window_samples`` (default 61,440 = 1.28 s at 48 kHz) at the output rate:
   a longer clip keeps its centre (``crop="center"``: the window starts at
   ``(length - window) // 2``) or its beginning (``crop="start"``); a shorter clip is kept
   whole and zero-padded at the end.

The result is a (window_samples,) float32 array, no gain normalisation.
"""

from __future__ import annotations

import io
from pathlib import PurePath

import numpy as np

from preprocessing.decode.av_helpers import describe, frame_to_float
from preprocessing.decode.resample import output_length, resample
from preprocessing.decode.truncation import container_truncation
from preprocessing.engine.records import DecodeError

SUPPORTED_EXTENSIONS = (".wav", ".flac", ".mp3")
SOUNDFILE_EXTENSIONS = (".wav", ".flac")


class AudioDecodeError(DecodeError):
    """An audio file that cannot become a row; ``stage`` names where it failed."""


def _declared_frames(data: bytes) -> tuple[int, int] | None:
    """(frames the header declares, frame size in bytes or 0) for WAV/FLAC, else None."""
    if data[:4] == b"fLaC" and len(data) >= 26 and data[4] & 0x7F == 0:  # STREAMINFO first
        total = int.from_bytes(data[18:26], "big") & ((1 << 36) - 1)
        return (total, 0) if total else None  # 0 means "unknown"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        pos, block_align = 12, 0
        while pos + 8 <= len(data):
            chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
            if chunk == b"fmt " and pos + 22 <= len(data):
                block_align = int.from_bytes(data[pos + 20 : pos + 22], "little")
            if chunk == b"data":
                if size in (0, 0xFFFFFFFF) or not block_align:  # streamed: size unknown
                    return None
                return size // block_align, block_align
            pos += 8 + size + (size & 1)
    return None


def _read_soundfile(data: bytes) -> tuple[np.ndarray, int]:
    import soundfile as sf

    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return samples.T, int(rate)  # (channels, n)


def _read_pyav(data: bytes) -> tuple[np.ndarray, int]:
    import av

    with av.open(io.BytesIO(data), mode="r") as container:
        if not container.streams.audio:
            raise AudioDecodeError("decode", "no audio stream in the file")
        stream = container.streams.audio[0]
        chunks = [frame_to_float(f) for f in container.decode(stream)]
        rate = int(stream.codec_context.sample_rate or 0)
    if not chunks:
        raise AudioDecodeError("decode", "no audio samples decoded")
    if len({c.shape[0] for c in chunks}) != 1:
        raise AudioDecodeError("decode", "channel count changes within the file")
    return np.concatenate(chunks, axis=1), rate


def load_audio(data: bytes, name: str = "") -> tuple[np.ndarray, int]:
    """Encoded bytes -> ((channels, n) float32 samples, sample rate), steps 1-2 of the policy.

    ``name`` (a file name) picks the first decoder by extension.
    """
    if not data:
        raise AudioDecodeError("decode", "empty file (0 bytes)")
    truncated = container_truncation(data)  # MP3, Matroska/WebM; None for other formats
    if truncated is not None:
        raise AudioDecodeError("decode", truncated)
    suffix = PurePath(name).suffix.lower()
    soundfile_first = suffix in SOUNDFILE_EXTENSIONS or data[:4] in (b"RIFF", b"fLaC")
    errors: list[str] = []
    samples: np.ndarray | None = None
    rate = 0
    if soundfile_first:
        try:
            samples, rate = _read_soundfile(data)
        except Exception as exc:  # libsndfile raises LibsndfileError/RuntimeError/...
            errors.append(f"soundfile: {describe(exc)}")
    if samples is None:
        try:
            samples, rate = _read_pyav(data)
        except AudioDecodeError:
            if errors:
                raise AudioDecodeError("decode", "; ".join(errors)) from None
            raise
        except Exception as exc:  # av.error.FFmpegError subclasses, ValueError, ...
            errors.append(f"pyav: {describe(exc)}")
            raise AudioDecodeError("decode", "not decodable audio: " + "; ".join(errors)) from exc
    if rate <= 0:
        raise AudioDecodeError("decode", f"invalid sample rate {rate}")
    if samples.shape[1] == 0:
        raise AudioDecodeError("decode", "no audio samples decoded")
    declared = _declared_frames(data)
    if declared is not None and samples.shape[1] < declared[0]:
        raise AudioDecodeError(
            "decode",
            f"truncated file: header declares {declared[0]} frames, {samples.shape[1]} decoded",
        )
    return samples, rate


def downmix(samples: np.ndarray) -> np.ndarray:
    """(channels, n) -> (n,) float32, the mean of the channels."""
    return np.asarray(samples.mean(axis=0, dtype=np.float64), dtype=np.float32)


def window_start(length: int, window: int, crop: str) -> int:
    """First sample of the window kept from a clip of ``length`` samples (0 if shorter)."""
    if crop not in ("center", "start"):
        raise ValueError(f"crop must be 'center' or 'start', got {crop!r}")
    if length <= window or crop == "start":
        return 0
    return (length - window) // 2


def decode_audio(
    data: bytes,
    name: str = "",
    sample_rate: int = 48_000,
    window_samples: int = 61_440,
    crop: str = "center",
) -> np.ndarray:
    """Encoded audio bytes -> (window_samples,) float32 mono at ``sample_rate`` (the policy)."""
    samples, rate = load_audio(data, name)
    mono = downmix(samples)
    total = output_length(len(mono), rate, sample_rate)
    start = window_start(total, window_samples, crop)
    out = np.zeros(window_samples, dtype=np.float32)
    cut = resample(mono, rate, sample_rate, start=start, length=window_samples)
    out[: len(cut)] = cut
    return out


def decode_waveform(data: bytes, name: str = "", sample_rate: int = 48_000) -> np.ndarray:
    """The whole clip, mono at ``sample_rate`` (steps 1-4, no window), float32."""
    samples, rate = load_audio(data, name)
    return resample(downmix(samples), rate, sample_rate)
