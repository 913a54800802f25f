"""The video (and Kinetics audio-visual) decode policy, shared by the jobs and the tests.

Policy, with T = ``num_frames``, S = ``size``, all times exact fractions of a second:

1. Decode the whole clip with PyAV (FFmpeg): the first video stream, and for Kinetics also
   the first audio stream, in one demux pass. Rejected at stage ``decode``: an empty file,
   bytes FFmpeg cannot open (a text file named ``.mp4``, an MP4 cut before its ``moov``
   atom), no video stream, no decoded frame, a frame without a presentation timestamp (pts),
   corrupt data FFmpeg raises on, and a truncated file: fewer video packets read than the
   header declares (``stream.frames``, when the container declares it: MP4, AVI), or a
   Matroska/WebM file whose Segment (or, for a live-written file of unknown size, a Cluster)
   runs past the end of the file (``preprocessing.decode.truncation``).
2. Order frames by pts (never by decode order: B-frames, and AVIs whose timestamps are not
   monotonic in decode order). A frame's time is ``pts * time_base``. Of frames sharing a pts
   the first decoded is kept. ``num_decoded_frames`` counts every decoded frame.
3. Frame rate ``fps``: the stream's ``average_rate`` (FFmpeg's ``avg_frame_rate``), else its
   ``guessed_rate``; a clip with neither is rejected. Its extent is
   ``E = last time - first time + 1 / fps`` (the last frame is shown for one frame period).
4. Sampling: frames are taken every ``step`` seconds, ``step = frame_stride / fps`` for the
   video modality (every ``frame_stride``-th frame of a constant-rate clip) and
   ``frame_stride / target_fps`` for Kinetics (a fixed rate whatever the source rate). The
   row spans ``W = T * step`` seconds from ``t0``: the time of the first frame for
   ``temporal_crop="start"``; for ``"center"``, the time of the frame nearest to
   ``first + max(0, (E - W) / 2)`` (snapping to a frame keeps the sampling regular when the
   container rounds timestamps, e.g. MKV's milliseconds). Target times are
   ``t_k = t0 + k * step`` (k = 0..T-1); for each, the frame whose time is nearest is taken
   (a tie goes to the earlier frame). A frame may be taken twice (a source slower than the
   sampling rate).
5. Clips shorter than the span (``E < W``): the targets past the last frame are nearest to
   the last frame, so the row is padded by repeating the last frame (no looping). Such rows
   raise the manifest flag ``short_clip``.
6. Each chosen frame is converted to RGB by PyAV (``VideoFrame.to_ndarray(format="rgb24")``:
   FFmpeg swscale, no scaling), then resized and center-cropped exactly as images are
   (``preprocessing.decode.image.resize_and_center_crop`` with ``resize_to = crop_size = S``:
   shorter side to S, antialiased bilinear, crop ``round((H - S) / 2)``,
   ``round((W - S) / 2)``). Result: (T, S, S, 3) uint8. Only the T chosen frames are
   converted to RGB.

Audio (Kinetics), over exactly the frames' span ``[t0, t0 + W)``:

7. Every decoded audio frame is converted to float32 as for the audio modality
   (``preprocessing.decode.av_helpers.frame_to_float``: packed s16 arrives as
   (1, n * channels) and is de-interleaved; integer PCM is divided by 2^(bits-1)),
   downmixed to mono by averaging channels and concatenated; the samples are taken as
   contiguous from the first audio frame's time ``a0 = pts * time_base``. A sample rate
   change within the stream, or audio FFmpeg raises on, rejects the clip (``audio: ...``).
8. Resampled to ``sample_rate`` with ``preprocessing.decode.resample`` (output sample m is at
   time ``a0 + m / sample_rate``). The window's first sample is
   ``m0 = round((t0 - a0) * sample_rate)`` (half to even); the window has
   ``W * sample_rate`` samples (16 frames at 25 fps: 0.64 s = 30,720 at 48 kHz), samples
   outside the resampled track (before ``a0``, after its end) are zeros.
9. No audio stream (``audio_missing``), or a stream whose decoded samples are all exactly
   zero (``audio_silent``): the row keeps its frames, its audio is zeros and
   ``audio_present`` is false; the manifest counts both flags per split.

Memory: the decoded frames of the whole clip are held (in the decoder's pixel format, about
1.5 bytes per pixel for YUV 4:2:0) until the T chosen ones are converted.
"""

from __future__ import annotations

import io
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np

from preprocessing.decode.av_helpers import describe, frame_to_float
from preprocessing.decode.image import resize_and_center_crop
from preprocessing.decode.resample import output_length, resample
from preprocessing.decode.truncation import container_truncation
from preprocessing.engine.records import DecodeError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm")
AudioStatus = Literal["ok", "missing", "silent"]


class VideoDecodeError(DecodeError):
    """A video file that cannot become a row; ``stage`` names where it failed."""


