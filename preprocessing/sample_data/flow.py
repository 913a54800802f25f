"""Write small optical-flow datasets in the four layouts, with real encoders, for tests.

Frames are 40 x 56 (one FlyingChairs sample is 24 x 30, smaller than a 32 x 48 target, so
it is upscaled); frame 2 is frame 1 rolled by the sample's integer flow ``(u, v)``, so
``frame1(x, y) == frame2(x + u, y + v)`` away from the borders; the flow field is that
constant ``(u, v)`` (KITTI: u, v are multiples of 1/64, frame 2 is rolled by the rounded
flow, and the ground truth is sparse, valid on about 70% of the pixels). Encoders: PNG and PPM
by Pillow, ``.flo`` byte by byte (``preprocessing.decode.flow.write_flo``), KITTI's 16-bit PNG by
``preprocessing.decode.png16.write_png`` (FFmpeg's encoder, its row filter chosen per row).

Broken on purpose, per layout (``SampleFlowDataset.broken``: source -> kind):

- ``chairs`` (``data/NNNNN_*``, with ``FlyingChairs_train_val.txt`` putting samples 2 and 6
  in val and a ``README.txt`` that is not an input): a missing ``img2``, a ``.flo`` with a bad
  magic, a truncated ``.flo``, a flow of another size than its frames, an undecodable
  ``img1`` (text), a flow without frames, and an unmatched ``.ppm``. Sample 5 has unknown
  flow (1e10) in a 5 x 5 corner.
- ``autoflow`` (``static_40k_png_{1,2}_of_4/<sample>/``): a sample without ``forward.flo``,
  a truncated ``im1.png``, an unmatched ``backward.flo``. Sample ``s2`` has unknown flow.
- ``sintel`` (``training/{clean,final}``, ``training/flow``; scenes ``alley_1`` (4 frames),
  ``market_2`` (3 frames, flow 2 truncated), ``bamboo_1`` (clean only, flow 1 only)):
  the truncated flow (rejected once per pass), a clean frame with a next frame but no flow,
  a flow whose final-pass frames are missing, and a stray ``Thumbs.db``.
- ``kitti`` (``training/image_2``, ``training/flow_occ``): an interlaced 16-bit flow PNG, an
  8-bit flow PNG, a missing ``_11`` frame, a flow of another size, an unmatched
  ``000007_09.png``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from preprocessing.decode.flow import encode_kitti_flow, write_flo
from preprocessing.decode.png16 import write_png

FLOW_LAYOUTS = ("autoflow", "chairs", "sintel", "kitti")
SIZE = (40, 56)  # height, width


@dataclass
class SampleFlowDataset:
    root: Path
    layout: str
    rows: dict[str, str] = field(default_factory=dict)  # source -> split
    flows: dict[str, tuple[float, float]] = field(default_factory=dict)  # source -> (u, v)
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # source -> (h, w)
    broken: dict[str, str] = field(default_factory=dict)  # source -> kind (to quarantine)
    invalid: set[str] = field(default_factory=set)  # sources with some unknown flow

    @property
    def total_inputs(self) -> int:
        return len(self.rows) + len(self.broken)


def texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random RGB texture, (h, w, 3) uint8."""
    coarse = rng.integers(0, 256, size=(h // 4 + 2, w // 4 + 2, 3), dtype=np.uint8)
    img = Image.fromarray(coarse, mode="RGB").resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def frame_pair(
    rng: np.random.Generator, h: int, w: int, u: int, v: int
) -> tuple[np.ndarray, np.ndarray]:
    """Frame 1 and frame 1 moved by (u, v) pixels: frame2[y + v, x + u] = frame1[y, x]."""
    f1 = texture(rng, h, w)
    return f1, np.roll(f1, (v, u), axis=(0, 1))


def constant_flow(h: int, w: int, u: float, v: float) -> np.ndarray:
    flow = np.empty((h, w, 2), dtype=np.float32)
    flow[:, :, 0], flow[:, :, 1] = u, v
    return flow


def encode_image(array: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode="RGB").save(buf, format=fmt)
    return buf.getvalue()


def _write(root: Path, rel: str, data: bytes) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_chairs_sample(out: Path, seed: int = 0) -> SampleFlowDataset:
    out = Path(out)
    rng = np.random.default_rng(seed)
    ds = SampleFlowDataset(out, "chairs")
    h, w = SIZE
    val = {2, 6}
    for n in range(1, 13):
        p = f"data/{n:05d}"
        u, v = (n % 5) - 2, (n % 3) - 1
        sh, sw = (24, 30) if n == 4 else (h, w)
        f1, f2 = frame_pair(rng, sh, sw, u, v)
        flow = constant_flow(sh, sw, u, v)
        img1, img2 = encode_image(f1, "PPM"), encode_image(f2, "PPM")
        flo = write_flo(flow)
        source = f"{p}_img1.ppm"
        kind = {
            7: "missing_frame",
            8: "bad_magic",
            9: "truncated_flo",
            10: "size_mismatch",
            11: "undecodable",
            12: "missing_frames",
        }.get(n)
        if n == 5:
            flow[:5, :5] = 1e10
            flo = write_flo(flow)
            ds.invalid.add(source)
        if kind == "bad_magic":
            flo = b"PIEX" + flo[4:]
        elif kind == "truncated_flo":
            flo = flo[: len(flo) - 100]
        elif kind == "size_mismatch":
            flo = write_flo(constant_flow(h, w - 6, u, v))
        elif kind == "undecodable":
            img1 = b"P6 this is not a netpbm image\n"
        if kind != "missing_frames":
            _write(out, source, img1)
            if kind != "missing_frame":
                _write(out, f"{p}_img2.ppm", img2)
        else:
            source = f"{p}_flow.flo"
        _write(out, f"{p}_flow.flo", flo)
        if kind:
            ds.broken[source] = kind
        else:
            ds.rows[source] = "val" if n in val else "train"
            ds.flows[source] = (u, v)
            ds.sizes[source] = (sh, sw)
    _write(out, "data/thumbnail_00001.ppm", encode_image(texture(rng, 8, 8), "PPM"))
    ds.broken["data/thumbnail_00001.ppm"] = "unmatched"
    (out / "FlyingChairs_train_val.txt").write_text(
        "".join("2\n" if n in val else "1\n" for n in range(1, 13))
    )
    (out / "README.txt").write_text("FlyingChairs-like sample; not an input\n")
    return ds


def write_autoflow_sample(out: Path, seed: int = 0) -> SampleFlowDataset:
    out = Path(out)
    rng = np.random.default_rng(seed)
    ds = SampleFlowDataset(out, "autoflow")
    h, w = SIZE
    layout = {
        "static_40k_png_1_of_4": ("s0", "s1", "s2"),
        "static_40k_png_2_of_4": ("s3", "s4", "s5", "s6"),
    }
    for part, samples in layout.items():
        for k, name in enumerate(samples):
            d = f"{part}/{name}"
            u, v = k - 1, 1 - k % 2
            f1, f2 = frame_pair(rng, h, w, u, v)
            flow = constant_flow(h, w, u, v)
            source = f"{d}/im0.png"
            if name == "s2":
                flow[:5, :5] = 1e10
                ds.invalid.add(source)
            im1 = encode_image(f2, "PNG")
            if name == "s6":
                im1 = im1[: len(im1) // 2]
                ds.broken[source] = "undecodable"
            _write(out, source, encode_image(f1, "PNG"))
            _write(out, f"{d}/im1.png", im1)
            if name == "s5":
                ds.broken[source] = "missing_flow"
            else:
                _write(out, f"{d}/forward.flo", write_flo(flow))
            if source not in ds.broken:
                ds.rows[source] = "train"
                ds.flows[source] = (u, v)
                ds.sizes[source] = (h, w)
    _write(out, "static_40k_png_1_of_4/s0/backward.flo", write_flo(constant_flow(h, w, 0, 0)))
    ds.broken["static_40k_png_1_of_4/s0/backward.flo"] = "unmatched"
    return ds


def write_sintel_sample(out: Path, seed: int = 0) -> SampleFlowDataset:
    """Both passes; ``rows``/``broken`` describe ``sintel_pass='both'``."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    ds = SampleFlowDataset(out, "sintel")
    h, w = SIZE
    both = ("clean", "final")
    scenes: dict[str, tuple[int, int, tuple[str, ...]]] = {
        "alley_1": (4, 3, both),  # frames, flow files, passes
        "market_2": (3, 2, both),
        "bamboo_1": (3, 1, ("clean",)),
    }
    for s, (n_frames, n_flows, passes) in scenes.items():
        u, v = len(s) % 3 - 1, 1
        frames = [texture(rng, h, w)]
        for _ in range(n_frames - 1):
            frames.append(np.roll(frames[-1], (v, u), axis=(0, 1)))
        for i in range(1, n_flows + 1):
            flo = write_flo(constant_flow(h, w, u, v))
            if (s, i) == ("market_2", 2):
                flo = flo[:-8]
            _write(out, f"training/flow/{s}/frame_{i:04d}.flo", flo)
        for p in passes:
            for i, f in enumerate(frames, start=1):
                pixels = f if p == "clean" else np.clip(f.astype(int) + 10, 0, 255).astype(np.uint8)
                _write(out, f"training/{p}/{s}/frame_{i:04d}.png", encode_image(pixels, "PNG"))
        for p in ("clean", "final"):
            for i in range(1, n_frames):
                source = f"training/{p}/{s}/frame_{i:04d}.png"
                if p not in passes:
                    if i <= n_flows:
                        ds.broken[f"training/flow/{s}/frame_{i:04d}.flo"] = "missing_frames"
                elif (s, i) == ("market_2", 2):
                    ds.broken[source] = "truncated_flo"
                elif i > n_flows:
                    ds.broken[source] = "missing_flow"
                else:
                    ds.rows[source] = f"val_{p}"
                    ds.flows[source] = (u, v)
                    ds.sizes[source] = (h, w)
    _write(out, "training/clean/alley_1/Thumbs.db", b"\x00" * 16)
    ds.broken["training/clean/alley_1/Thumbs.db"] = "unmatched"
    return ds


def write_kitti_sample(out: Path, seed: int = 0) -> SampleFlowDataset:
    out = Path(out)
    rng = np.random.default_rng(seed)
    ds = SampleFlowDataset(out, "kitti")
    h, w = SIZE
    for n in range(7):
        u, v = (n - 3) + 0.25, -1.0 + n / 64  # multiples of 1/64: exact in KITTI's encoding
        f1, f2 = frame_pair(rng, h, w, round(u), round(v))
        valid = rng.random((h, w)) < 0.7
        samples = encode_kitti_flow(constant_flow(h, w, u, v), valid)
        flow_png = write_png(samples)
        source = f"training/image_2/{n:06d}_10.png"
        kind = {3: "interlaced_png", 4: "8bit_png", 5: "missing_frame", 6: "size_mismatch"}.get(n)
        if kind == "interlaced_png":
            flow_png = write_png(samples, interlace=True)
        elif kind == "8bit_png":
            flow_png = encode_image((samples >> 8).astype(np.uint8), "PNG")
        elif kind == "size_mismatch":
            flow_png = write_png(samples[:, :-6])
        _write(out, source, encode_image(f1, "PNG"))
        if kind != "missing_frame":
            _write(out, f"training/image_2/{n:06d}_11.png", encode_image(f2, "PNG"))
        _write(out, f"training/flow_occ/{n:06d}_10.png", flow_png)
        if kind:
            ds.broken[source] = kind
        else:
            ds.rows[source] = "val"
            ds.flows[source] = (u, v)
            ds.sizes[source] = (h, w)
            ds.invalid.add(source)
    _write(out, "training/image_2/000007_09.png", encode_image(texture(rng, h, w), "PNG"))
    ds.broken["training/image_2/000007_09.png"] = "unmatched"
    return ds


WRITERS = {
    "autoflow": write_autoflow_sample,
    "chairs": write_chairs_sample,
    "sintel": write_sintel_sample,
    "kitti": write_kitti_sample,
}


def write_flow_sample(out: Path, layout: str, seed: int = 0) -> SampleFlowDataset:
    """Write the sample dataset of ``layout`` under ``out``."""
    if layout not in WRITERS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {FLOW_LAYOUTS}")
    return WRITERS[layout](Path(out), seed)
