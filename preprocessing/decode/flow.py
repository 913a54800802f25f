"""Optical-flow decode policy: frame pairs + ground truth -> fixed-size arrays.

Convention (Middlebury, FlyingChairs, Sintel, KITTI, AutoFlow): ``flow[y, x] = (u, v)`` means
pixel ``(x, y)`` of frame 1 matches ``(x + u, y + v)`` in frame 2; u is horizontal (to the
right), v vertical (down), in pixels.

Ground-truth formats:

- Middlebury ``.flo`` (FlyingChairs, Sintel, AutoFlow): little-endian; float32 magic
  202021.25 (the bytes ``PIEH``), int32 width, int32 height, then ``height * width`` pairs of
  float32 (u, v), row-major. The file must be exactly ``12 + 8 * width * height`` bytes.
  A value with ``|u| > 1e9`` or ``|v| > 1e9`` (or a NaN/inf) means "unknown": that pixel is
  invalid.
- KITTI 2015 16-bit PNG (``flow_occ``): RGB, 16 bits per sample;
  ``u = (R - 2**15) / 64``, ``v = (G - 2**15) / 64``, valid where ``B > 0``. Read with
  ``preprocessing.decode.png16`` (Pillow would keep only 8 bits).

Frames: PNG or PPM, decoded by Pillow and converted to RGB (8-bit; a 16-bit frame keeps its
high byte).

Geometry policy (target ``height x width``, default 368 x 496; both frames and the flow go
through the same mapping, so the flow stays consistent with the pixels):

1. Input at least the target in both dimensions: center crop, ``top = (H - height) // 2``,
   ``left = (W - width) // 2``. No resampling; flow values unchanged.
2. Otherwise (smaller in one or both dimensions): scale by ``s = max(height / H, width / W)``
   (> 1: an upscale that keeps the aspect ratio) to ``H' = max(height, round(H * s))``,
   ``W' = max(width, round(W * s))``; frames with Pillow ``BILINEAR``; the flow field with the
   same geometry (Pillow ``BILINEAR`` on float32 planes, pixel-centre aligned like the frames),
   then ``u *= W' / W`` and ``v *= H' / H``; then the center crop of step 1.
   Invalid pixels never blend into valid ones: u, v are resampled as
   ``bilinear(flow * valid) / bilinear(valid)`` (a bilinear average over the valid
   neighbours only), and ``valid`` itself is resampled with ``NEAREST`` (a pixel is valid
   if its nearest source pixel is).
3. Flow at invalid pixels is set to 0 in the output.

Result: ``frames`` (2, height, width, 3) uint8, ``flow`` (height, width, 2) float32,
``valid`` (height, width) uint8 (1 = valid).
"""

from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, UnidentifiedImageError

from preprocessing.decode.png16 import PngError, read_png
from preprocessing.engine.records import DecodeError

FLO_MAGIC = 202021.25
FLO_MAGIC_BYTES = struct.pack("<f", FLO_MAGIC)  # b"PIEH"
UNKNOWN_FLOW = 1e9  # |u| or |v| above this: invalid
KITTI_OFFSET = 2**15
KITTI_SCALE = 64.0
FRAME_FORMATS = ("PNG", "PPM")
MAX_FLO_SIDE = 1 << 16


class FlowDecodeError(DecodeError):
    """A sample that cannot become a row; ``stage`` names where it failed."""


# ---------------------------------------------------------------------------------------------
# .flo


def read_flo(data: bytes, name: str = "flow") -> tuple[np.ndarray, np.ndarray]:
    """Middlebury ``.flo`` bytes -> (flow (H, W, 2) float32, valid (H, W) bool)."""
    if len(data) < 12:
        raise FlowDecodeError(
            "decode", f"{name}: truncated .flo: {len(data)} bytes, the header needs 12"
        )
    if data[:4] != FLO_MAGIC_BYTES:
        (got,) = struct.unpack("<f", data[:4])
        raise FlowDecodeError(
            "decode",
            f"{name}: bad .flo magic {data[:4]!r} (float {got:g}), expected {FLO_MAGIC} "
            f"({FLO_MAGIC_BYTES!r})",
        )
    w, h = struct.unpack("<ii", data[4:12])
    if not (0 < w <= MAX_FLO_SIDE and 0 < h <= MAX_FLO_SIDE):
        raise FlowDecodeError("decode", f"{name}: bad .flo size: width={w}, height={h}")
    need = 12 + 8 * w * h
    if len(data) != need:
        kind = "truncated .flo" if len(data) < need else "trailing data after the .flo field"
        raise FlowDecodeError(
            "decode", f"{name}: {kind}: {len(data)} bytes, a {w}x{h} field needs {need}"
        )
    flow = np.frombuffer(data, dtype="<f4", offset=12).reshape(h, w, 2).astype(np.float32)
    return flow, flow_valid(flow)


