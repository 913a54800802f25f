"""Write a small ImageNet-layout dataset of real JPEG/PNG files, for demos and tests.

Layout: ``<out>/{train,val}/<wnid>/<wnid>_<n>.JPEG``. Each class has its own hue with random
brightness, noise and distractor rectangles, so a small model can learn it in a few epochs.
Sizes and aspect ratios vary. Among the files, on purpose (all in ``train/``):

- a grayscale JPEG (mode L), a CMYK JPEG and a progressive JPEG, which must decode to RGB;
- a palette PNG named ``.JPEG`` (as ImageNet itself has), decoded by content;
- a truncated JPEG and a zero-byte file, which must be quarantined, not crash the job.
"""

from __future__ import annotations

import colorsys
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

# The first ten ILSVRC-2012 classes (tench ... ostrich), in their sorted order.
DEFAULT_WNIDS = (
    "n01440764",
    "n01443537",
    "n01484850",
    "n01491361",
    "n01494475",
    "n01496331",
    "n01498041",
    "n01514668",
    "n01514859",
    "n01518878",
)


@dataclass
class SampleDataset:
    root: Path
    wnids: tuple[str, ...]
    files: dict[str, int] = field(default_factory=dict)  # split -> number of files written
    broken: list[str] = field(default_factory=list)  # sources that must be quarantined
    special: dict[str, str] = field(default_factory=dict)  # kind -> source

    @property
    def total_files(self) -> int:
        return sum(self.files.values())


def class_image(rng: np.random.Generator, class_index: int, num_classes: int) -> Image.Image:
    """An RGB image whose dominant hue identifies the class."""
    width = int(rng.integers(120, 420))
    height = int(np.clip(width * rng.uniform(0.5, 2.0), 96, 480))
    hue = class_index / num_classes
    value = rng.uniform(0.55, 1.0)
    r, g, b = colorsys.hsv_to_rgb(hue, rng.uniform(0.6, 1.0), value)
    base = np.array([r, g, b]) * 255.0
    pixels = base + rng.normal(0.0, 18.0, size=(height, width, 3))
    for _ in range(int(rng.integers(1, 4))):  # distractor rectangles of random colour
        x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
        w, h = int(rng.integers(8, width // 3)), int(rng.integers(8, height // 3))
        pixels[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 255, size=3)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")


def _jpeg_bytes(img: Image.Image, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90, **kwargs)
    return buf.getvalue()


def write_imagenet_sample(
    out: Path,
    num_classes: int = 5,
    train_per_class: int = 24,
    val_per_class: int = 8,
    seed: int = 0,
) -> SampleDataset:
    """Write the sample dataset under ``out`` (which must not hold one already)."""
    if not 2 <= num_classes <= len(DEFAULT_WNIDS):
        raise ValueError(f"num_classes must be in [2, {len(DEFAULT_WNIDS)}], got {num_classes}")
    if train_per_class < 4 or val_per_class < 1:
        raise ValueError(
            f"need train_per_class >= 4 and val_per_class >= 1, got {train_per_class}, "
            f"{val_per_class}"
        )
    out = Path(out)
    rng = np.random.default_rng(seed)
    wnids = DEFAULT_WNIDS[:num_classes]
    ds = SampleDataset(root=out, wnids=wnids)
    for split, per_class in (("train", train_per_class), ("val", val_per_class)):
        written = 0
        for ci, wnid in enumerate(wnids):
            class_dir = out / split / wnid
            class_dir.mkdir(parents=True, exist_ok=True)
            for n in range(per_class):
                source = f"{split}/{wnid}/{wnid}_{n}.JPEG"
                img = class_image(rng, ci, num_classes)
                kind = (split, ci, n)
                if kind == ("train", 0, 0):
                    data = _jpeg_bytes(img.convert("L"))
                    ds.special["grayscale"] = source
                elif kind == ("train", 1 % num_classes, 1):
                    data = _jpeg_bytes(img.convert("CMYK"))
                    ds.special["cmyk"] = source
                elif kind == ("train", 2 % num_classes, 2):
                    data = _jpeg_bytes(img, progressive=True)
                    ds.special["progressive"] = source
                elif kind == ("train", 0, 3):
                    buf = io.BytesIO()
                    img.convert("P", palette=Image.Palette.ADAPTIVE).save(buf, format="PNG")
                    data = buf.getvalue()
                    ds.special["palette_png"] = source
                elif kind == ("train", 1 % num_classes, 2):
                    full = _jpeg_bytes(img)
                    data = full[: len(full) // 2]
                    ds.special["truncated"] = source
                    ds.broken.append(source)
                elif kind == ("train", 2 % num_classes, 3):
                    data = b""
                    ds.special["empty"] = source
                    ds.broken.append(source)
                else:
                    data = _jpeg_bytes(img)
                (out / source).write_bytes(data)
                written += 1
        ds.files[split] = written
    return ds
