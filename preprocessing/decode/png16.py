"""PNG with its 16-bit samples kept (KITTI flow ground truth), decoded and encoded by PyAV.

Pillow opens a 16-bit RGB PNG as 8-bit RGB without an error (it keeps the high byte), which
would destroy KITTI's flow encoding (``u = (R - 2**15) / 64``). FFmpeg's PNG decoder keeps
the 16 bits (``rgb48be`` frames), but it is lenient: it ignores chunk CRCs, and an image whose
data ends early comes back with the missing rows zero, without an error. So ``read_png``
checks the file's structure first and lets FFmpeg do the pixel work:

1. Structure (this module; no pixel is touched): the signature; every chunk whole, with the
   right CRC; a 13-byte IHDR first; colour type 0 (grey), 2 (RGB), 4 (grey + alpha) or
   6 (RGBA) at bit depth 8 or 16, not interlaced; at least one IDAT; IEND last; and the image
   data inflates (zlib) to exactly the ``height * (1 + width * bytes per pixel)`` bytes the
   IHDR's size needs. Anything else raises ``PngError`` with the reason: a bad signature, a
   chunk cut short, a CRC mismatch, palette images, bit depths below 8, interlaced (Adam7)
   images (the KITTI devkit writes none; re-save them non-interlaced), a missing
   IHDR/IDAT/IEND, a zlib stream that does not inflate, or inflated data of the wrong length.
2. Pixels: FFmpeg's ``png`` decoder through PyAV (the five row filters, the big-endian
   samples) -> an (H, W, C) array of ``uint8`` (depth 8) or ``uint16`` (depth 16), C = 1, 2,
   3 or 4 as the colour type says.

``write_png`` encodes with FFmpeg's ``png`` encoder, in the 16-bit pixel formats too, with a
chosen row filter or FFmpeg's per-row choice among all five, and optionally Adam7 interlaced
(which the sample data uses to produce a valid file this reader refuses).

This module replaced a hand-written zlib + numpy codec whose Average and Paeth filters ran a
Python loop per byte (a 1242 x 375 16-bit RGB flow file, KITTI's size, Paeth-filtered: 0.76 s
to read, now 10 ms); it keeps that codec's checks and messages.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel
COLOUR_TYPE = {1: 0, 3: 2, 2: 4, 4: 6}  # samples per pixel -> colour type
# (samples per pixel, bit depth) -> FFmpeg's pixel format (16-bit PNG samples are big-endian)
PIX_FMT = {
    (1, 8): "gray",
    (2, 8): "ya8",
    (3, 8): "rgb24",
    (4, 8): "rgba",
    (1, 16): "gray16be",
    (2, 16): "ya16be",
    (3, 16): "rgb48be",
    (4, 16): "rgba64be",
}
# PNG row filter -> FFmpeg's ``pred`` option; all five together: "mixed" (chosen per row)
PREDICTORS = {0: "none", 1: "sub", 2: "up", 3: "avg", 4: "paeth"}


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


def check_structure(data: bytes) -> tuple[int, int, int, int]:
    """Step 1 of ``read_png``: (width, height, channels, bit depth) of a PNG this module
    decodes, or the ``PngError`` saying why not."""
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
        inflated = len(zlib.decompress(idat))
    except zlib.error as exc:
        raise PngError(f"corrupt PNG: image data does not inflate: {exc}") from exc
    channels = CHANNELS[ctype]
    need = h * (1 + w * channels * depth // 8)  # a filter byte, then the row's samples
    if inflated != need:
        raise PngError(f"corrupt PNG: {inflated} bytes of image data, {w}x{h} needs {need}")
    return w, h, channels, depth


def read_png(data: bytes) -> np.ndarray:
    """PNG bytes -> (H, W, C) uint8 or uint16 array with the file's own bit depth."""
    import av

    w, h, channels, depth = check_structure(data)
    expected = PIX_FMT[(channels, depth)]
    codec: Any = av.CodecContext.create("png", "r")
    try:
        frames = codec.decode(av.Packet(data))
    except av.FFmpegError as exc:
        raise PngError(f"corrupt PNG: FFmpeg: {exc}") from exc
    if len(frames) != 1:
        raise PngError(f"corrupt PNG: FFmpeg decoded {len(frames)} images")
    frame = frames[0]
    if frame.format.name != expected or (frame.width, frame.height) != (w, h):
        raise PngError(
            f"unsupported PNG: FFmpeg decoded {frame.width}x{frame.height} "
            f"{frame.format.name}, the header says {w}x{h} {expected}"
        )
    plane = frame.planes[0]
    row_bytes = w * channels * depth // 8
    # (h, line_size) bytes -> (h, row_bytes): FFmpeg pads each line
    rows = np.frombuffer(memoryview(plane), np.uint8).reshape(h, plane.line_size)[:, :row_bytes]
    if depth == 16:
        return np.ascontiguousarray(rows).view(">u2").astype(np.uint16).reshape(h, w, channels)
    return rows.reshape(h, w, channels).copy()


def write_png(
    array: np.ndarray, filters: Sequence[int] = (0, 1, 2, 3, 4), interlace: bool = False
) -> bytes:
    """(H, W) or (H, W, C) uint8/uint16 array -> PNG bytes (C = 1, 2, 3 or 4) by FFmpeg.

    ``filters``: one PNG row filter (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth) for every row,
    or all five, FFmpeg's ``mixed`` predictor (the best filter for each row). ``interlace``
    writes Adam7.
    """
    import av

    a = np.asarray(array)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in COLOUR_TYPE:
        raise ValueError(f"expected (H, W[, 1|2|3|4]), got shape {array.shape}")
    if a.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected uint8 or uint16, got {a.dtype}")
    if len(filters) == 1 and filters[0] in PREDICTORS:
        predictor = PREDICTORS[filters[0]]
    elif sorted(filters) == sorted(PREDICTORS):
        predictor = "mixed"
    else:
        raise ValueError(f"filters must be one of 0..4, or all five; got {filters}")
    h, w, c = a.shape
    depth = 8 * a.dtype.itemsize
    pix_fmt = PIX_FMT[(c, depth)]
    codec: Any = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = w, h, pix_fmt
    codec.options = {"pred": predictor}
    if interlace:
        codec.flags |= av.codec.context.Flags.interlaced_dct  # FFmpeg's switch for Adam7
    frame = av.VideoFrame(w, h, pix_fmt)
    plane = frame.planes[0]
    lines = np.zeros((h, plane.line_size), np.uint8)  # (h, line_size): padded rows
    samples = a.astype(">u2") if depth == 16 else a
    lines[:, : w * c * depth // 8] = np.ascontiguousarray(samples).view(np.uint8).reshape(h, -1)
    plane.update(lines.tobytes())
    packets = codec.encode(frame) + codec.encode(None)
    return b"".join(bytes(p) for p in packets)
