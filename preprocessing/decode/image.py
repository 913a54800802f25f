"""The image decode policy, shared by the Ray Data job, the tests and anyone re-deriving a row.

Policy (torchvision's ``Resize(resize_to, antialias=True) + CenterCrop(crop_size)`` on the
decoded uint8 image, the computation ``torchvision.transforms.v2`` does for uint8 tensors):

1. Decode the whole file. JPEG goes through libjpeg-turbo straight into a numpy array
   (``simplejpeg``, accurate integer IDCT and fancy upsampling: Pillow's decoder and settings,
   pixel-identical to ``Image.open(...).convert("RGB")``) when it is YCbCr or grayscale; a
   CMYK/YCCK JPEG, a JPEG libjpeg-turbo refuses (a truncated or corrupt file), one with more
   pixels than Pillow's ``MAX_IMAGE_PIXELS``, and every PNG
   go through Pillow (``Image.open`` + ``load``), which raises for a truncated or corrupt
   file and for content that is not JPEG or PNG, whatever the file's name; the error it
   raises is the quarantine reason.
2. RGB: grayscale is replicated to 3 channels, CMYK (including Adobe-inverted CMYK, which
   Pillow un-inverts on decode) is converted, palette images are expanded, and an alpha
   channel is dropped (Pillow's ``convert("RGB")``). EXIF orientation is *not* applied
   (ImageNet's labels were made on the stored pixels).
3. Resize, keeping the aspect ratio, so that the shorter side is ``resize_to`` pixels and the
   longer side is ``int(resize_to * long / short)`` (floor); resampling is antialiased
   bilinear (``torch.nn.functional.interpolate(mode="bilinear", antialias=True)`` on uint8,
   torch's uint8 kernel; it follows Pillow's ``BILINEAR`` filter and differs from it by at
   most 1: in about 0.15% of values when downscaling ImageNet-sized JPEGs, about 5% when
   upscaling a 128-pixel one). An image already that size is not resampled.
4. Center-crop to ``crop_size`` x ``crop_size``: top = ``round((height - crop_size) / 2)``,
   left = ``round((width - crop_size) / 2)`` (Python's round, half to even).

The result is a (crop_size, crop_size, 3) ``uint8`` array in HWC order.

Speed: on a 500x375 JPEG this takes about 0.55 of the time of the plain Pillow path (decode,
``convert``, ``resize(BILINEAR)``, crop); Pillow's resize alone costs more than the decode.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from preprocessing.engine.records import DecodeError

SUPPORTED_FORMATS = ("JPEG", "PNG")
SUPPORTED_EXTENSIONS = (".jpeg", ".jpg", ".png")
# JPEG colour spaces decoded by libjpeg-turbo straight to RGB, exactly as Pillow decodes them.
FAST_JPEG_COLORSPACES = ("YCbCr", "Gray")


class ImageDecodeError(DecodeError):
    """An image file that cannot become a row; ``stage`` names where it failed."""


def resized_size(width: int, height: int, resize_to: int) -> tuple[int, int]:
    """(width, height) after resizing the shorter side to ``resize_to``."""
    if width <= height:
        return resize_to, int(resize_to * height / width)
    return int(resize_to * width / height), resize_to


def decode_image(data: bytes, resize_to: int = 224, crop_size: int = 224) -> np.ndarray:
    """Encoded JPEG/PNG bytes -> (crop_size, crop_size, 3) uint8 under the module's policy."""
    if crop_size > resize_to:
        raise ValueError(f"crop_size={crop_size} must not exceed resize_to={resize_to}")
    if not data:
        raise ImageDecodeError("decode", "empty file (0 bytes)")
    rgb = _decode_jpeg_fast(data)
    if rgb is None:
        rgb = _decode_with_pillow(data)
    out = resize_and_center_crop(rgb, resize_to, crop_size)
    if out.shape != (crop_size, crop_size, 3):  # an invariant of the policy above
        raise ImageDecodeError("decode", f"unexpected decoded shape {out.shape}")
    return out


def _decode_jpeg_fast(data: bytes) -> np.ndarray | None:
    """A JPEG libjpeg-turbo decodes cleanly to RGB -> (H, W, 3) uint8; anything else -> None
    (policy step 1: Pillow then decodes it, or names what is wrong with it)."""
    import simplejpeg

    if not data.startswith(b"\xff\xd8\xff"):  # JPEG start-of-image marker
        return None
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
        if colorspace not in FAST_JPEG_COLORSPACES:
            return None  # CMYK/YCCK: Pillow's conversion (and Adobe un-inversion) is the policy
        if height * width > (Image.MAX_IMAGE_PIXELS or 0):
            return None
        return simplejpeg.decode_jpeg(
            data, colorspace="RGB", fastdct=False, fastupsample=False, strict=True
        )
    except (ValueError, RuntimeError):
        return None


def _decode_with_pillow(data: bytes) -> np.ndarray:
    """Encoded bytes -> (H, W, 3) uint8 via Pillow, or the ``ImageDecodeError`` naming why not."""
    img: Image.Image
    try:
        img = Image.open(io.BytesIO(data))
        fmt = img.format
        if fmt not in SUPPORTED_FORMATS:
            raise ImageDecodeError(
                "decode", f"unsupported image format {fmt}; expected one of {SUPPORTED_FORMATS}"
            )
        img.load()
    except UnidentifiedImageError as exc:
        raise ImageDecodeError("decode", f"not a decodable image: {exc}") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        kind = "truncated file" if "truncated" in str(exc).lower() else "corrupt image data"
        raise ImageDecodeError("decode", f"{kind}: {type(exc).__name__}: {exc}") from exc
    return np.array(img.convert("RGB"), dtype=np.uint8)  # a writable copy, for torch


def resize_and_center_crop(rgb: np.ndarray, resize_to: int, crop_size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (crop_size, crop_size, 3) uint8 (a view): steps 3-4 of the policy.

    Also the frame policy of ``preprocessing.decode.video``.
    """
    import torch

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {rgb.dtype} {rgb.shape}")
    height, width = rgb.shape[:2]
    new_w, new_h = resized_size(width, height, resize_to)
    if (new_w, new_h) != (width, height):
        # (1, 3, H, W) in channels-last memory: torch's fast uint8 antialiased kernel, the
        # one ``interpolate(mode="bilinear", antialias=True)`` calls. Through its ``out=``
        # form it writes straight into an HWC array; ``interpolate`` returns channels-first
        # memory, whose HWC view costs a transposing copy (measured 0.29 ms at 224x224).
        src = rgb if rgb.flags.writeable and rgb.flags.c_contiguous else np.array(rgb)
        x = torch.from_numpy(src).permute(2, 0, 1).unsqueeze(0)  # (1, 3, H, W)
        resized = np.empty((new_h, new_w, 3), np.uint8)
        out = torch.from_numpy(resized).permute(2, 0, 1).unsqueeze(0)  # (1, 3, new_h, new_w)
        torch.ops.aten._upsample_bilinear2d_aa.out(x, [new_h, new_w], False, None, None, out=out)
        rgb = resized
    top = round((new_h - crop_size) / 2)
    left = round((new_w - crop_size) / 2)
    # A view: the one copy is made when the row goes into the shard's page.
    return rgb[top : top + crop_size, left : left + crop_size]
