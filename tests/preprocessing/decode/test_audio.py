"""The audio decode policy on real files: the shared jfk.flac and AVI (MP3 audio), and
files written here with soundfile and PyAV (truncation in depth: test_truncation.py)."""

import io

import av
import numpy as np
import pytest
import soundfile as sf

from preprocessing.decode.audio import (
    AudioDecodeError,
    decode_audio,
    decode_waveform,
    load_audio,
    window_start,
)
from preprocessing.decode.resample import resample
from preprocessing.sample_data.audio import _mp3_bytes, mp3_encoder_available


def encode(samples, rate, fmt="WAV", subtype="PCM_16"):
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def test_real_jfk_flac_decodes_to_mono_48k_with_its_duration(shared_samples):
    data = (shared_samples / "audio" / "jfk.flac").read_bytes()
    samples, rate = load_audio(data, "jfk.flac")
    assert (samples.shape, rate) == ((2, 485_100), 44_100)  # 24-bit stereo, 11.0 s
    wave = decode_waveform(data, "jfk.flac")
    assert wave.dtype == np.float32 and wave.shape == (528_000,)  # 11.0 s at 48 kHz
    np.testing.assert_allclose(wave, resample(samples.mean(axis=0), 44_100, 48_000), atol=1e-6)
    assert 0.05 < np.sqrt(np.mean(wave**2)) < 0.5  # real speech, not silence or clipping
    window = decode_audio(data, "jfk.flac")
    start = (528_000 - 61_440) // 2
    assert window.shape == (61_440,) and window.dtype == np.float32
    np.testing.assert_array_equal(window, wave[start : start + 61_440])


def test_real_avi_mp3_audio_decodes_with_pyav(shared_samples):
    data = (shared_samples / "video" / "mmaction2_test.avi").read_bytes()
    samples, rate = load_audio(data, "mmaction2_test.avi")
    assert rate == 44_100 and samples.shape[0] == 2 and samples.dtype == np.float32
    assert abs(samples.shape[1] / rate - 6.557) < 0.05
    assert np.abs(samples).max() <= 1.0 + 1e-6 and np.abs(samples).max() > 0.01


def test_a_video_without_audio_is_rejected(shared_samples):
    data = (shared_samples / "video" / "mmaction2_demo.mp4").read_bytes()
    with pytest.raises(AudioDecodeError, match="no audio stream"):
        load_audio(data, "mmaction2_demo.mp4")


def test_stereo_is_averaged_and_int16_scaled():
    x = np.linspace(-0.5, 0.5, 4800, dtype=np.float32)
    data = encode(np.stack([x, np.zeros_like(x)], axis=1), 48_000)
    wave = decode_waveform(data, "a.wav")
    np.testing.assert_allclose(wave, x / 2, atol=1 / 32768)


def test_short_clip_is_zero_padded_at_the_end_and_long_clip_center_cropped():
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 1000).astype(np.float32)
    out = decode_audio(encode(x, 48_000, "FLAC", "PCM_24"), "a.flac", window_samples=1500)
    np.testing.assert_allclose(out[:1000], x, atol=1e-6)
    assert not out[1000:].any()
    out = decode_audio(encode(x, 48_000, "FLAC", "PCM_24"), "a.flac", window_samples=400)
    np.testing.assert_allclose(out, x[300:700], atol=1e-6)
    out = decode_audio(
        encode(x, 48_000, "FLAC", "PCM_24"), "a.flac", window_samples=400, crop="start"
    )
    np.testing.assert_allclose(out, x[:400], atol=1e-6)
    assert window_start(1001, 400, "center") == 300


def test_wav_named_mp3_falls_back_by_content():
    x = np.zeros(1600, dtype=np.float32)
    samples, rate = load_audio(encode(x, 16_000), "clip.mp3")
    assert (samples.shape, rate) == ((1, 1600), 16_000)


@pytest.mark.skipif(not mp3_encoder_available(), reason="PyAV here cannot encode MP3")
def test_mp3_written_by_lame_decodes_with_pyav():
    t = np.arange(44_100) / 44_100
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    samples, rate = load_audio(_mp3_bytes(np.stack([x, x], axis=1), 44_100), "a.mp3")
    assert rate == 44_100 and samples.shape == (2, 44_100)  # encoder delay removed
    assert np.abs(samples[0, 2000:-2000] - x[2000:-2000]).max() < 0.05  # lossy


@pytest.mark.skipif(not mp3_encoder_available(), reason="PyAV here cannot encode MP3")
def test_a_truncated_mp3_is_rejected_not_shortened():
    x = np.zeros((44_100, 2), dtype=np.float32)
    data = _mp3_bytes(x, 44_100)
    with pytest.raises(AudioDecodeError, match=r"^decode: truncated MP3: last frame at byte"):
        load_audio(data[:-100], "a.mp3")  # FFmpeg alone would decode the frames before it
    with av.open(io.BytesIO(data)) as container:  # FFmpeg's frame positions
        last = max(p.pos for p in container.demux() if p.size)
    with pytest.raises(AudioDecodeError, match=r"truncated MP3: Info header declares"):
        load_audio(data[:last], "a.mp3")  # cut between frames: the Info frame count says so


def test_broken_inputs_raise_with_a_reason():
    with pytest.raises(AudioDecodeError, match="empty file"):
        load_audio(b"", "a.wav")
    wav = encode(np.zeros(16_000, dtype=np.float32), 16_000)
    with pytest.raises(AudioDecodeError, match=r"truncated file: header declares 16000 frames"):
        load_audio(wav[: len(wav) // 2], "a.wav")  # libsndfile alone would return 7989 frames
    flac = encode(np.random.default_rng(1).uniform(-0.5, 0.5, 48_000), 48_000, "FLAC", "PCM_24")
    with pytest.raises(AudioDecodeError, match=r"soundfile: .*; pyav: "):
        load_audio(flac[: len(flac) // 2], "a.flac")
    with pytest.raises(AudioDecodeError, match="not decodable audio") as exc:
        load_audio(b"hello, not audio", "a.wav")
    assert "0x" not in str(exc.value)  # no memory addresses in quarantine reasons
