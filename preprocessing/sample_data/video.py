"""Write small video datasets with real encoders (PyAV), for demos and tests.

Three layouts, tiny clips (about 64x48 pixels, 0.5-2 s) so that tests are fast:

- ``write_video_sample``: split folders ``<out>/{train,val}/<label>/<clip>.{mp4,avi,mkv}``:
  H.264 (libx264, B-frames) in MP4, MPEG-4 Part 2 (B-frames) in AVI, H.264 in MKV, at 25, 30
  and 15 fps, landscape and portrait, one clip shorter than the default span. On purpose (all
  in ``train/``): a truncated AVI (the header declares more frames than remain), a zero-byte
  ``.mp4``, a text file named ``.mp4`` (quarantined at decode) and a ``notes.txt``
  (quarantined at scan).
- ``write_ucf_sample``: UCF-101's plain class folders ``<out>/<label>/v_<label>_gGG_cCC.avi``
  (MPEG-4 Part 2 in AVI, as UCF-101 ships) and, with ``split_lists``, its split lists
  ``<out>/ucfTrainTestlist/{classInd.txt, trainlist0N.txt, testlist0N.txt}`` for N = 1, 2:
  split N tests group ``gN`` and trains on the other groups. On purpose: a truncated AVI
  (quarantined at decode), a ``Thumbs.db`` in a class folder and a clip lying in the root
  (quarantined at scan), and with the lists a clip no list names and a trainlist01 line whose
  clip is missing (quarantined at scan; split 1). A ``README.txt`` in the root is not an input.
- ``write_kinetics_sample``: ``<out>/kinetics700_2020/{train,validate}.csv`` with the real
  header ``label,youtube_id,time_start,time_end,split`` and clips at
  ``<out>/<split>/<label>/<youtube_id>_<start:06d>_<end:06d>.mp4``. Audio: AAC 44.1 kHz
  stereo or 48 kHz mono (a tone per class), one clip without an audio stream and one with an
  all-zero AAC track. On purpose: a CSV row whose clip is missing, a validate row whose label
  no train row has, a clip no CSV row names, a truncated MP4 (cut before its ``moov`` atom),
  a zero-byte clip and a text file named ``.mp4``.

Each frame shows the class's colour with a white bar whose position encodes the frame index,
so sampled frames are told apart. Nothing is random: clips without audio are byte-identical
from run to run; FFmpeg's AAC encoder is not, so clips with audio may differ in bytes.
"""

from __future__ import annotations

import colorsys
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

VIDEO_LABELS = ("bowling", "juggling balls", "surfing water")
UCF_LABELS = ("ApplyEyeMakeup", "Archery", "Bowling")
UCF_LIST_DIR = "ucfTrainTestlist"
KINETICS_LABELS = ("abseiling", "air drumming", "zumba")
KINETICS_CSV_DIR = "kinetics700_2020"
KINETICS_HEADER = "label,youtube_id,time_start,time_end,split"


@dataclass
class SampleVideoDataset:
    root: Path
    label_map: dict[str, int]
    rows: dict[str, tuple[str, str]] = field(default_factory=dict)  # source -> (split, label)
    broken: dict[str, str] = field(default_factory=dict)  # source -> kind (to quarantine)
    formats: dict[str, str] = field(default_factory=dict)  # source -> what was encoded
    audio: dict[str, str] = field(default_factory=dict)  # kinetics: source -> ok|missing|silent

    @property
    def total_inputs(self) -> int:
        return len(self.rows) + len(self.broken)


def _frame_image(class_index: int, num_classes: int, i: int, w: int, h: int) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(class_index / num_classes, 0.8, 0.8)
    img = np.empty((h, w, 3), dtype=np.uint8)
    img[:] = (int(r * 255), int(g * 255), int(b * 255))
    x = (i * 3) % max(1, w - 4)
    img[:, x : x + 4] = 255
    img[: (i % h) + 1, :4] = 0  # a second marker: a black column growing with the index
    return img