@dataclass
class DecodedClip:
    """A whole decoded clip: distinct frames in pts order, and the audio track if asked."""

    pts: list[int]  # distinct, ascending
    times: list[Fraction]  # pts * time_base, seconds
    frames: list[Any]  # av.VideoFrame, in the same order
    fps: Fraction
    num_decoded: int  # every decoded frame, duplicates of a pts included
    declared_frames: int  # stream.frames (0: not declared)
    audio_stream: bool = False
    audio: np.ndarray | None = None  # mono float32 at audio_rate, None without a stream
    audio_rate: int = 0
    audio_start: Fraction = Fraction(0)
    audio_nonzero: bool = False  # any decoded sample (any channel) != 0

    @property
    def extent(self) -> Fraction:
        """Seconds from the first frame to the end of the last one (policy step 3)."""
        return self.times[-1] - self.times[0] + 1 / self.fps


@dataclass(frozen=True)
class FramePlan:
    """Which frames a row takes (policy steps 4-5)."""

    start: Fraction  # t0
    step: Fraction
    targets: list[Fraction]
    indices: list[int]  # into DecodedClip.pts/times/frames, one per target
    short: bool  # the clip is shorter than the span: last frame repeated

    @property
    def span(self) -> Fraction:
        return self.step * len(self.targets)


@dataclass
class VideoSample:
    """One row's decoded content."""

    frames: np.ndarray  # (T, S, S, 3) uint8
    pts: list[int]  # pts of the chosen frames
    frame_times: list[float]  # their times, seconds
    num_decoded: int
    fps: float
    short: bool
    audio: np.ndarray | None = None  # (audio_samples,) float32, Kinetics only
    audio_status: AudioStatus = "ok"
    flags: list[str] = field(default_factory=list)


def _audio_mono(frame: Any) -> tuple[np.ndarray, bool]:
    samples = frame_to_float(frame)  # (channels, n)
    return (
        np.asarray(samples.mean(axis=0, dtype=np.float64), dtype=np.float32),
        bool(np.any(samples)),
    )


def read_clip(data: bytes, with_audio: bool = False) -> DecodedClip:
    """Encoded bytes -> the whole decoded clip (policy steps 1-3, and 7 with ``with_audio``)."""
    import av

    if not data:
        raise VideoDecodeError("decode", "empty file (0 bytes)")
    truncated = container_truncation(data)  # a cut MKV/WebM decodes "fine", just shorter
    if truncated is not None:
        raise VideoDecodeError("decode", truncated)
    container: Any  # PyAV's stubs type streams and frames as unions of every media kind
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise VideoDecodeError("decode", f"not a decodable video: {describe(exc)}") from exc
    with container:
        if not container.streams.video:
            raise VideoDecodeError("decode", "no video stream in the file")
        vstream = container.streams.video[0]
        astream = container.streams.audio[0] if with_audio and container.streams.audio else None
        time_base = vstream.time_base
        if time_base is None:
            raise VideoDecodeError("decode", "video stream has no time base")
        decoded: list[tuple[int, int, Any]] = []  # (pts, decode order, frame)
        packets = 0
        chunks: list[np.ndarray] = []
        audio_rate = 0
        audio_start = Fraction(0)
        nonzero = False
        streams = [vstream] if astream is None else [vstream, astream]
        try:
            for packet in container.demux(streams):
                if packet.stream.index == vstream.index:
                    if packet.size or packet.dts is not None:  # not the flush packet
                        packets += 1
                    for frame in packet.decode():
                        if frame.pts is None:
                            raise VideoDecodeError(
                                "decode", f"video frame {len(decoded)} has no timestamp (pts)"
                            )
                        decoded.append((int(frame.pts), len(decoded), frame))
                    continue
                try:
                    audio_frames = packet.decode()
                except av.FFmpegError as exc:
                    raise VideoDecodeError("decode", f"audio: {describe(exc)}") from exc
                for af in audio_frames:
                    rate = int(af.sample_rate or 0)
                    if not chunks:
                        audio_rate = rate
                        atb = af.time_base or (astream.time_base if astream else None)
                        if af.pts is not None and atb is not None:
                            audio_start = Fraction(af.pts) * Fraction(atb)
                    elif rate != audio_rate:
                        raise VideoDecodeError(
                            "decode", f"audio: sample rate changes ({audio_rate} -> {rate} Hz)"
                        )
                    mono, nz = _audio_mono(af)
                    chunks.append(mono)
                    nonzero |= nz
        except av.FFmpegError as exc:
            raise VideoDecodeError("decode", f"corrupt data: {describe(exc)}") from exc
        declared = int(vstream.frames or 0)
        rate_guess = vstream.average_rate or vstream.guessed_rate
    if not decoded:
        raise VideoDecodeError("decode", "no video frames decoded")
    if declared and packets < declared:
        raise VideoDecodeError(
            "decode",
            f"truncated file: the header declares {declared} video frames, {packets} read",
        )
    if not rate_guess or rate_guess <= 0:
        raise VideoDecodeError("decode", "video stream declares no frame rate")
    if chunks and audio_rate <= 0:
        raise VideoDecodeError("decode", f"audio: invalid sample rate {audio_rate}")
    decoded.sort(key=lambda d: (d[0], d[1]))
    pts: list[int] = []
    frames: list[Any] = []
    for p, _, frame in decoded:
        if not pts or p != pts[-1]:
            pts.append(p)
            frames.append(frame)
    tb = Fraction(time_base)
    return DecodedClip(
        pts=pts,
        times=[p * tb for p in pts],
        frames=frames,
        fps=Fraction(rate_guess),
        num_decoded=len(decoded),
        declared_frames=declared,
        audio_stream=astream is not None,
        audio=np.concatenate(chunks) if chunks else None,
        audio_rate=audio_rate,
        audio_start=audio_start,
        audio_nonzero=nonzero,
    )


