"""Class folders of clips without split folders: ``<root>/<class>/<clip>`` (UCF-101, HMDB-51).

``<root>`` is the folder that holds the class folders (UCF-101's ``UCF-101/``, HMDB-51's
folder of class folders). How clips are put in the splits ``train`` and ``val``, in order:

1. UCF-101 split lists, found anywhere under the root (the release ships them in
   ``ucfTrainTestlist/``): ``trainlist0N.txt`` -> ``train``, ``testlist0N.txt`` -> ``val``,
   N = ``split_number``. A line is a clip's path relative to the root, ``<class>/<clip>``;
   in a trainlist it is followed by the class's index in ``classInd.txt``, which is not used
   (the label is the class folder's).
2. HMDB-51 split files, anywhere under the root: ``<class>_test_split<N>.txt``, lines
   ``<clip> <k>`` for the clip ``<class>/<clip>``: k = 1 -> ``train``, 2 -> ``val``, 0 -> not
   in split N.
3. Neither: a share ``val_fraction`` of the clips goes to ``val``, chosen by a stable hash of
   the clip's path relative to the root (``source``, UTF-8): the clip is in ``val`` when the
   first 8 bytes of ``sha256(source)``, read as a big-endian integer h, satisfy
   ``h < val_fraction * 2**64``. A clip's split depends on its path alone, so adding clips
   never moves another one (incremental runs rely on it). Clips cut from one source video
   (UCF-101's ``_gNN_`` groups) can land in both splits: use the official lists where the
   dataset has them.

The rule used, with a digest of the lists it read, is recorded (``ScanResult.split_rule``, the
manifest's ``split_rule``); a later run whose rule differs is refused.

Class folders are the root's folders, except the ones holding split lists or
``classInd.txt``. Labels: with a ``classInd.txt`` (UCF-101: lines ``<index> <class>``, from 1)
the label of a class is its index - 1, the official numbering; without one, the index in the
sorted class folder names (torchvision's ``ImageFolder``).

Every file in a class folder is accounted for, rejected at stage ``scan`` with the reason when
it cannot become a row: an unsupported extension, a class folder not in ``classInd.txt``, and
with split lists a clip no list of split N names, a clip listed in both splits, or an HMDB-51
clip marked 0. So is every list line: a line naming a missing clip, or a second line for a
clip, is rejected with ``<list>:<line>`` as its source. A clip lying directly in the root is
rejected as unlabelled; other files in the root (README, the lists) and the files in the
lists' folders are not inputs.

Errors (``ValueError``): no class folder; split lists, but none for split N (the error names
the splits found); a trainlist without its testlist or the reverse, or two copies of one;
UCF-101 and HMDB-51 lists together; more than one ``classInd.txt``, or a malformed one;
lists none of whose lines names an existing clip (``<root>`` is then not the folder holding
the class folders).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from preprocessing.engine.records import InputFile, Rejected, ScanResult

SPLITS = ("train", "val")
CLASS_INDEX = "classInd.txt"
UCF_LIST = re.compile(r"^(train|test)list(\d+)\.txt$")
HMDB_LIST = re.compile(r"^(.+)_test_split(\d+)\.txt$")
HMDB_SPLITS = {"1": "train", "2": "val", "0": ""}  # "": not in this split


def hashed_split(source: str, val_fraction: float) -> str:
    """``val`` for a share ``val_fraction`` of paths, chosen by the path's sha256; else
    ``train``. Depends on ``source`` alone."""
    h = int.from_bytes(hashlib.sha256(source.encode()).digest()[:8], "big")
    return "val" if h < val_fraction * 2**64 else "train"


@dataclass
class SplitLists:
    """What the split lists of split N say, clip by clip."""

    kind: str  # "UCF-101" or "HMDB-51"
    files: list[str]  # the lists read, relative to the root
    digest: str  # sha256 of their names and bytes, shortened
    # clip -> [(split, "<list>:<line>")], in the order the lines were read
    listed: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)  # HMDB-51 clip -> where it is 0

    def add(self, clip: str, split: str, where: str) -> None:
        if split:
            self.listed.setdefault(clip, []).append((split, where))
        else:
            self.excluded.setdefault(clip, where)

    @property
    def rule(self) -> str:
        return f"{self.kind} split lists {', '.join(self.files)} (sha256 {self.digest})"


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def find_split_lists(root: Path, metadata: list[str], split_number: int) -> SplitLists | None:
    """The UCF-101 or HMDB-51 lists of split ``split_number`` among ``metadata`` (paths
    relative to ``root``); None when there are none of either kind."""
    ucf: dict[int, dict[str, str]] = {}
    hmdb: dict[int, list[str]] = {}
    for rel in metadata:
        name = rel.rsplit("/", 1)[-1]
        if m := UCF_LIST.match(name):
            pair = ucf.setdefault(int(m[2]), {})
            if m[1] in pair:
                raise ValueError(f"two copies of {name} under {str(root)!r}: {pair[m[1]]}, {rel}")
            pair[m[1]] = rel
        elif m := HMDB_LIST.match(name):
            hmdb.setdefault(int(m[2]), []).append(rel)
    if ucf and hmdb:
        raise ValueError(
            f"{str(root)!r} holds both UCF-101 (trainlist/testlist) and HMDB-51 "
            "(<class>_test_split<N>.txt) split lists: keep one kind"
        )
    found = ucf or hmdb
    if not found:
        return None
    kind = "UCF-101" if ucf else "HMDB-51"
    if split_number not in found:
        raise ValueError(
            f"no {kind} split lists for split_number={split_number} under {str(root)!r}; "
            f"found split(s) {sorted(found)}"
        )
    if ucf:
        pair = ucf[split_number]
        if set(pair) != {"train", "test"}:
            have = next(iter(pair.values()))
            raise ValueError(
                f"{have!r} has no partner: split {split_number} needs trainlist"
                f"{split_number:02d}.txt and testlist{split_number:02d}.txt"
            )
        files = [pair["train"], pair["test"]]
    else:
        files = sorted(hmdb[split_number])
    blob = hashlib.sha256()
    for rel in files:
        blob.update(rel.encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    lists = SplitLists(kind, files, blob.hexdigest()[:16])
    for rel in files:
        name = rel.rsplit("/", 1)[-1]
        hmdb_class = m[1] if (m := HMDB_LIST.match(name)) and not ucf else ""
        for n, line in enumerate(_text(root / rel).splitlines(), start=1):
            words = line.split()
            if not words:
                continue
            where = f"{rel}:{n}"
            if ucf:
                lists.add(words[0], "train" if name.startswith("train") else "val", where)
            elif len(words) == 2 and words[1] in HMDB_SPLITS:
                lists.add(f"{hmdb_class}/{words[0]}", HMDB_SPLITS[words[1]], where)
            else:
                raise ValueError(f"{where}: expected '<clip> <0|1|2>', got {line.strip()!r}")
    return lists


def read_class_index(root: Path, rel: str) -> dict[str, int]:
    """``classInd.txt`` (lines ``<index> <class>``, from 1) -> class -> index - 1."""
    label_map: dict[str, int] = {}
    for n, line in enumerate(_text(root / rel).splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        if len(words) != 2 or not words[0].isdigit() or int(words[0]) < 1:
            raise ValueError(f"{rel}:{n}: expected '<index> <class>', got {line.strip()!r}")
        index, name = int(words[0]) - 1, words[1]
        if name in label_map or index in label_map.values():
            raise ValueError(f"{rel}:{n}: class {name!r} or index {index + 1} repeats")
        label_map[name] = index
    if not label_map:
        raise ValueError(f"{rel} lists no class")
    return dict(sorted(label_map.items(), key=lambda kv: kv[1]))


def _is_metadata(name: str) -> bool:
    return name == CLASS_INDEX or bool(UCF_LIST.match(name) or HMDB_LIST.match(name))


def scan_class_folders(
    root: Path,
    extensions: tuple[str, ...],
    val_fraction: float = 0.2,
    split_number: int = 1,
) -> ScanResult:
    """Walk ``<root>/<class>/`` and put every clip in a split (see the module doc).

    ``extensions`` (lower case) are the clips' file types.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"input directory {str(root)!r} does not exist or is not a directory")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    metadata = [rel for rel in paths if _is_metadata(rel.rsplit("/", 1)[-1])]
    metadata_dirs = {rel.split("/")[0] for rel in metadata if "/" in rel}
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in metadata_dirs)
    if not classes:
        raise ValueError(
            f"input directory {str(root)!r} holds no class folders: expected "
            "<root>/<class>/<clip>.mp4 (or <root>/{train,val}/<class>/<clip>.mp4)"
        )
    index_files = [rel for rel in metadata if rel.rsplit("/", 1)[-1] == CLASS_INDEX]
    if len(index_files) > 1:
        raise ValueError(f"more than one {CLASS_INDEX} under {str(root)!r}: {index_files}")
    if index_files:
        label_map, label_origin = read_class_index(root, index_files[0]), index_files[0]
    else:
        label_map, label_origin = {c: i for i, c in enumerate(classes)}, "the class folders"
    lists = find_split_lists(root, metadata, split_number)

    items: list[InputFile] = []
    rejected: list[Rejected] = []
    clips: set[str] = set()
    for source in paths:
        parts = source.split("/")
        if parts[0] in metadata_dirs:
            continue  # the lists' folder: not inputs
        suffix = Path(source).suffix.lower()
        if len(parts) == 1:
            if suffix in extensions:
                rejected.append(Rejected(source, "scan", "unlabelled: not inside a class folder"))
            continue  # a README, the lists or classInd.txt beside the class folders
        if suffix not in extensions:
            rejected.append(
                Rejected(
                    source,
                    "scan",
                    f"unsupported extension {Path(source).suffix!r}; expected one of {extensions}",
                )
            )
            continue
        clips.add(source)
        cls = parts[0]
        if cls not in label_map:
            rejected.append(
                Rejected(source, "scan", f"class folder {cls!r} is not in {label_origin}")
            )
            continue
        if lists is None:
            split = hashed_split(source, val_fraction)
        else:
            entries = lists.listed.get(source, [])
            splits = {s for s, _ in entries}
            if len(splits) > 1:
                where = ", ".join(f"{s} at {w}" for s, w in entries)
                rejected.append(Rejected(source, "scan", f"listed in both splits: {where}"))
                continue
            if not entries:
                why = (
                    f"not in {lists.kind} split {split_number}: marked 0 at "
                    f"{lists.excluded[source]}"
                    if source in lists.excluded
                    else f"in none of the {lists.kind} split lists {lists.files}"
                )
                rejected.append(Rejected(source, "scan", why))
                continue
            split = entries[0][0]
        items.append(InputFile(source, split, cls, label_map[cls]))

    if lists is not None:
        if not clips & set(lists.listed):
            raise ValueError(
                f"none of the clips listed in {lists.files} is under {str(root)!r}: "
                "--input should be the folder holding the class folders"
            )
        for clip, entries in lists.listed.items():
            first = entries[0][1]
            rejected += [
                Rejected(where, "scan", f"duplicate line: {clip!r} is already listed at {first}")
                for _, where in entries[1:]
            ]
            if clip not in clips:
                rejected.append(Rejected(first, "scan", f"listed clip {clip!r} not found"))
    rule = (
        lists.rule
        if lists is not None
        else f"val_fraction {val_fraction}: val when sha256(source)[:8] < val_fraction * 2**64"
    )
    rejected.sort(key=lambda r: r.source)
    return ScanResult(items=items, rejected=rejected, label_map=label_map, split_rule=rule)