def tone(label_index: int, seconds: float, rate: int, channels: int) -> np.ndarray:
    """(channels, n) float32: harmonics of 220 Hz x (label index + 1)."""
    t = np.arange(round(seconds * rate)) / rate
    f0 = 220.0 * (label_index + 1)
    mono = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in (1, 2, 3)) * 0.2
    return np.stack([mono * (1.0 - 0.2 * c) for c in range(channels)]).astype(np.float32)


def encode_clip(
    fmt: str,
    vcodec: str,
    size: tuple[int, int],
    fps: int,
    num_frames: int,
    class_index: int,
    num_classes: int,
    audio: tuple[int, np.ndarray] | None = None,
) -> bytes:
    """Encode a clip with PyAV: ``fmt`` container (mp4, avi, matroska), ``vcodec`` (libx264,
    mpeg4) with B-frames, and optionally AAC audio ``(rate, (channels, n) float32)``."""
    import av

    w, h = size
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as container:
        vs: Any = container.add_stream(vcodec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.thread_count = 1
        vs.options = {"bf": "2", "g": "12"}
        astream: Any = None
        layout = "mono"
        if audio is not None:
            layout = "stereo" if audio[1].shape[0] == 2 else "mono"
            astream = container.add_stream("aac", rate=audio[0], layout=layout)
        for i in range(num_frames):
            img = _frame_image(class_index, num_classes, i, w, h)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in vs.encode(frame):
                container.mux(packet)
        for packet in vs.encode(None):
            container.mux(packet)
        if astream is not None and audio is not None:
            rate, samples = audio
            step = astream.codec_context.frame_size or 1024
            for k in range(0, samples.shape[1], step):
                af = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(samples[:, k : k + step]), format="fltp", layout=layout
                )
                af.sample_rate = rate
                af.pts = k
                for packet in astream.encode(af):
                    container.mux(packet)
            for packet in astream.encode(None):
                container.mux(packet)
    return buf.getvalue()


def cut_after_packet(data: bytes, packets: int) -> bytes:
    """The first bytes of a clip, up to the end of its ``packets``-th video packet: a download
    cut between packets (cut inside one, FFmpeg's decoder raises on the partial packet)."""
    import av

    container: Any
    with av.open(io.BytesIO(data)) as container:
        ends = [p.pos + p.size for p in container.demux(container.streams.video[0]) if p.size]
    return data[: ends[packets - 1] + 8]  # + the next chunk's 8-byte header


def write_video_sample(
    out: Path, train_per_class: int = 2, val_per_class: int = 1
) -> SampleVideoDataset:
    """Write the class-folder sample under ``out`` (which must not hold one already)."""
    out = Path(out)
    labels = sorted(VIDEO_LABELS)
    ds = SampleVideoDataset(root=out, label_map={name: i for i, name in enumerate(labels)})
    # (container, codec, extension, (w, h), fps, frames), cycled over the clips
    kinds = [
        ("mp4", "libx264", ".mp4", (64, 48), 25, 40),
        ("avi", "mpeg4", ".avi", (64, 48), 25, 36),
        ("matroska", "libx264", ".mkv", (48, 64), 30, 45),
        ("mp4", "libx264", ".mp4", (80, 48), 15, 12),  # 0.8 s: shorter than 32 x 2 frames
    ]
    n = 0
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        for ci, label in enumerate(labels):
            for k in range(per_class):
                fmt, codec, ext, size, fps, frames = kinds[n % len(kinds)]
                n += 1
                source = f"{split}/{label}/clip_{k:03d}{ext}"
                data = encode_clip(fmt, codec, size, fps, frames, ci, len(labels))
                (out / source).parent.mkdir(parents=True, exist_ok=True)
                (out / source).write_bytes(data)
                ds.rows[source] = (split, label)
                ds.formats[source] = f"{codec} in {fmt}, {size[0]}x{size[1]}, {fps} fps, {frames}"
    first = labels[0]
    avi = encode_clip("avi", "mpeg4", (64, 48), 25, 40, 0, len(labels))
    broken = {
        f"train/{first}/truncated.avi": (cut_after_packet(avi, 20), "truncated"),
        f"train/{first}/empty.mp4": (b"", "empty"),
        f"train/{first}/not_a_video.mp4": (b"this is a text file, not an MP4\n", "text"),
        f"train/{first}/notes.txt": (b"clips of people bowling\n", "unsupported_extension"),
    }
    for source, (data, kind) in broken.items():
        (out / source).write_bytes(data)
        ds.broken[source] = kind
    return ds


