"""The image decode policy, shared by the Ray Data job, the tests and anyone re-deriving a row.

Policy (identical to torchvision's ``Resize(resize_to) + CenterCrop(crop_size)`` on a PIL
image decoded by ImageFolder's default loader):

1. Decode the whole file with Pillow (``Image.open`` + ``load``). A truncated or corrupt
   file raises here; so does a file whose content is not JPEG or PNG, whatever its name.
2. Convert to RGB with ``Image.convert("RGB")``: grayscale is replicated to 3 channels,
   CMYK (including Adobe-inverted CMYK, which Pillow un-inverts on decode) is converted,
   palette images are expanded, and an alpha channel is dropped. EXIF orientation is *not*
   applied (ImageNet's labels were made on the stored pixels).
3. Resize, keeping the aspect ratio, so that the shorter side is ``resize_to`` pixels and the
   longer side is ``int(resize_to * long / short)`` (floor); resampling is Pillow's
   ``BILINEAR`` with its built-in antialiasing. An image already that size is not resampled.
4. Center-crop to ``crop_size`` x ``crop_size``: top = ``round((height - crop_size) / 2)``,
   left = ``round((width - crop_size) / 2)`` (Python's round, half to even).

The result is a (crop_size, crop_size, 3) ``uint8`` array in HWC order.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from preprocessing.records import DecodeError

SUPPORTED_FORMATS = ("JPEG", "PNG")
SUPPORTED_EXTENSIONS = (".jpeg", ".jpg", ".png")


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
    out = resize_and_center_crop(img.convert("RGB"), resize_to, crop_size)
    if out.shape != (crop_size, crop_size, 3):  # an invariant of the policy above
        raise ImageDecodeError("decode", f"unexpected decoded shape {out.shape}")
    return out


def resize_and_center_crop(img: Image.Image, resize_to: int, crop_size: int) -> np.ndarray:
    """An RGB PIL image -> (crop_size, crop_size, 3) uint8: steps 3-4 of the policy.

    Also the frame policy of ``preprocessing.video``.
    """
    size = resized_size(img.width, img.height, resize_to)
    if size != (img.width, img.height):
        img = img.resize(size, Image.Resampling.BILINEAR)
    top = round((img.height - crop_size) / 2)
    left = round((img.width - crop_size) / 2)
    img = img.crop((left, top, left + crop_size, top + crop_size))
    return np.asarray(img, dtype=np.uint8)
