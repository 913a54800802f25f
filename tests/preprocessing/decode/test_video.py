"""The video decode policy (``preprocessing.decode.video``) on the real samples and generated clips,
checked against a direct PyAV decode and an independent reading of the documented policy."""

from fractions import Fraction

import av
import numpy as np
import pytest

from preprocessing.decode.image import resize_and_center_crop
from preprocessing.decode.resample import resample
from preprocessing.decode.video import (
    VideoDecodeError,
    decode_audio_visual,
    decode_video,
    nearest_indices,
)
from preprocessing.sample_data.video import cut_after_packet, encode_clip


def direct_decode(path):
    """pts -> PyAV frame (the first of a pts), the decode-order pts, time base, fps."""
    frames, order = {}, []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        for f in c.decode(s):
            order.append(f.pts)
            frames.setdefault(f.pts, f)
        return frames, order, Fraction(s.time_base), Fraction(s.average_rate)


def expected_pts(pts, tb, fps, num_frames, step, crop):
    """The documented policy, written out independently: nearest pts to t0 + k * step."""
    pts = sorted(pts)
    times = [p * tb for p in pts]
    extent = times[-1] - times[0] + 1 / fps
    span = num_frames * step
    if crop == "center":
        centre = times[0] + max(Fraction(0), (extent - span) / 2)
        t0 = min(times, key=lambda t: (abs(t - centre), t))
    else:
        t0 = times[0]
    chosen = []
    for k in range(num_frames):
        target = t0 + k * step
        chosen.append(min(pts, key=lambda p: (abs(p * tb - target), p)))
    return chosen, t0


@pytest.mark.parametrize("name", ["mmaction2_demo.mp4", "mmaction2_test.avi"])
@pytest.mark.parametrize(("num_frames", "stride", "crop"), [(32, 2, "center"), (12, 5, "start")])
def test_real_clip_frames_equal_a_direct_decode_of_the_chosen_pts(
    shared_samples, name, num_frames, stride, crop
):
    path = shared_samples / "video" / name
    frames, order, tb, fps = direct_decode(path)
    want, _ = expected_pts(frames, tb, fps, num_frames, Fraction(stride) / fps, crop)
    v = decode_video(path.read_bytes(), num_frames, stride, 64, crop)
    assert v.pts == want
    assert v.frames.shape == (num_frames, 64, 64, 3) and v.frames.dtype == np.uint8
    for got, p in zip(v.frames, want, strict=True):
        expect = resize_and_center_crop(frames[p].to_ndarray(format="rgb24"), 64, 64)
        np.testing.assert_array_equal(got, expect)
    assert v.num_decoded == len(order) and v.fps == float(fps)
    assert v.frame_times == [float(p * tb) for p in want]
    assert not v.short


def test_real_clips_measured_properties(shared_samples):
    _, mp4_order, mp4_tb, mp4_fps = direct_decode(shared_samples / "video/mmaction2_demo.mp4")
    _, avi_order, avi_tb, avi_fps = direct_decode(shared_samples / "video/mmaction2_test.avi")
    assert (len(mp4_order), mp4_fps, mp4_tb) == (280, 28, Fraction(1, 14336))
    assert (len(avi_order), avi_fps, avi_tb) == (164, 25, Fraction(1, 25))
    assert avi_order != sorted(avi_order)  # the AVI's decode order is not presentation order
    assert avi_order[:6] == [1, 2, 4, 3, 5, 7]


def test_avi_frames_are_sampled_by_pts_not_decode_order(shared_samples):
    data = (shared_samples / "video/mmaction2_test.avi").read_bytes()
    v = decode_video(data, num_frames=10, frame_stride=1, size=32, temporal_crop="start")
    assert v.pts == list(range(1, 11))  # decode order would give 1, 2, 4, 3, ...
    assert v.frame_times == sorted(v.frame_times)
    # the frame at pts 3 is the one PyAV labels 3, although it is decoded 4th
    frames, _, _, _ = direct_decode(shared_samples / "video/mmaction2_test.avi")
    np.testing.assert_array_equal(
        v.frames[2], resize_and_center_crop(frames[3].to_ndarray(format="rgb24"), 32, 32)
    )
    assert not np.array_equal(v.frames[2], v.frames[3])