def write_ucf_sample(out: Path, split_lists: bool = True) -> SampleVideoDataset:
    """Write the UCF-101-layout sample under ``out`` (which must not hold one already).

    ``rows`` give split 1's splits (with ``split_lists``; without, the split is "": the job's
    ``val_fraction`` decides) and ``broken`` split 1's rejects.
    """
    out = Path(out)
    labels = sorted(UCF_LABELS)
    ds = SampleVideoDataset(root=out, label_map={name: i for i, name in enumerate(labels)})
    lists: dict[str, list[str]] = {
        f"{kind}list{n:02d}.txt": [] for n in (1, 2) for kind in ("train", "test")
    }

    def write(source: str, data: bytes) -> None:
        (out / source).parent.mkdir(parents=True, exist_ok=True)
        (out / source).write_bytes(data)

    for ci, label in enumerate(labels):
        for group in (1, 2, 3):
            for c in (1, 2):
                source = f"{label}/v_{label}_g{group:02d}_c{c:02d}.avi"
                write(source, encode_clip("avi", "mpeg4", (64, 48), 25, 12, ci, len(labels)))
                ds.formats[source] = "mpeg4 in avi, 64x48, 25 fps, 12"
                for n in (1, 2):
                    if group == n:
                        lists[f"testlist{n:02d}.txt"].append(source)
                    else:  # trainlist lines end with the class's classInd.txt index
                        lists[f"trainlist{n:02d}.txt"].append(f"{source} {ci + 1}")
                split = ("val" if group == 1 else "train") if split_lists else ""
                ds.rows[source] = (split, label)
    truncated = f"{labels[2]}/v_{labels[2]}_g02_c02.avi"
    avi = encode_clip("avi", "mpeg4", (64, 48), 25, 40, 2, len(labels))
    write(truncated, cut_after_packet(avi, 20))
    del ds.rows[truncated], ds.formats[truncated]
    broken = {
        truncated: "truncated",
        f"{labels[0]}/Thumbs.db": "unsupported_extension",
        "stray.avi": "unlabelled",
    }
    write(f"{labels[0]}/Thumbs.db", b"\x00" * 16)
    write("stray.avi", encode_clip("avi", "mpeg4", (64, 48), 25, 12, 0, len(labels)))
    (out / "README.txt").write_text("UCF-101-like sample; not an input\n")
    if split_lists:
        unlisted = f"{labels[0]}/v_{labels[0]}_g04_c01.avi"
        write(unlisted, encode_clip("avi", "mpeg4", (64, 48), 25, 12, 0, len(labels)))
        broken[unlisted] = "unlisted"
        lists["trainlist01.txt"].append(f"{labels[1]}/v_{labels[1]}_g04_c01.avi 2")
        broken[f"{UCF_LIST_DIR}/trainlist01.txt:{len(lists['trainlist01.txt'])}"] = "missing_clip"
        index = "".join(f"{i + 1} {label}\r\n" for i, label in enumerate(labels))
        write(f"{UCF_LIST_DIR}/classInd.txt", index.encode())
        for name, lines in lists.items():  # CRLF line ends, as in the release
            write(f"{UCF_LIST_DIR}/{name}", "".join(f"{line}\r\n" for line in lines).encode())
    ds.broken.update(broken)
    return ds


