"""The decode policy on real files: the shared CMYK and grayscale JPEGs and generated ones."""

import io

import numpy as np
import pytest
from PIL import Image

from preprocessing.images import ImageDecodeError, decode_image, resized_size


def direct_pil(path_or_bytes, size=224):
    """The documented policy written out with plain Pillow calls."""
    img = Image.open(io.BytesIO(path_or_bytes)).convert("RGB")
    w, h = img.size
    nw, nh = (size, int(size * h / w)) if w <= h else (int(size * w / h), size)
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    top, left = round((nh - size) / 2), round((nw - size) / 2)
    return np.asarray(img.crop((left, top, left + size, top + size)))


@pytest.mark.parametrize("name, mode", [("pil_sample_cmyk.jpg", "CMYK"), ("hopper_gray.jpg", "L")])
def test_real_cmyk_and_gray_jpegs_become_rgb(shared_samples, name, mode):
    data = (shared_samples / "images" / name).read_bytes()
    assert Image.open(io.BytesIO(data)).mode == mode
    out = decode_image(data)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, direct_pil(data))
    if mode == "L":  # grayscale replicated to three equal channels
        np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_wide_image_is_resized_on_its_shorter_side_and_center_cropped():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(100, 300, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    out = decode_image(buf.getvalue(), resize_to=50, crop_size=40)
    assert out.shape == (40, 40, 3)
    resized = np.asarray(Image.fromarray(arr).resize((150, 50), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(out, resized[5:45, 55:95])


def test_resized_size_keeps_aspect_with_floor():
    assert resized_size(500, 375, 224) == (298, 224)
    assert resized_size(375, 500, 224) == (224, 298)
    assert resized_size(224, 224, 224) == (224, 224)


def test_broken_inputs_raise_with_a_reason():
    with pytest.raises(ImageDecodeError, match="empty file"):
        decode_image(b"")
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(buf, format="JPEG")
    with pytest.raises(ImageDecodeError, match=r"truncated file: OSError"):
        decode_image(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageDecodeError, match="not a decodable image"):
        decode_image(b"hello, not an image")
    gif = io.BytesIO()
    Image.new("P", (8, 8)).save(gif, format="GIF")
    with pytest.raises(ImageDecodeError, match="unsupported image format GIF"):
        decode_image(gif.getvalue())


def test_crop_larger_than_resize_is_a_value_error():
    with pytest.raises(ValueError, match="crop_size=256 must not exceed resize_to=224"):
        decode_image(b"x", resize_to=224, crop_size=256)
