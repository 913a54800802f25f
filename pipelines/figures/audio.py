"""Audio pictures and sounds: per-class AP chart, spectrograms, waveforms, WAV files."""

from __future__ import annotations

import io
import math

import numpy as np

from pipelines.figures.base import png_bytes, pyplot


def class_ap_png(ap: np.ndarray, classes: list[str], count: int = 10) -> bytes:
    """Horizontal bars of the ``count`` best and ``count`` worst classes by AP (classes
    without a positive clip are left out)."""
    plt = pyplot()
    scored = [(float(v), classes[i]) for i, v in enumerate(ap) if not math.isnan(float(v))]
    scored.sort(reverse=True)
    shown = scored if len(scored) <= 2 * count else scored[:count] + scored[-count:]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(shown) + 1.2), dpi=100)
    values = [v for v, _ in shown]
    ax.barh(
        range(len(shown)), values, color=["tab:green" if v >= 0.5 else "tab:red" for v in values]
    )
    ax.set_yticks(range(len(shown)), [name for _, name in shown], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("average precision")
    mean = float(np.mean([v for v, _ in scored])) if scored else float("nan")
    ax.set_title(f"per-class AP (best and worst; mAP {mean:.3f})", fontsize=9)
    return png_bytes(fig)


def spectrograms_png(
    clips: np.ndarray,
    sample_rate: int,
    true_labels: list[list[str]],
    predicted_labels: list[list[str]],
) -> bytes:
    """One log-magnitude spectrogram per (N, S) clip, titled with its true and predicted
    labels."""
    plt = pyplot()
    n = len(clips)
    fig, axes = plt.subplots(n, 1, figsize=(6, 1.8 * n), dpi=80, squeeze=False)
    nfft = 512 if clips.shape[1] >= 2048 else 64
    for ax, clip, true, pred in zip(axes[:, 0], clips, true_labels, predicted_labels, strict=True):
        ax.specgram(clip, NFFT=nfft, Fs=sample_rate, noverlap=nfft // 2, cmap="magma")
        ax.set_ylabel("Hz", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.set_title(
            f"true: {', '.join(true) or '-'} | predicted: {', '.join(pred) or '-'}", fontsize=7
        )
    axes[-1, 0].set_xlabel("seconds", fontsize=7)
    return png_bytes(fig)


def waveforms_png(
    original: np.ndarray, reconstructed: np.ndarray, sample_rate: int, title: str
) -> bytes:
    """(N, S) original and reconstructed waveforms, overlaid, one panel per clip."""
    plt = pyplot()
    n = len(original)
    fig, axes = plt.subplots(n, 1, figsize=(6, 1.6 * n), dpi=80, squeeze=False)
    t = np.arange(original.shape[1]) / sample_rate
    for ax, a, b in zip(axes[:, 0], original, reconstructed, strict=True):
        ax.plot(t, a, lw=0.6, label="original")
        ax.plot(t, b, lw=0.6, alpha=0.8, label="reconstructed")
        ax.set_ylim(-1, 1)
        ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6, loc="upper right")
    axes[0, 0].set_title(title, fontsize=8)
    axes[-1, 0].set_xlabel("seconds", fontsize=7)
    return png_bytes(fig)


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """A mono float waveform in [-1, 1] as a 16-bit PCM WAV file."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.clip(samples, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()