def _kinetics_clip(
    youtube_id: str, start: int, split: str, label: str, folder: str
) -> tuple[str, str]:
    """(source, CSV row) of a clip; the sample's labels hold no comma or quote."""
    stem = f"{youtube_id}_{start:06d}_{start + 10:06d}"
    return f"{split}/{folder}/{stem}.mp4", f"{label},{youtube_id},{start},{start + 10},{split}"


def write_kinetics_sample(out: Path, seconds: float = 1.2) -> SampleVideoDataset:
    """Write the Kinetics-layout sample under ``out`` (which must not hold one already)."""
    out = Path(out)
    labels = sorted(KINETICS_LABELS)
    ds = SampleVideoDataset(root=out, label_map={name: i for i, name in enumerate(labels)})
    # (split, label index, audio: ok44|ok48|missing|silent, fps, kind); kind "" = a good clip
    plan: list[tuple[str, int, str, int, str]] = [
        ("train", 0, "ok44", 25, ""),
        ("train", 0, "missing", 30, ""),
        ("train", 1, "ok48", 30, ""),  # label with a space: folder "air_drumming"
        ("train", 1, "silent", 25, ""),
        ("train", 2, "ok44", 15, ""),
        ("train", 2, "ok48", 25, "missing_clip"),
        ("train", 0, "ok44", 25, "truncated"),
        ("train", 1, "ok44", 25, "empty"),
        ("train", 2, "ok44", 25, "text"),
        ("validate", 0, "ok48", 25, ""),
        ("validate", 1, "ok44", 30, ""),
        ("validate", 2, "missing", 25, ""),
        ("validate", -1, "ok44", 25, "unknown_label"),
    ]
    csv_rows: dict[str, list[str]] = {"train": [], "validate": []}
    for n, (split, li, audio_kind, fps, kind) in enumerate(plan):
        label = labels[li] if li >= 0 else "yodelling"
        youtube_id = f"yt{n:02d}{'-_abcdefgh'[n % 10]}XyZ{n * 7 % 10}"
        folder = label.replace(" ", "_") if " " in label else label
        source, row = _kinetics_clip(youtube_id, 10 * n, split, label, folder)
        csv_rows[split].append(row)
        if kind == "missing_clip":
            ds.broken[f"{KINETICS_CSV_DIR}/{split}.csv:{len(csv_rows[split]) + 1}"] = kind
            continue
        frames = round(seconds * fps)
        audio: tuple[int, np.ndarray] | None = None
        if audio_kind == "ok44":
            audio = (44_100, tone(max(li, 0), seconds, 44_100, 2))
        elif audio_kind == "ok48":
            audio = (48_000, tone(max(li, 0), seconds, 48_000, 1))
        elif audio_kind == "silent":
            audio = (48_000, np.zeros((1, round(seconds * 48_000)), dtype=np.float32))
        data = encode_clip("mp4", "libx264", (64, 48), fps, frames, max(li, 0), len(labels), audio)
        if kind == "truncated":
            data = data[: len(data) // 2]
        elif kind == "empty":
            data = b""
        elif kind == "text":
            data = b"404: Not Found\n"
        (out / source).parent.mkdir(parents=True, exist_ok=True)
        (out / source).write_bytes(data)
        if kind:
            ds.broken[source] = kind
            continue
        ds.rows[source] = (split, label)
        ds.audio[source] = {"ok44": "ok", "ok48": "ok"}.get(audio_kind, audio_kind)
        ds.formats[source] = f"H.264 in MP4, 64x48, {fps} fps, {frames} frames, {audio_kind}"
    unlisted = "train/zumba/ytunlisted_000000_000010.mp4"
    (out / unlisted).write_bytes(
        encode_clip("mp4", "libx264", (64, 48), 25, 20, 2, len(labels), None)
    )
    ds.broken[unlisted] = "not_in_csv"
    (out / KINETICS_CSV_DIR).mkdir(parents=True, exist_ok=True)
    for split, rows in csv_rows.items():
        (out / KINETICS_CSV_DIR / f"{split}.csv").write_text(
            KINETICS_HEADER + "\n" + "\n".join(rows) + "\n"
        )
    return ds
