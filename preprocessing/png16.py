"""A small PNG reader and writer that keep 16-bit samples (for KITTI flow ground truth).

Pillow opens a 16-bit RGB PNG as 8-bit RGB without an error (it keeps the high byte), which
would destroy KITTI's flow encoding (``u = (R - 2**15) / 64``). This module decodes PNG with
``zlib`` and numpy instead.

Reader (``read_png``): non-interlaced PNG of colour type 0 (grey), 2 (RGB), 4 (grey + alpha)
or 6 (RGBA) at bit depth 8 or 16, any of the five row filters (None, Sub, Up, Average, Paeth);
chunk CRCs are checked. Returned as an (H, W, C) array of ``uint8`` (depth 8) or ``uint16``
(depth 16, from PNG's big-endian samples). Everything else raises ``PngError`` with the
reason: interlaced (Adam7) images, palette images, bit depths below 8, a bad signature, a
chunk cut short, a CRC mismatch, a missing IHDR/IDAT/IEND, a zlib stream that does not
inflate, or inflated data of the wrong length.

Writer (``write_png``): the same colour types and depths, with a chosen row filter (or one
per row, cycling through all five, so that the reader's filters are exercised), and an
optional Adam7 interlaced mode (used to produce a valid file the reader refuses).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel
COLOUR_TYPE = {1: 0, 3: 2, 2: 4, 4: 6}  # samples per pixel -> colour type
# Adam7 passes: (x0, y0, dx, dy)
ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


class PngError(ValueError):
    """A PNG this module cannot or will not decode; the message is the reason."""


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if len(data) < len(SIGNATURE) or data[:8] != SIGNATURE:
        raise PngError(f"not a PNG: bad signature {data[:8]!r}")
    chunks = []
    pos = 8
    while pos < len(data):
        if pos + 8 > len(data):
            raise PngError(f"truncated PNG: chunk header cut at byte {pos} of {len(data)}")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        end = pos + 8 + length + 4
        if end > len(data):
            raise PngError(
                f"truncated PNG: chunk {ctype.decode('latin-1')!r} needs {length} bytes, "
                f"file ends at byte {len(data)}"
            )
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(ctype + body) != crc:
            raise PngError(f"corrupt PNG: CRC mismatch in chunk {ctype.decode('latin-1')!r}")
        chunks.append((ctype, body))
        pos = end
        if ctype == b"IEND":
            break
    return chunks


def png_header(data: bytes) -> dict[str, int]:
    """The IHDR fields (width, height, bit_depth, colour_type, interlace) of PNG ``data``."""
    if len(data) < 33 or data[:8] != SIGNATURE or data[12:16] != b"IHDR":
        raise PngError("not a PNG: no IHDR chunk after the signature")
    w, h, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return {
        "width": w,
        "height": h,
        "bit_depth": depth,
        "colour_type": ctype,
        "compression": comp,
        "filter": filt,
        "interlace": interlace,
    }


def _unfilter(raw: bytes, height: int, stride: int, bpp: int) -> np.ndarray:
    """Undo the per-row filters: ``raw`` is height x (1 + stride) bytes -> (height, stride)."""
    out = np.zeros((height, stride), dtype=np.uint8)
    prior = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        start = y * (stride + 1)
        ftype = raw[start]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=start + 1)
        if ftype == 0:
            cur = line.copy()
        elif ftype == 1:  # Sub: a running sum per byte position modulo the pixel size
            cur = np.cumsum(line.reshape(-1, bpp), axis=0, dtype=np.uint8).reshape(-1)
        elif ftype == 2:  # Up
            cur = line + prior
        elif ftype in (3, 4):  # Average, Paeth: each byte depends on the one to its left
            buf = bytearray(line.tobytes())
            up = prior.tobytes()
            if ftype == 3:
                for i in range(stride):
                    left = buf[i - bpp] if i >= bpp else 0
                    buf[i] = (buf[i] + ((left + up[i]) >> 1)) & 0xFF
            else:
                for i in range(bpp):
                    buf[i] = (buf[i] + up[i]) & 0xFF  # left = corner = 0: Paeth picks up
                for i in range(bpp, stride):
                    a, b, c = buf[i - bpp], up[i], up[i - bpp]
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    if pa <= pb and pa <= pc:
                        buf[i] = (buf[i] + a) & 0xFF
                    elif pb <= pc:
                        buf[i] = (buf[i] + b) & 0xFF
                    else:
                        buf[i] = (buf[i] + c) & 0xFF
            cur = np.frombuffer(bytes(buf), dtype=np.uint8)
        else:
            raise PngError(f"corrupt PNG: unknown filter type {ftype} on row {y}")
        out[y] = cur
        prior = cur
    return out


def read_png(data: bytes) -> np.ndarray:
    """PNG bytes -> (H, W, C) uint8 or uint16 array with the file's own bit depth."""
    if not data:
        raise PngError("empty file (0 bytes)")
    chunks = _chunks(data)
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise PngError("corrupt PNG: the first chunk is not a 13-byte IHDR")
    w, h, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if interlace:
        raise PngError(
            f"unsupported PNG: interlaced (Adam7) {depth}-bit image; re-save it non-interlaced"
        )
    if ctype not in CHANNELS:
        kind = "palette" if ctype == 3 else f"colour type {ctype}"
        raise PngError(f"unsupported PNG: {kind} image; expected grey, RGB or RGBA")
    if depth not in (8, 16):
        raise PngError(f"unsupported PNG: bit depth {depth}; expected 8 or 16")
    if comp != 0 or filt != 0:
        raise PngError(f"corrupt PNG: compression method {comp}, filter method {filt}")
    if w == 0 or h == 0:
        raise PngError(f"corrupt PNG: zero size {w}x{h}")
    if chunks[-1][0] != b"IEND":
        raise PngError("truncated PNG: no IEND chunk")
    idat = b"".join(body for ctype_, body in chunks if ctype_ == b"IDAT")
    if not idat:
        raise PngError("corrupt PNG: no IDAT chunk")
    try:
        raw = zlib.decompress(idat)
    except zlib.error as exc:
        raise PngError(f"corrupt PNG: image data does not inflate: {exc}") from exc
    channels = CHANNELS[ctype]
    bpp = channels * depth // 8
    stride = w * bpp
    if len(raw) != h * (stride + 1):
        raise PngError(
            f"corrupt PNG: {len(raw)} bytes of image data, {w}x{h} needs {h * (stride + 1)}"
        )
    rows = _unfilter(raw, h, stride, bpp)
    if depth == 16:
        return rows.view(">u2").astype(np.uint16).reshape(h, w, channels)
    return rows.reshape(h, w, channels)