def nearest_indices(times: Sequence[Fraction], targets: Sequence[Fraction]) -> list[int]:
    """For each target time, the index of the nearest of the ascending ``times``
    (a tie goes to the earlier one)."""
    out = []
    for t in targets:
        i = bisect_left(times, t)
        if i == 0:
            out.append(0)
        elif i == len(times):
            out.append(len(times) - 1)
        else:
            out.append(i - 1 if t - times[i - 1] <= times[i] - t else i)
    return out


def plan_frames(
    times: Sequence[Fraction],
    fps: Fraction,
    num_frames: int,
    step: Fraction,
    temporal_crop: str = "center",
) -> FramePlan:
    """The frames a row takes from a clip with these frame ``times`` (policy steps 4-5)."""
    if temporal_crop not in ("center", "start"):
        raise ValueError(f"temporal_crop must be 'center' or 'start', got {temporal_crop!r}")
    if not times:
        raise ValueError("a clip without frames has no plan")
    extent = times[-1] - times[0] + 1 / fps
    span = num_frames * step
    offset = max(Fraction(0), (extent - span) / 2) if temporal_crop == "center" else Fraction(0)
    start = times[nearest_indices(times, [times[0] + offset])[0]]  # snapped to a frame
    targets = [start + k * step for k in range(num_frames)]
    return FramePlan(start, step, targets, nearest_indices(times, targets), extent < span)


def frame_to_array(frame: Any, size: int) -> np.ndarray:
    """A PyAV VideoFrame -> (size, size, 3) uint8 RGB (policy step 6)."""
    return resize_and_center_crop(frame.to_ndarray(format="rgb24"), size, size)


def audio_window(clip: DecodedClip, start: Fraction, sample_rate: int, length: int) -> np.ndarray:
    """The clip's mono audio at ``sample_rate`` over ``length`` samples from time ``start``
    (policy step 8); zeros where the track has no samples."""
    out = np.zeros(length, dtype=np.float32)
    if clip.audio is None or not len(clip.audio):
        return out
    total = output_length(len(clip.audio), clip.audio_rate, sample_rate)
    first = round((start - clip.audio_start) * sample_rate)
    lo, hi = max(0, first), min(total, first + length)
    if hi > lo:
        out[lo - first : hi - first] = resample(
            clip.audio, clip.audio_rate, sample_rate, start=lo, length=hi - lo
        )
    return out


def _sample(clip: DecodedClip, plan: FramePlan, size: int) -> VideoSample:
    frames = np.stack([frame_to_array(clip.frames[i], size) for i in plan.indices])
    return VideoSample(
        frames=frames,
        pts=[clip.pts[i] for i in plan.indices],
        frame_times=[float(clip.times[i]) for i in plan.indices],
        num_decoded=clip.num_decoded,
        fps=float(clip.fps),
        short=plan.short,
        flags=["short_clip"] if plan.short else [],
    )


def decode_video(
    data: bytes,
    num_frames: int = 32,
    frame_stride: int = 2,
    size: int = 224,
    temporal_crop: str = "center",
) -> VideoSample:
    """Encoded clip -> T frames sampled every ``frame_stride`` source frames (the policy)."""
    clip = read_clip(data)
    plan = plan_frames(clip.times, clip.fps, num_frames, frame_stride / clip.fps, temporal_crop)
    return _sample(clip, plan, size)


def decode_audio_visual(
    data: bytes,
    num_frames: int = 16,
    frame_stride: int = 1,
    target_fps: int = 25,
    size: int = 224,
    sample_rate: int = 48_000,
    temporal_crop: str = "center",
) -> VideoSample:
    """Encoded clip -> T frames at ``target_fps`` and the audio over the same span."""
    clip = read_clip(data, with_audio=True)
    step = Fraction(frame_stride, target_fps)
    plan = plan_frames(clip.times, clip.fps, num_frames, step, temporal_crop)
    sample = _sample(clip, plan, size)
    length = plan.span * sample_rate
    if length.denominator != 1:
        raise ValueError(f"the span {plan.span} s is not a whole number of samples")
    n = int(length)
    if not clip.audio_stream or clip.audio is None:
        sample.audio, sample.audio_status = np.zeros(n, dtype=np.float32), "missing"
        sample.flags.append("audio_missing")
    elif not clip.audio_nonzero:
        sample.audio, sample.audio_status = np.zeros(n, dtype=np.float32), "silent"
        sample.flags.append("audio_silent")
    else:
        sample.audio = audio_window(clip, plan.start, sample_rate, n)
    return sample
