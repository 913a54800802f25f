"""Optical-flow layouts: AutoFlow, FlyingChairs, MPI-Sintel and KITTI 2015.

One input is one sample: frame 1 + frame 2 + the ground-truth flow of frame 1. Its
``source`` is frame 1's path. A sample missing a partner is one input, rejected at stage
``scan`` with the missing paths in the reason; its source is frame 1 if it exists, else the
flow file, else frame 2.

Layouts (``layout=`` or detected by ``detect_flow_layout``):

- ``autoflow``: ``<root>/static_40k_png_<k>_of_4/<sample>/{im0.png, im1.png, forward.flo}``
  (the root may also be one ``static_40k_png_<k>_of_4`` folder). Every file under a part
  folder is accounted for; anything else there is rejected as unmatched. Split ``train``.
- ``chairs``: ``NNNNN_img1.ppm``, ``NNNNN_img2.ppm``, ``NNNNN_flow.flo`` anywhere under the
  root, grouped by folder and number. Files with an image or flow extension (``.ppm``,
  ``.png``, ``.jpg``, ``.jpeg``, ``.flo``) that do not fit the naming are rejected as
  unmatched; other files (README, split lists) are not inputs. Split ``train``, unless a
  ``FlyingChairs_train_val.txt`` is found: line n (``1`` train, ``2`` val) is the split of
  sample number n; a sample without a line is rejected.
- ``sintel``: ``<root>/training/{clean,final}/<scene>/frame_XXXX.png`` and
  ``<root>/training/flow/<scene>/frame_XXXX.flo``: sample ``(frame_i, frame_i+1, flow_i)``
  per pass and scene; the last frame of a scene is only a frame 2. ``sintel_pass`` selects
  ``clean``, ``final`` or ``both`` (two samples per flow file, in splits ``val_clean`` and
  ``val_final``). Only these folders are read (not ``albedo``, ``occlusions``, ``invalid``,
  ``test``); any other file in them is rejected as unmatched. A flow file whose frame 1 is
  missing is rejected once per pass.
- ``kitti``: ``<root>/training/image_2/NNNNNN_{10,11}.png`` and
  ``<root>/training/flow_occ/NNNNNN_10.png`` (16-bit PNG). Only those two folders are read;
  any other file in them is rejected as unmatched. Split ``val``.

``split`` (``train`` or ``val``) puts every sample in that split instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from preprocessing.engine.records import FlowPair, Rejected, ScanResult

LAYOUTS = ("autoflow", "chairs", "sintel", "kitti")
SPLITS = ("train", "val", "val_clean", "val_final")
SINTEL_PASSES = ("clean", "final")
CHAIRS_SPLIT_FILE = "FlyingChairs_train_val.txt"
AUTOFLOW_PART = re.compile(r"^static_40k_png_\d+_of_\d+$")
AUTOFLOW_NAMES = {"im0.png": 0, "im1.png": 1, "forward.flo": 2}
CHAIRS_NAME = re.compile(r"^(\d+)_(img1|img2|flow)\.(ppm|flo)$")
CHAIRS_ROLE = {("img1", "ppm"): 0, ("img2", "ppm"): 1, ("flow", "flo"): 2}
CHAIRS_DATA_EXT = (".ppm", ".png", ".jpg", ".jpeg", ".flo")
SINTEL_FRAME = re.compile(r"^frame_(\d+)\.png$")
SINTEL_FLOW = re.compile(r"^frame_(\d+)\.flo$")
KITTI_FRAME = re.compile(r"^(\d{6})_(10|11)\.png$")
KITTI_FLOW = re.compile(r"^(\d{6})_10\.png$")
ROLES = ("frame 1", "frame 2", "flow")
LAYOUT_HELP = {
    "autoflow": "<root>/static_40k_png_<k>_of_4/<sample>/{im0.png,im1.png,forward.flo}",
    "chairs": "NNNNN_img1.ppm, NNNNN_img2.ppm, NNNNN_flow.flo anywhere under <root>",
    "sintel": "<root>/training/{clean,final}/<scene>/frame_XXXX.png + "
    "<root>/training/flow/<scene>/frame_XXXX.flo",
    "kitti": "<root>/training/image_2/NNNNNN_{10,11}.png + <root>/training/flow_occ/NNNNNN_10.png",
}


@dataclass
class _Candidate:
    """A sample as found: the three paths (None when missing) and where they should be."""

    paths: list[str | None]
    expected: tuple[str, str, str]
    split: str


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def _autoflow_parts(root: Path) -> list[Path]:
    if AUTOFLOW_PART.match(root.name):
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and AUTOFLOW_PART.match(p.name))


def _has_chairs_file(root: Path) -> bool:
    return any(CHAIRS_NAME.match(p.name) for p in root.rglob("*_img1.ppm"))


def detect_flow_layout(root: Path) -> str:
    """The layout of ``root``; ``ValueError`` when none or more than one fits."""
    root = Path(root)
    found = []
    if _autoflow_parts(root):
        found.append("autoflow")
    if _has_chairs_file(root):
        found.append("chairs")
    training = root / "training"
    if (training / "flow").is_dir() and any((training / p).is_dir() for p in SINTEL_PASSES):
        found.append("sintel")
    if (training / "image_2").is_dir() and (training / "flow_occ").is_dir():
        found.append("kitti")
    if len(found) == 1:
        return found[0]
    expected = "; ".join(f"{k}: {v}" for k, v in LAYOUT_HELP.items())
    if not found:
        raise ValueError(
            f"input directory {str(root)!r} matches no optical-flow layout; expected one of "
            f"{expected}"
        )
    raise ValueError(
        f"input directory {str(root)!r} is ambiguous: it looks like {' and '.join(found)}; "
        f"pass --layout {'|'.join(found)}"
    )


def _resolve(
    candidates: list[_Candidate], flow_format: str
) -> tuple[list[FlowPair], list[Rejected]]:
    items, rejected = [], []
    for c in candidates:
        f1, f2, fl = c.paths
        if f1 is not None and f2 is not None and fl is not None:
            items.append(FlowPair(f1, c.split, f2, fl, flow_format))
            continue
        source = f1 or fl or f2
        assert source is not None
        missing = [
            f"{r} {e!r}" for r, p, e in zip(ROLES, c.paths, c.expected, strict=True) if p is None
        ]
        have = [f"{r} {p!r}" for r, p in zip(ROLES, c.paths, strict=True) if p is not None]
        rejected.append(
            Rejected(source, "scan", f"missing {', '.join(missing)} (found {', '.join(have)})")
        )
    return items, rejected


def _unmatched(source: str, expected: str) -> Rejected:
    return Rejected(source, "scan", f"unmatched file: not part of a sample; expected {expected}")


def _scan_autoflow(root: Path, split: str) -> tuple[list[_Candidate], list[Rejected]]:
    parts = _autoflow_parts(root)
    if not parts:
        raise ValueError(f"{str(root)!r} holds no static_40k_png_<k>_of_4 folder")
    groups: dict[tuple[str, str], list[str | None]] = {}
    rejected = []
    for part in parts:
        for path in _files(part):
            source = path.relative_to(root).as_posix()
            rel = path.relative_to(part).parts
            if len(rel) != 2 or rel[1] not in AUTOFLOW_NAMES:
                rejected.append(_unmatched(source, LAYOUT_HELP["autoflow"]))
                continue
            groups.setdefault((part.name, rel[0]), [None, None, None])[AUTOFLOW_NAMES[rel[1]]] = (
                source
            )
    candidates = []
    for (part_name, sample), paths in sorted(groups.items()):
        prefix = "" if parts == [root] else f"{part_name}/"
        expected = (
            f"{prefix}{sample}/im0.png",
            f"{prefix}{sample}/im1.png",
            f"{prefix}{sample}/forward.flo",
        )
        candidates.append(_Candidate(paths, expected, split))
    return candidates, rejected


def _chairs_splits(root: Path) -> tuple[str, list[str]] | None:
    found = sorted(root.rglob(CHAIRS_SPLIT_FILE))
    if not found:
        return None
    if len(found) > 1:
        raise ValueError(f"more than one {CHAIRS_SPLIT_FILE} under {str(root)!r}: {found}")
    lines = found[0].read_text().split()
    bad = sorted({v for v in lines if v not in ("1", "2")})
    if bad:
        raise ValueError(f"{str(found[0])!r}: values must be 1 (train) or 2 (val), got {bad}")
    return found[0].relative_to(root).as_posix(), ["train" if v == "1" else "val" for v in lines]


def _scan_chairs(root: Path, split: str | None) -> tuple[list[_Candidate], list[Rejected]]:
    split_file = None if split else _chairs_splits(root)
    groups: dict[tuple[str, str], list[str | None]] = {}
    rejected = []
    for path in _files(root):
        if path.suffix.lower() not in CHAIRS_DATA_EXT:
            continue
        source = path.relative_to(root).as_posix()
        m = CHAIRS_NAME.match(path.name)
        role = CHAIRS_ROLE.get((m.group(2), m.group(3))) if m else None
        if m is None or role is None:
            rejected.append(_unmatched(source, "NNNNN_img1.ppm, NNNNN_img2.ppm, NNNNN_flow.flo"))
            continue
        folder = path.parent.relative_to(root).as_posix()
        groups.setdefault((folder, m.group(1)), [None, None, None])[role] = source
    candidates = []
    for (folder, number), paths in sorted(groups.items()):
        prefix = "" if folder == "." else f"{folder}/"
        expected = (
            f"{prefix}{number}_img1.ppm",
            f"{prefix}{number}_img2.ppm",
            f"{prefix}{number}_flow.flo",
        )
        sample_split = split or "train"
        if split_file is not None:
            name, splits = split_file
            n = int(number)
            if not 1 <= n <= len(splits):
                source = next(p for p in paths if p is not None)
                rejected.append(
                    Rejected(
                        source,
                        "scan",
                        f"no split for sample {number}: {name} has {len(splits)} lines",
                    )
                )
                continue
            sample_split = splits[n - 1]
        candidates.append(_Candidate(paths, expected, sample_split))
    return candidates, rejected


def _scan_sintel(
    root: Path, passes: tuple[str, ...], split: str | None
) -> tuple[list[_Candidate], list[Rejected]]:
    training = root / "training"
    rejected = []
    flows: dict[str, dict[int, str]] = {}
    for path in _files(training / "flow"):
        source = path.relative_to(root).as_posix()
        rel = path.relative_to(training / "flow").parts
        m = SINTEL_FLOW.match(rel[-1])
        if len(rel) != 2 or m is None:
            rejected.append(_unmatched(source, LAYOUT_HELP["sintel"]))
            continue
        flows.setdefault(rel[0], {})[int(m.group(1))] = source
    candidates = []
    for pass_name in passes:
        frames: dict[str, dict[int, str]] = {}
        for path in _files(training / pass_name):
            source = path.relative_to(root).as_posix()
            rel = path.relative_to(training / pass_name).parts
            m = SINTEL_FRAME.match(rel[-1])
            if len(rel) != 2 or m is None:
                rejected.append(_unmatched(source, LAYOUT_HELP["sintel"]))
                continue
            frames.setdefault(rel[0], {})[int(m.group(1))] = source
        sample_split = split or f"val_{pass_name}"
        for scene in sorted({*frames, *flows}):
            f, fl = frames.get(scene, {}), flows.get(scene, {})
            used: set[int] = set()
            for i in sorted({*f, *fl}):
                if i in f and i not in fl and i + 1 not in f:
                    continue  # a last frame (or a lone one: see below)
                expected = (
                    f"training/{pass_name}/{scene}/frame_{i:04d}.png",
                    f"training/{pass_name}/{scene}/frame_{i + 1:04d}.png",
                    f"training/flow/{scene}/frame_{i:04d}.flo",
                )
                candidates.append(
                    _Candidate([f.get(i), f.get(i + 1), fl.get(i)], expected, sample_split)
                )
                used.update(j for j in (i, i + 1) if j in f)
            for i in sorted(set(f) - used):
                rejected.append(
                    Rejected(
                        f[i],
                        "scan",
                        f"unmatched file: frame {i} has no frame {i - 1} or {i + 1} and no "
                        "flow file",
                    )
                )
    return candidates, rejected


def _scan_kitti(root: Path, split: str) -> tuple[list[_Candidate], list[Rejected]]:
    training = root / "training"
    groups: dict[str, list[str | None]] = {}
    rejected = []
    for folder, pattern in (("image_2", KITTI_FRAME), ("flow_occ", KITTI_FLOW)):
        for path in _files(training / folder):
            source = path.relative_to(root).as_posix()
            rel = path.relative_to(training / folder).parts
            m = pattern.match(rel[-1])
            if len(rel) != 1 or m is None:
                rejected.append(_unmatched(source, LAYOUT_HELP["kitti"]))
                continue
            role = 2 if folder == "flow_occ" else (0 if m.group(2) == "10" else 1)
            groups.setdefault(m.group(1), [None, None, None])[role] = source
    candidates = [
        _Candidate(
            paths,
            (
                f"training/image_2/{n}_10.png",
                f"training/image_2/{n}_11.png",
                f"training/flow_occ/{n}_10.png",
            ),
            split,
        )
        for n, paths in sorted(groups.items())
    ]
    return candidates, rejected


def scan_flow(
    root: Path,
    layout: str = "auto",
    sintel_pass: str = "both",
    split: str | None = None,
) -> tuple[str, ScanResult]:
    """(the layout, its samples and scan-stage rejects) for ``root``; no label map."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"input directory {str(root)!r} does not exist or is not a directory")
    if layout == "auto":
        layout = detect_flow_layout(root)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    if split is not None and split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', got {split!r}")
    flow_format = "flo"
    if layout == "autoflow":
        candidates, rejected = _scan_autoflow(root, split or "train")
    elif layout == "chairs":
        candidates, rejected = _scan_chairs(root, split)
    elif layout == "sintel":
        if sintel_pass not in (*SINTEL_PASSES, "both"):
            raise ValueError(f"sintel_pass must be clean, final or both, got {sintel_pass!r}")
        passes = SINTEL_PASSES if sintel_pass == "both" else (sintel_pass,)
        if not (root / "training" / "flow").is_dir():
            raise ValueError(f"{str(root)!r} has no training/flow/: expected {LAYOUT_HELP[layout]}")
        candidates, rejected = _scan_sintel(root, passes, split)
    else:
        if not (root / "training" / "image_2").is_dir():
            raise ValueError(
                f"{str(root)!r} has no training/image_2/: expected {LAYOUT_HELP[layout]}"
            )
        candidates, rejected = _scan_kitti(root, split or "val")
        flow_format = "kitti_png"
    items, incomplete = _resolve(candidates, flow_format)
    if not items and not incomplete and not rejected:
        raise ValueError(f"no {layout} samples under {str(root)!r}: expected {LAYOUT_HELP[layout]}")
    rejected = sorted([*rejected, *incomplete], key=lambda r: (r.source, r.reason))
    return layout, ScanResult(items=items, rejected=rejected, label_map={})