def _filter_row(line: np.ndarray, prior: np.ndarray, ftype: int, bpp: int) -> bytes:
    x = line.astype(np.int32)
    up = prior.astype(np.int32)
    left = np.concatenate([np.zeros(bpp, np.int32), x[:-bpp]])
    corner = np.concatenate([np.zeros(bpp, np.int32), up[:-bpp]])
    if ftype == 0:
        pred = np.zeros_like(x)
    elif ftype == 1:
        pred = left
    elif ftype == 2:
        pred = up
    elif ftype == 3:
        pred = (left + up) >> 1
    else:
        p = left + up - corner
        pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - corner)
        pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, corner))
    return bytes([ftype]) + ((x - pred) & 0xFF).astype(np.uint8).tobytes()


def _filtered(image: np.ndarray, filters: Sequence[int], bpp: int) -> bytes:
    h = image.shape[0]
    rows = image.reshape(h, -1)
    out = bytearray()
    prior = np.zeros(rows.shape[1], dtype=np.uint8)
    for y in range(h):
        out += _filter_row(rows[y], prior, filters[y % len(filters)], bpp)
        prior = rows[y]
    return bytes(out)


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def write_png(
    array: np.ndarray, filters: Sequence[int] = (0, 1, 2, 3, 4), interlace: bool = False
) -> bytes:
    """(H, W) or (H, W, C) uint8/uint16 array -> PNG bytes (C = 1, 2, 3 or 4).

    Row ``y`` uses filter ``filters[y % len(filters)]``; ``interlace`` writes Adam7.
    """
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in COLOUR_TYPE:
        raise ValueError(f"expected (H, W[, 1|2|3|4]), got shape {array.shape}")
    if a.dtype == np.uint8:
        depth = 8
        samples = a
    elif a.dtype == np.uint16:
        depth = 16
        samples = a.astype(">u2")
    else:
        raise ValueError(f"expected uint8 or uint16, got {a.dtype}")
    if any(f not in range(5) for f in filters) or not filters:
        raise ValueError(f"filters must be in 0..4, got {filters}")
    h, w, c = a.shape
    bpp = c * depth // 8
    as_bytes = np.frombuffer(np.ascontiguousarray(samples).tobytes(), np.uint8).reshape(h, w * bpp)
    if interlace:
        raw = b""
        for x0, y0, dx, dy in ADAM7:
            sub = as_bytes.reshape(h, w, bpp)[y0::dy, x0::dx]
            if sub.size:
                raw += _filtered(np.ascontiguousarray(sub), filters, bpp)
    else:
        raw = _filtered(as_bytes, filters, bpp)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, COLOUR_TYPE[c], 0, 0, int(interlace))
    return (
        SIGNATURE
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(raw, 6))
        + _chunk(b"IEND", b"")
    )
