"""Write a small AudioSet-layout dataset of real WAV/FLAC/MP3 files, for demos and tests.

Layout (as the AudioSet release and its public mirrors have it)::

    <out>/class_labels_indices.csv
    <out>/balanced_train_segments.csv, <out>/eval_segments.csv
    <out>/audio/balanced_train/<name>.{wav,flac,mp3}
    <out>/audio/eval/<name>.{wav,flac}
    <out>/audio/extra/unlisted_clip.wav

The CSVs have the real header (three ``#`` lines) and rows ``YTID, start, end, "mid,mid"``.
Each class has its own tone (harmonics of 220 Hz x (class index + 1)), with noise; a clip
sums the tones of its labels. Encoders and formats, all real: WAV 16-bit 16 kHz mono, WAV
16-bit 44.1 kHz stereo, FLAC 24-bit 48 kHz, and MP3 44.1 kHz stereo (PyAV's libmp3lame) when
this PyAV can encode MP3 (``SampleAudioDataset.mp3`` says whether it did). File names use
every naming the scan accepts: ``YTID``, ``YYTID``, ``YTID_30.000_40.000``, ``YTID_0_10``.
One clip is shorter than the default 1.28 s window (it gets zero-padded). On purpose:

- a truncated FLAC and a zero-byte WAV, which must be quarantined at decode;
- a CSV row whose file is missing, a row with an unknown label mid, and an audio file that no
  CSV row lists, which must be quarantined at scan.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DEFAULT_CLASSES = (
    ("/m/09x0r", "Speech"),
    ("/m/05zppz", "Male speech, man speaking"),
    ("/m/04rlf", "Music"),
    ("/m/0jbk", "Animal"),
    ("/m/06mb1", "Rain"),
)
UNKNOWN_MID = "/m/0zzzzzz"
HEADER = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids={n}, num_segs={n}, num_unique_labels={u}, num_positive_labels={p}\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
)


@dataclass
class SampleAudioDataset:
    root: Path
    label_map: dict[str, int]
    # source -> (split, ytid, label mids) of every clip that must become a row
    rows: dict[str, tuple[str, str, tuple[str, ...]]] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # source -> kind, to be quarantined
    formats: dict[str, str] = field(default_factory=dict)  # source -> encoding written
    mp3: bool = False

    @property
    def total_inputs(self) -> int:
        return len(self.rows) + len(self.broken)


def mp3_encoder_available() -> bool:
    import av

    return "libmp3lame" in av.codec.codecs_available


def clip(
    rng: np.random.Generator, label_indices: list[int], seconds: float, rate: int, channels: int
) -> np.ndarray:
    """(frames, channels) float32 in [-1, 1]: the labels' tones plus a little noise."""
    t = np.arange(round(seconds * rate)) / rate
    mono = np.zeros_like(t)
    for i in label_indices:
        f0 = 220.0 * (i + 1)
        for h in (1, 2, 3):
            if f0 * h < rate / 2:
                mono += np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 2 * np.pi)) / h
    mono *= 0.25 / max(1, len(label_indices))
    out = np.stack([mono * (1.0 - 0.2 * c) for c in range(channels)], axis=1)
    out += rng.normal(0.0, 0.01, size=out.shape)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def _soundfile_bytes(samples: np.ndarray, rate: int, fmt: str, subtype: str) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def _mp3_bytes(samples: np.ndarray, rate: int) -> bytes:
    import av

    layout = "stereo" if samples.shape[1] == 2 else "mono"
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples.T), format="fltp", layout=layout
        )
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def _ytid(rng: np.random.Generator, n: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    body = "".join(alphabet[int(i)] for i in rng.integers(0, len(alphabet), size=10))
    return ("-" if n % 3 == 0 else alphabet[n]) + body  # real YTIDs may start with '-'


def write_audioset_sample(out: Path, seed: int = 0, seconds: float = 2.0) -> SampleAudioDataset:
    """Write the sample dataset under ``out`` (which must not hold one already)."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    mids = [m for m, _ in DEFAULT_CLASSES]
    ds = SampleAudioDataset(root=out, label_map={m: i for i, m in enumerate(mids)})
    ds.mp3 = mp3_encoder_available()

    # (split, naming, encoding, labels, kind); kind "" = a good clip
    plan: list[tuple[str, str, str, list[int], str]] = [
        ("train", "plain", "wav16k", [0, 1], ""),
        ("train", "Y", "wav44k", [2], ""),
        ("train", "segment", "flac48k", [3], ""),
        ("train", "int_segment", "mp3", [2, 4], ""),
        ("train", "plain", "wav16k_short", [4], ""),
        ("train", "plain", "flac48k", [0], "truncated"),
        ("train", "plain", "wav16k", [1], "empty"),
        ("train", "plain", "wav16k", [2], "missing_file"),
        ("train", "plain", "wav44k", [0], "unknown_mid"),
        ("val", "plain", "wav16k", [0], ""),
        ("val", "segment", "flac48k", [2, 3], ""),
        ("val", "Y", "wav44k", [1, 4], ""),
    ]
    if not ds.mp3:
        plan = [p for p in plan if p[2] != "mp3"]
    csv_rows: dict[str, list[str]] = {"train": [], "val": []}
    folders = {"train": "audio/balanced_train", "val": "audio/eval"}
    csv_names = {"train": "balanced_train_segments.csv", "val": "eval_segments.csv"}
    for n, (split, naming, encoding, labels, kind) in enumerate(plan):
        ytid = _ytid(rng, n)
        start, end = (0, 10) if naming == "int_segment" else (30, 40)
        stem = {
            "plain": ytid,
            "Y": f"Y{ytid}",
            "segment": f"{ytid}_{start:.3f}_{end:.3f}",
            "int_segment": f"{ytid}_{start}_{end}",
        }[naming]
        label_mids = [mids[i] for i in labels] + ([UNKNOWN_MID] if kind == "unknown_mid" else [])
        csv_rows[split].append(f'{ytid}, {start:.3f}, {end:.3f}, "{",".join(label_mids)}"')
        line = 3 + len(csv_rows[split])  # after the three header lines
        short = encoding.endswith("_short")
        length = 0.5 if short else seconds
        base = encoding.removesuffix("_short")
        rate, channels, ext = {
            "wav16k": (16_000, 1, ".wav"),
            "wav44k": (44_100, 2, ".wav"),
            "flac48k": (48_000, 1, ".flac"),
            "mp3": (44_100, 2, ".mp3"),
        }[base]
        samples = clip(rng, labels, length, rate, channels)
        if base == "mp3":
            data = _mp3_bytes(samples, rate)
        elif ext == ".flac":
            data = _soundfile_bytes(samples, rate, "FLAC", "PCM_24")
        else:
            data = _soundfile_bytes(samples, rate, "WAV", "PCM_16")
        source = f"{folders[split]}/{stem}{ext}"
        if kind == "missing_file":
            ds.broken[f"{csv_names[split]}:{line}"] = kind
            continue
        if kind == "truncated":
            data = data[: len(data) // 2]
        elif kind == "empty":
            data = b""
        (out / source).parent.mkdir(parents=True, exist_ok=True)
        (out / source).write_bytes(data)
        ds.formats[source] = f"{base} {rate} Hz {channels} ch, {length} s"
        if kind:
            ds.broken[source] = kind
        else:
            ds.rows[source] = (split, ytid, tuple(label_mids))

    unlisted = "audio/extra/unlisted_clip.wav"
    (out / unlisted).parent.mkdir(parents=True, exist_ok=True)
    (out / unlisted).write_bytes(
        _soundfile_bytes(clip(rng, [0], seconds, 16_000, 1), 16_000, "WAV", "PCM_16")
    )
    ds.broken[unlisted] = "unlabelled"
    ds.formats[unlisted] = "wav16k 16000 Hz 1 ch"

    for split, rows in csv_rows.items():
        positives = sum(r.rsplit('"', 2)[1].count(",") + 1 for r in rows)
        header = HEADER.format(n=len(rows), u=len(mids), p=positives)
        (out / csv_names[split]).write_text(header + "\n".join(rows) + "\n")
    lines = ["index,mid,display_name"] + [
        f'{i},{mid},"{name}"' for i, (mid, name) in enumerate(DEFAULT_CLASSES)
    ]
    (out / "class_labels_indices.csv").write_text("\n".join(lines) + "\n")
    return ds
