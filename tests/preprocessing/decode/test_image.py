"""The decode policy on real files: the shared CMYK and grayscale JPEGs and generated ones."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from preprocessing.decode.image import (
    ImageDecodeError,
    _decode_jpeg_fast,
    decode_image,
    resized_size,
)


def _new_size(w, h, size):
    return (size, int(size * h / w)) if w <= h else (int(size * w / h), size)


def direct_pil(path_or_bytes, size=224):
    """Resize + center crop written out with plain Pillow calls (BILINEAR)."""
    img = Image.open(io.BytesIO(path_or_bytes)).convert("RGB")
    nw, nh = _new_size(*img.size, size)
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    top, left = round((nh - size) / 2), round((nw - size) / 2)
    return np.asarray(img.crop((left, top, left + size, top + size)))


def direct_policy(path_or_bytes, size=224):
    """The documented policy written out: Pillow decode to RGB, torch antialiased bilinear
    resize of the (1, 3, H, W) uint8 image, center crop."""
    arr = np.array(Image.open(io.BytesIO(path_or_bytes)).convert("RGB"))
    nw, nh = _new_size(arr.shape[1], arr.shape[0], size)
    x = torch.from_numpy(arr).permute(2, 0, 1)[None]
    x = torch.nn.functional.interpolate(x, size=(nh, nw), mode="bilinear", antialias=True)
    out = x[0].permute(1, 2, 0).numpy()
    top, left = round((nh - size) / 2), round((nw - size) / 2)
    return out[top : top + size, left : left + size]


def assert_close_to_pillow(out, pil, max_fraction_off=0.01):
    """Torch's uint8 antialiased bilinear follows Pillow's BILINEAR to within 1."""
    diff = np.abs(out.astype(int) - pil.astype(int))
    assert diff.max() <= 1
    assert (diff > 0).mean() < max_fraction_off


def _jpeg(arr, **save):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", **save)
    return buf.getvalue()


@pytest.mark.parametrize(
    "save",
    [
        {"quality": 90},
        {"quality": 75, "subsampling": 0},  # 4:4:4
        {"quality": 95, "subsampling": 1},  # 4:2:2
        {"quality": 85, "progressive": True},
    ],
)
def test_fast_jpeg_decode_is_pixel_identical_to_pillow(save):
    rng = np.random.default_rng(3)
    arr = np.asarray(
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((160, 120))
    )
    data = _jpeg(arr, **save)
    fast = _decode_jpeg_fast(data)
    assert fast is not None and fast.shape == (120, 160, 3) and fast.dtype == np.uint8
    np.testing.assert_array_equal(fast, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))


@pytest.mark.parametrize("name, mode", [("pil_sample_cmyk.jpg", "CMYK"), ("hopper_gray.jpg", "L")])
def test_real_cmyk_and_gray_jpegs_become_rgb(shared_samples, name, mode):
    data = (shared_samples / "images" / name).read_bytes()
    assert Image.open(io.BytesIO(data)).mode == mode
    out = decode_image(data)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, direct_policy(data))
    assert_close_to_pillow(out, direct_pil(data), max_fraction_off=0.06)  # upscaled 128 -> 224
    if mode == "L":  # grayscale replicated to three equal channels
        np.testing.assert_array_equal(out[..., 0], out[..., 2])
        np.testing.assert_array_equal(  # libjpeg-turbo's gray -> RGB equals Pillow's
            _decode_jpeg_fast(data), np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        )
    else:  # libjpeg-turbo does not convert CMYK: Pillow decodes it
        assert _decode_jpeg_fast(data) is None


def test_wide_image_is_resized_on_its_shorter_side_and_center_cropped():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(100, 300, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    out = decode_image(buf.getvalue(), resize_to=50, crop_size=40)
    assert out.shape == (40, 40, 3)
    x = torch.from_numpy(arr).permute(2, 0, 1)[None]
    x = torch.nn.functional.interpolate(x, size=(50, 150), mode="bilinear", antialias=True)
    np.testing.assert_array_equal(out, x[0].permute(1, 2, 0).numpy()[5:45, 55:95])
    resized = np.asarray(Image.fromarray(arr).resize((150, 50), Image.Resampling.BILINEAR))
    assert np.abs(out.astype(int) - resized[5:45, 55:95].astype(int)).max() <= 1


def test_photo_like_jpeg_follows_pillows_bilinear_within_one():
    rng = np.random.default_rng(1)
    base = Image.fromarray(rng.integers(0, 256, (16, 21, 3), dtype=np.uint8))
    arr = np.asarray(base.resize((500, 375), Image.Resampling.BICUBIC)).astype(int)
    arr = np.clip(arr + rng.integers(-12, 13, arr.shape), 0, 255).astype(np.uint8)
    data = _jpeg(arr, quality=90)
    out = decode_image(data)
    np.testing.assert_array_equal(out, direct_policy(data))
    assert_close_to_pillow(out, direct_pil(data))


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
