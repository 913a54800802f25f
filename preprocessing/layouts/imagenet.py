"""The ImageNet ILSVRC-2012 folder layout: ``<root>/{train,val}/<wnid>/<file>``.

Labels follow torchvision's ``ImageFolder``: the class index of a wnid is its position in the
sorted list of class folders. The class list is taken from ``train/`` (or from ``val/`` when
there is no ``train/``), and ``val/`` uses the same map, so both splits agree.

Every file under a split folder is accounted for: a file with an unsupported extension, a
file lying directly in the split folder (no class), or one in a class folder unknown to the
class list is rejected at stage ``scan`` with the reason, never silently skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from preprocessing.decode.image import SUPPORTED_EXTENSIONS
from preprocessing.engine.records import InputFile, Rejected

SPLITS = ("train", "val")


@dataclass(frozen=True)
class ImageNetScan:
    files: list[InputFile]
    rejected: list[Rejected]
    label_map: dict[str, int]

    @property
    def inputs_seen(self) -> int:
        return len(self.files) + len(self.rejected)


def _class_dirs(split_dir: Path) -> list[str]:
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir())


def scan_imagenet(
    root: Path,
    extensions: tuple[str, ...] = SUPPORTED_EXTENSIONS,
    example: str = "the ImageNet layout <root>/{train,val}/<wnid>/<image>.JPEG",
) -> ImageNetScan:
    """Walk ``root`` and classify every file under ``train/`` and ``val/``.

    ``extensions`` (lower case) are the inputs' file types; ``example`` names the layout in
    the error for a root without split folders. The video modality reuses this scan.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"input directory {str(root)!r} does not exist or is not a directory")
    present = [s for s in SPLITS if (root / s).is_dir()]
    if not present:
        raise ValueError(
            f"input directory {str(root)!r} has neither 'train/' nor 'val/': expected {example}"
        )
    classes = _class_dirs(root / present[0])
    if not classes:
        raise ValueError(f"{str(root / present[0])!r} holds no class folders")
    label_map = {wnid: i for i, wnid in enumerate(classes)}

    files: list[InputFile] = []
    rejected: list[Rejected] = []
    for split in present:
        for path in sorted(p for p in (root / split).rglob("*") if p.is_file()):
            rel = path.relative_to(root)
            source = rel.as_posix()
            parts = rel.parts  # (split, wnid, ..., name)
            if len(parts) < 3:
                rejected.append(Rejected(source, "scan", "unlabelled: not inside a class folder"))
                continue
            wnid = parts[1]
            if path.suffix.lower() not in extensions:
                rejected.append(
                    Rejected(
                        source,
                        "scan",
                        f"unsupported extension {path.suffix!r}; expected one of {extensions}",
                    )
                )
                continue
            if wnid not in label_map:
                rejected.append(
                    Rejected(
                        source, "scan", f"class folder {wnid!r} is not among {present[0]}'s classes"
                    )
                )
                continue
            files.append(InputFile(source, split, wnid, label_map[wnid]))
    return ImageNetScan(files=files, rejected=rejected, label_map=label_map)