def flow_valid(flow: np.ndarray) -> np.ndarray:
    """Valid pixels of a .flo field: finite and ``|u|, |v| <= 1e9``."""
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(flow) & (np.abs(flow) <= UNKNOWN_FLOW)
    return np.asarray(ok.all(axis=-1))


def write_flo(flow: np.ndarray) -> bytes:
    """(H, W, 2) array -> Middlebury ``.flo`` bytes (little-endian)."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"expected an (H, W, 2) flow field, got shape {flow.shape}")
    h, w = flow.shape[:2]
    return FLO_MAGIC_BYTES + struct.pack("<ii", w, h) + flow.astype("<f4").tobytes()


# ---------------------------------------------------------------------------------------------
# KITTI 16-bit PNG


def read_kitti_flow(data: bytes, name: str = "flow") -> tuple[np.ndarray, np.ndarray]:
    """KITTI 2015 flow PNG bytes -> (flow (H, W, 2) float32, valid (H, W) bool)."""
    try:
        png = read_png(data)
    except PngError as exc:
        raise FlowDecodeError("decode", f"{name}: KITTI flow PNG: {exc}") from exc
    if png.dtype != np.uint16 or png.shape[2] != 3:
        depth = 16 if png.dtype == np.uint16 else 8
        raise FlowDecodeError(
            "decode",
            f"{name}: unsupported KITTI flow PNG: {depth}-bit with {png.shape[2]} channel(s); "
            "expected 16-bit RGB",
        )
    rgb = png.astype(np.float32)
    flow = (rgb[:, :, :2] - KITTI_OFFSET) / KITTI_SCALE
    return flow, png[:, :, 2] > 0


def encode_kitti_flow(flow: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(H, W, 2) flow and (H, W) mask -> (H, W, 3) uint16 KITTI samples (R, G, B)."""
    out = np.zeros((*flow.shape[:2], 3), dtype=np.uint16)
    scaled = np.clip(np.round(flow * KITTI_SCALE + KITTI_OFFSET), 0, 65535)
    out[:, :, :2] = np.where(valid[:, :, None], scaled, 0).astype(np.uint16)
    out[:, :, 2] = valid.astype(np.uint16)
    return out


# ---------------------------------------------------------------------------------------------
# frames and geometry


def decode_frame(data: bytes, name: str) -> Image.Image:
    """PNG/PPM bytes -> an RGB PIL image (loaded)."""
    if not data:
        raise FlowDecodeError("decode", f"{name}: empty file (0 bytes)")
    try:
        img = Image.open(io.BytesIO(data))
        if img.format not in FRAME_FORMATS:
            raise FlowDecodeError(
                "decode",
                f"{name}: unsupported image format {img.format}; expected one of {FRAME_FORMATS}",
            )
        img.load()
    except UnidentifiedImageError as exc:
        raise FlowDecodeError("decode", f"{name}: not a decodable image: {exc}") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        kind = "truncated file" if "truncated" in str(exc).lower() else "corrupt image data"
        raise FlowDecodeError("decode", f"{name}: {kind}: {type(exc).__name__}: {exc}") from exc
    return img.convert("RGB")


@dataclass
class FittedSample:
    frames: np.ndarray  # (2, h, w, 3) uint8
    flow: np.ndarray  # (h, w, 2) float32
    valid: np.ndarray  # (h, w) uint8
    resized: bool  # step 2 of the policy was applied
    flags: list[str] = field(default_factory=list)


def _center_crop_box(h_in: int, w_in: int, height: int, width: int) -> tuple[int, int]:
    return (h_in - height) // 2, (w_in - width) // 2


def resized_size(h_in: int, w_in: int, height: int, width: int) -> tuple[int, int]:
    """(H', W') of step 2: the upscale that covers the target, keeping the aspect ratio."""
    s = max(height / h_in, width / w_in)
    return max(height, round(h_in * s)), max(width, round(w_in * s))


