"""The band-limited resampler against signals whose resampled form is known exactly.

Tolerance: the filter's passband gain is 1 within 1e-5 below 18 kHz, so a 1 kHz sine
resampled 44.1 -> 48 kHz must match the sine generated at 48 kHz to well under 1e-4 (max abs,
amplitude 1). The first and last 200 output samples are excluded: there the filter reaches
past the ends of the input, which are taken as silence (measured interior error: 7.4e-6).
"""

import numpy as np
import pytest

from preprocessing.decode.resample import output_length, resample

EDGE = 200


def sine(freq, rate, n):
    return np.sin(2 * np.pi * freq * np.arange(n) / rate)


def test_1khz_sine_44k1_to_48k_matches_a_sine_generated_at_48k():
    x = sine(1000, 44_100, 44_100)  # 1.0 s
    y = resample(x, 44_100, 48_000)
    assert y.dtype == np.float32 and y.shape == (48_000,)  # 1.0 s at 48 kHz
    direct = sine(1000, 48_000, 48_000)
    err = np.abs(y - direct)[EDGE:-EDGE]
    assert err.max() < 1e-4, err.max()
    spectrum = np.abs(np.fft.rfft(y[EDGE:-EDGE] * np.hanning(len(y) - 2 * EDGE))) ** 2
    freqs = np.fft.rfftfreq(len(y) - 2 * EDGE, 1 / 48_000)
    assert abs(freqs[spectrum.argmax()] - 1000) < 2.0
    near = spectrum[np.abs(freqs - 1000) <= 20].sum()
    assert near / spectrum.sum() > 0.9999  # the energy stays at 1 kHz


def test_output_length_is_ceil_of_the_ratio():
    assert output_length(485_100, 44_100, 48_000) == 528_000  # jfk.flac: 11.0 s
    assert output_length(10, 44_100, 48_000) == 11  # ceil(10 * 160 / 147) = ceil(10.88)
    assert output_length(16_000, 16_000, 48_000) == 48_000
    assert len(resample(np.ones(10), 44_100, 48_000)) == 11


def test_a_slice_is_identical_to_slicing_the_full_output():
    x = np.random.default_rng(0).standard_normal(20_000)
    full = resample(x, 44_100, 48_000)
    np.testing.assert_array_equal(
        resample(x, 44_100, 48_000, start=1234, length=5000), full[1234:6234]
    )
    tail = resample(x, 44_100, 48_000, start=len(full) - 10, length=100)
    np.testing.assert_array_equal(tail, full[-10:])  # clipped at the end


def test_downsampling_removes_content_above_the_new_nyquist():
    rate = 48_000
    kept = resample(sine(1000, rate, rate), rate, 16_000)
    np.testing.assert_allclose(kept[EDGE:-EDGE], sine(1000, 16_000, 16_000)[EDGE:-EDGE], atol=1e-4)
    aliased = resample(sine(10_000, rate, rate), rate, 16_000)  # would alias to 6 kHz
    assert np.sqrt(np.mean(aliased[EDGE:-EDGE] ** 2)) < 1e-4


def test_dc_is_kept_exactly_and_equal_rates_are_a_copy():
    y = resample(np.full(5000, 0.5), 16_000, 48_000)
    np.testing.assert_allclose(y[EDGE:-EDGE], 0.5, atol=1e-6)
    x = np.arange(7, dtype=np.float64)
    np.testing.assert_array_equal(resample(x, 48_000, 48_000), x.astype(np.float32))


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="mono"):
        resample(np.zeros((2, 10)), 44_100, 48_000)
    with pytest.raises(ValueError, match="positive"):
        resample(np.zeros(10), 0, 48_000)