def test_mp4_without_audio_stream_gives_zero_audio_and_missing(shared_samples):
    a = decode_audio_visual((shared_samples / "video/mmaction2_demo.mp4").read_bytes(), size=32)
    assert a.audio_status == "missing" and a.flags == ["audio_missing"]
    assert a.audio is not None and a.audio.shape == (30_720,) and a.audio.dtype == np.float32
    assert not a.audio.any()
    assert a.frames.shape == (16, 32, 32, 3)
    # 28 fps source sampled at 25 fps: 16 distinct frames, each within half a source frame
    # period of its target t0 + k / 25
    assert np.all(np.diff(a.frame_times) > 0)
    t0 = a.frame_times[0]
    assert max(abs(t - (t0 + k / 25)) for k, t in enumerate(a.frame_times)) <= 1 / 56 + 1e-9


def test_avi_audio_is_the_frames_span_resampled_to_48k(shared_samples):
    path = shared_samples / "video/mmaction2_test.avi"
    a = decode_audio_visual(path.read_bytes(), size=32)
    frames, _, tb, fps = direct_decode(path)
    want, t0 = expected_pts(frames, tb, fps, 16, Fraction(1, 25), "center")
    assert a.pts == want and a.audio_status == "ok" and a.flags == []
    with av.open(str(path)) as c:  # a direct decode: fltp stereo 44.1 kHz MP3
        s = c.streams.audio[0]
        decoded = list(c.decode(s))
        a0 = decoded[0].pts * Fraction(s.time_base)
        track = np.concatenate([f.to_ndarray() for f in decoded], axis=1)
    assert track.shape[0] == 2 and decoded[0].format.name == "fltp"
    mono = track.astype(np.float64).mean(axis=0).astype(np.float32)
    full = resample(mono, 44_100, 48_000)
    m0 = round((t0 - a0) * 48_000)
    np.testing.assert_allclose(a.audio, full[m0 : m0 + 30_720], atol=1e-6)
    assert np.abs(a.audio).max() > 0.01


def test_a_short_clip_repeats_its_last_frame():
    data = encode_clip("mp4", "libx264", (64, 48), 15, 6, 0, 3)  # 0.4 s
    v = decode_video(data, num_frames=8, frame_stride=1, size=32, temporal_crop="center")
    assert v.short and v.flags == ["short_clip"] and v.num_decoded == 6
    step = 1024  # time base 1/15360 at 15 fps
    assert v.pts == [0, step, 2 * step, 3 * step, 4 * step, 5 * step, 5 * step, 5 * step]
    np.testing.assert_array_equal(v.frames[5], v.frames[7])


def test_nearest_ties_go_to_the_earlier_frame():
    times = [Fraction(0), Fraction(1), Fraction(2)]
    assert nearest_indices(times, [Fraction(1, 2), Fraction(3, 2), Fraction(-1), Fraction(9)]) == [
        0,
        1,
        0,
        2,
    ]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file (0 bytes)"),
        (b"this is a text file\n" * 3, "not a decodable video: InvalidDataError"),
    ],
)
def test_broken_bytes_are_rejected_with_a_reason(data, reason):
    with pytest.raises(VideoDecodeError) as info:
        decode_video(data)
    assert info.value.stage == "decode" and info.value.reason.startswith(reason)


def test_a_truncated_avi_is_rejected_not_shortened():
    data = encode_clip("avi", "mpeg4", (64, 48), 25, 40, 0, 3)
    assert decode_video(data, 4, 1, 16).num_decoded == 40
    with pytest.raises(VideoDecodeError, match="truncated file: the header declares 40 video"):
        decode_video(cut_after_packet(data, 20), 4, 1, 16)
    # cut inside a packet: FFmpeg's decoder raises on the partial packet
    with pytest.raises(VideoDecodeError, match=r"corrupt data|truncated file"):
        decode_video(data[: int(len(data) * 0.8)], 4, 1, 16)
