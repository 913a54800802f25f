"""The PyAV helpers shared by the audio and video policies, on frames PyAV itself builds."""

import io

import av
import numpy as np
import pytest

from preprocessing.decode.av_helpers import describe, frame_to_float


def test_packed_s16_is_deinterleaved_and_scaled():
    left = np.array([0, 16384, -32768, 32767], dtype=np.int16)
    right = np.array([1, 2, 3, 4], dtype=np.int16)
    packed = np.stack([left, right], axis=1).reshape(1, -1)  # (1, n * channels)
    frame = av.AudioFrame.from_ndarray(packed, format="s16", layout="stereo")
    out = frame_to_float(frame)
    assert out.dtype == np.float32 and out.shape == (2, 4)
    np.testing.assert_array_equal(out[0], left / 32768.0)
    np.testing.assert_array_equal(out[1], right / 32768.0)


def test_unsigned_8_bit_is_centred_and_float_planar_is_kept():
    u8 = av.AudioFrame.from_ndarray(np.array([[0, 128, 255]], np.uint8), "u8", "mono")
    np.testing.assert_array_equal(frame_to_float(u8), [[-1.0, 0.0, 127 / 128]])
    planar = np.array([[0.5, -0.25], [0.0, 1.0]], np.float32)  # (channels, n)
    fltp = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
    np.testing.assert_array_equal(frame_to_float(fltp), planar)


def test_describe_names_the_type_without_the_buffers_address():
    with pytest.raises(av.FFmpegError) as info:
        av.open(io.BytesIO(b"not a media file"))
    text = describe(info.value)
    assert text.startswith(f"{type(info.value).__name__}: ")
    assert "0x" not in text
    assert describe(ValueError("<_io.BytesIO object at 0x7f00deadbeef> is bad")) == (
        "ValueError: <bytes> is bad"
    )
