"""The 16-bit-preserving PNG reader/writer, checked against Pillow where Pillow is exact."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from preprocessing.decode.png16 import PngError, png_header, read_png, write_png


def _pillow_png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")  # adaptive filters, chosen per row
    return buf.getvalue()


def test_reads_pillow_encoded_8bit_rgb_and_rgba_exactly():
    rng = np.random.default_rng(0)
    smooth = np.asarray(
        Image.fromarray(rng.integers(0, 256, (9, 12, 3), dtype=np.uint8)).resize((61, 47))
    )
    for array in (smooth, rng.integers(0, 256, (13, 17, 4), dtype=np.uint8)):
        got = read_png(_pillow_png(array))
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize("filters", [(0,), (1,), (2,), (3,), (4,), (0, 1, 2, 3, 4)])
def test_16bit_rgb_round_trip_keeps_16_bits_and_pillow_sees_the_high_byte(filters):
    rng = np.random.default_rng(1)
    array = rng.integers(0, 65536, (11, 19, 3), dtype=np.uint16)
    data = write_png(array, filters)
    got = read_png(data)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, array)
    # an independent decoder: Pillow reduces 16-bit RGB to 8 bits by keeping the high byte
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), array >> 8)


def test_16bit_grey_agrees_with_pillow_i16():
    array = np.arange(0, 65536, 97, dtype=np.uint16)[:600].reshape(20, 30)
    data = write_png(array)
    im = Image.open(io.BytesIO(data))
    assert im.mode == "I;16"
    np.testing.assert_array_equal(np.asarray(im), array)
    np.testing.assert_array_equal(read_png(data)[:, :, 0], array)


def test_interlaced_png_is_valid_but_refused_with_a_reason():
    array = np.random.default_rng(2).integers(0, 65536, (10, 14, 3), dtype=np.uint16)
    data = write_png(array, interlace=True)
    assert png_header(data)["interlace"] == 1
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), array >> 8)
    with pytest.raises(PngError, match=r"interlaced \(Adam7\) 16-bit image"):
        read_png(data)


def test_corrupt_and_unsupported_files_name_the_reason():
    data = write_png(np.zeros((4, 4, 3), np.uint16))
    with pytest.raises(PngError, match="empty file"):
        read_png(b"")
    with pytest.raises(PngError, match="bad signature"):
        read_png(b"GIF89a" + data[6:])
    with pytest.raises(PngError, match="truncated PNG"):
        read_png(data[:40])
    flipped = bytearray(data)
    flipped[-20] ^= 0xFF  # inside the IDAT body
    with pytest.raises(PngError, match="CRC mismatch in chunk 'IDAT'"):
        read_png(bytes(flipped))
    palette = io.BytesIO()
    Image.new("P", (4, 4)).save(palette, format="PNG")
    with pytest.raises(PngError, match="palette image"):
        read_png(palette.getvalue())
    # IDAT holding fewer rows than IHDR declares
    ihdr = struct.pack(">IIBBBBB", 4, 9, 16, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" + b"\x00" * 24)

    def chunk(t: bytes, b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b))

    short = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    with pytest.raises(PngError, match="25 bytes of image data, 4x9 needs 225"):
        read_png(short)