def _resize_plane(
    plane: np.ndarray, size: tuple[int, int], resample: Image.Resampling
) -> np.ndarray:
    h, w = size
    img = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32), mode="F")
    return np.asarray(img.resize((w, h), resample), dtype=np.float32)


def fit_sample(
    frame1: Image.Image,
    frame2: Image.Image,
    flow: np.ndarray,
    valid: np.ndarray,
    height: int,
    width: int,
) -> FittedSample:
    """Two RGB frames and their flow (same size) -> the target size under the policy."""
    h_in, w_in = flow.shape[:2]
    flow = np.where(valid[:, :, None], flow, 0.0).astype(np.float32)
    resized = h_in < height or w_in < width
    if resized:
        h_new, w_new = resized_size(h_in, w_in, height, width)
        frame1 = frame1.resize((w_new, h_new), Image.Resampling.BILINEAR)
        frame2 = frame2.resize((w_new, h_new), Image.Resampling.BILINEAR)
        weight = _resize_plane(valid.astype(np.float32), (h_new, w_new), Image.Resampling.BILINEAR)
        u = _resize_plane(flow[:, :, 0], (h_new, w_new), Image.Resampling.BILINEAR)
        v = _resize_plane(flow[:, :, 1], (h_new, w_new), Image.Resampling.BILINEAR)
        nearest = _resize_plane(valid.astype(np.float32), (h_new, w_new), Image.Resampling.NEAREST)
        new_valid = (nearest > 0.5) & (weight > 0)
        safe = np.where(weight > 0, weight, 1.0)
        flow = np.stack([u / safe * (w_new / w_in), v / safe * (h_new / h_in)], axis=-1)
        flow = np.where(new_valid[:, :, None], flow, 0.0).astype(np.float32)
        valid = new_valid
        h_in, w_in = h_new, w_new
    top, left = _center_crop_box(h_in, w_in, height, width)
    rows, cols = slice(top, top + height), slice(left, left + width)
    frames = np.stack([np.asarray(f, dtype=np.uint8)[rows, cols] for f in (frame1, frame2)])
    out_valid = valid[rows, cols].astype(np.uint8)
    flags = ["resized"] if resized else []
    if not out_valid.all():
        flags.append("invalid_pixels")
    return FittedSample(
        frames=np.ascontiguousarray(frames),
        flow=np.ascontiguousarray(flow[rows, cols], dtype=np.float32),
        valid=np.ascontiguousarray(out_valid),
        resized=resized,
        flags=flags,
    )


# ---------------------------------------------------------------------------------------------
# one sample


@dataclass
class FlowSample:
    fitted: FittedSample
    orig_height: int
    orig_width: int
    key: str


def sample_key(*blobs: bytes) -> str:
    """sha256 of the sha256 hex digests of frame 1, frame 2 and the flow file, one per line."""
    digests = "\n".join(hashlib.sha256(b).hexdigest() for b in blobs)
    return hashlib.sha256(digests.encode()).hexdigest()


def read_flow_file(data: bytes, flow_format: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    if not data:
        raise FlowDecodeError("decode", f"{name}: empty file (0 bytes)")
    if flow_format == "flo":
        return read_flo(data, name)
    if flow_format == "kitti_png":
        return read_kitti_flow(data, name)
    raise ValueError(f"unknown flow format {flow_format!r}")


def decode_flow_sample(
    frame1: bytes,
    frame2: bytes,
    flow_data: bytes,
    flow_format: str,
    height: int,
    width: int,
    names: tuple[str, str, str] = ("frame 1", "frame 2", "flow"),
) -> FlowSample:
    """The three files of a sample -> the fitted arrays, the original size and the key."""
    img1 = decode_frame(frame1, names[0])
    img2 = decode_frame(frame2, names[1])
    flow, valid = read_flow_file(flow_data, flow_format, names[2])
    fh, fw = flow.shape[:2]
    if img1.size != img2.size or img1.size != (fw, fh):
        raise FlowDecodeError(
            "decode",
            f"size mismatch: frame 1 {img1.width}x{img1.height}, frame 2 "
            f"{img2.width}x{img2.height}, flow {fw}x{fh} (width x height)",
        )
    fitted = fit_sample(img1, img2, flow, valid, height, width)
    return FlowSample(fitted, fh, fw, sample_key(frame1, frame2, flow_data))
