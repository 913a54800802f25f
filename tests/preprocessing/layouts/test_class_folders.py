"""The plain class-folder scan (UCF-101, HMDB-51): split lists, hashed val fraction, rejects."""

import hashlib
import shutil
from pathlib import Path

import pytest

from preprocessing.decode.video import VIDEO_EXTENSIONS
from preprocessing.layouts.class_folders import hashed_split, scan_class_folders
from preprocessing.sample_data.video import UCF_LIST_DIR, encode_clip, write_ucf_sample


def scan(root, **kwargs):
    return scan_class_folders(root, VIDEO_EXTENSIONS, **kwargs)


def write_clip(root: Path, source: str) -> None:
    """A real (tiny) AVI clip at ``root / source``."""
    (root / source).parent.mkdir(parents=True, exist_ok=True)
    (root / source).write_bytes(encode_clip("avi", "mpeg4", (32, 24), 25, 4, 0, 2))


def expected_split(source: str, val_fraction: float) -> str:
    """The documented rule, computed here independently of the layout module."""
    h = int.from_bytes(hashlib.sha256(source.encode("utf-8")).digest()[:8], "big")
    return "val" if h < val_fraction * 2**64 else "train"


@pytest.fixture(scope="module")
def ucf(tmp_path_factory):
    return write_ucf_sample(tmp_path_factory.mktemp("ucf"), split_lists=True)


def test_ucf101_lists_put_every_listed_clip_in_its_split_and_reject_the_rest(ucf):
    s = scan(ucf.root)
    assert s.label_map == ucf.label_map == {"ApplyEyeMakeup": 0, "Archery": 1, "Bowling": 2}
    got = {i.source: (i.split, i.wnid) for i in s.items}
    truncated = next(src for src, kind in ucf.broken.items() if kind == "truncated")
    assert got.pop(truncated)[0] == "train"  # listed: rejected only when decoded
    assert got == ucf.rows
    assert all(i.label == s.label_map[i.wnid] for i in s.items)
    rejected = {r.source: r.reason for r in s.rejected}
    assert {r.stage for r in s.rejected} == {"scan"}
    assert set(rejected) == {src for src, kind in ucf.broken.items() if kind != "truncated"}
    kinds = {kind: rejected.get(src, "") for src, kind in ucf.broken.items()}
    assert kinds["unlisted"].startswith("in none of the UCF-101 split lists")
    assert kinds["missing_clip"] == "listed clip 'Archery/v_Archery_g04_c01.avi' not found"
    assert kinds["unlabelled"] == "unlabelled: not inside a class folder"
    assert kinds["unsupported_extension"].startswith("unsupported extension '.db'")
    assert s.split_rule is not None and s.split_rule.startswith(
        f"UCF-101 split lists {UCF_LIST_DIR}/trainlist01.txt, {UCF_LIST_DIR}/testlist01.txt "
        "(sha256 "
    )
    # README.txt and the lists are not inputs; every other file is a row or a reject
    files = [p for p in ucf.root.rglob("*") if p.is_file()]
    inputs = [p for p in files if p.name != "README.txt" and UCF_LIST_DIR not in p.parts]
    assert s.inputs_seen == len(inputs) + 1  # + the trainlist line whose clip is missing


def test_split_number_picks_the_other_lists_and_must_exist(ucf):
    s = scan(ucf.root, split_number=2)
    splits = {i.source: i.split for i in s.items}
    assert {src for src, split in splits.items() if split == "val"} == {
        src for src in splits if "_g02_" in src
    }
    assert "trainlist02.txt" in str(s.split_rule)
    with pytest.raises(ValueError, match=r"no UCF-101 split lists for split_number=3 .*\[1, 2\]"):
        scan(ucf.root, split_number=3)


def test_without_lists_a_stable_hash_of_the_path_picks_the_split(tmp_path):
    ds = write_ucf_sample(tmp_path / "plain", split_lists=False)
    s = scan(ds.root, val_fraction=0.5)
    assert {i.source: i.split for i in s.items} == {
        i.source: expected_split(i.source, 0.5) for i in s.items
    }
    assert {i.split for i in s.items} == {"train", "val"}
    assert str(s.split_rule).startswith("val_fraction 0.5: ")
    assert {r.source for r in s.rejected} == {
        src for src, kind in ds.broken.items() if kind != "truncated"
    }
    # adding clips (and a class) moves no clip that was there
    before = {i.source: i.split for i in s.items}
    for k in range(6):
        write_clip(ds.root, f"Archery/v_Archery_g09_c{k:02d}.avi")
    after = {i.source: i.split for i in scan(ds.root, val_fraction=0.5).items}
    assert {src: after[src] for src in before} == before and len(after) == len(before) + 6
    assert {i.split for i in scan(ds.root, val_fraction=0.0).items} == {"train"}


def test_the_hashed_share_is_close_to_val_fraction():
    names = [f"class_{k % 7}/clip_{k:05d}.mp4" for k in range(20_000)]
    share = sum(hashed_split(n, 0.2) == "val" for n in names) / len(names)
    assert abs(share - 0.2) < 0.01
    assert [hashed_split(n, 0.2) for n in names[:50]] == [
        expected_split(n, 0.2) for n in names[:50]
    ]


def test_classind_order_gives_the_labels_and_unknown_folders_are_rejected(tmp_path):
    for name in ("Zumba", "Archery", "Extra"):
        write_clip(tmp_path, f"{name}/v_{name}_g01_c01.avi")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "classInd.txt").write_text("1 Zumba\n2 Archery\n")
    s = scan(tmp_path, val_fraction=0.0)
    assert s.label_map == {"Zumba": 0, "Archery": 1}  # the file's order, not sorted
    assert {i.source: i.label for i in s.items} == {
        "Zumba/v_Zumba_g01_c01.avi": 0,
        "Archery/v_Archery_g01_c01.avi": 1,
    }
    assert [(r.source, r.reason) for r in s.rejected] == [
        ("Extra/v_Extra_g01_c01.avi", "class folder 'Extra' is not in lists/classInd.txt")
    ]


def test_conflicting_and_duplicate_lines_are_rejected_once_each(tmp_path):
    clips = [f"A/v_A_g0{g}_c01.avi" for g in (1, 2, 3)]
    for source in clips:
        write_clip(tmp_path, source)
    lists = tmp_path / "splits"
    lists.mkdir()
    (lists / "trainlist01.txt").write_text(f"{clips[0]} 1\n{clips[1]} 1\n{clips[1]} 1\n")
    (lists / "testlist01.txt").write_text(f"{clips[2]}\n{clips[0]}\n")
    s = scan(tmp_path)
    assert {i.source: i.split for i in s.items} == {clips[1]: "train", clips[2]: "val"}
    first = "splits/trainlist01.txt"
    assert sorted((r.source, r.reason) for r in s.rejected) == [
        (clips[0], f"listed in both splits: train at {first}:1, val at splits/testlist01.txt:2"),
        ("splits/testlist01.txt:2", f"duplicate line: {clips[0]!r} is already listed at {first}:1"),
        (f"{first}:3", f"duplicate line: {clips[1]!r} is already listed at {first}:2"),
    ]
    assert s.inputs_seen == 3 + 2  # three clips, two extra lines


def test_hmdb51_split_files(tmp_path):
    for source in ("brush_hair/a.avi", "brush_hair/b.avi", "brush_hair/c.avi", "cartwheel/d.avi"):
        write_clip(tmp_path, source)
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    (splits / "brush_hair_test_split1.txt").write_text("a.avi 1 \nb.avi 2 \nc.avi 0 \n")
    (splits / "cartwheel_test_split1.txt").write_text("d.avi 1\nmissing.avi 2\n")
    (splits / "cartwheel_test_split2.txt").write_text("d.avi 2\n")
    s = scan(tmp_path)
    assert {i.source: i.split for i in s.items} == {
        "brush_hair/a.avi": "train",
        "brush_hair/b.avi": "val",
        "cartwheel/d.avi": "train",
    }
    assert s.label_map == {"brush_hair": 0, "cartwheel": 1}
    assert sorted((r.source, r.reason) for r in s.rejected) == [
        (
            "brush_hair/c.avi",
            "not in HMDB-51 split 1: marked 0 at "
            "testTrainMulti_7030_splits/brush_hair_test_split1.txt:3",
        ),
        (
            "testTrainMulti_7030_splits/cartwheel_test_split1.txt:2",
            "listed clip 'cartwheel/missing.avi' not found",
        ),
    ]
    assert str(s.split_rule).startswith("HMDB-51 split lists ")
    assert {i.source: i.split for i in scan(tmp_path, split_number=2).items} == {
        "cartwheel/d.avi": "val"
    }


def test_layout_errors_are_value_errors_that_say_what_is_wrong(tmp_path, ucf):
    with pytest.raises(ValueError, match="does not exist"):
        scan(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no class folders"):
        scan(tmp_path / "empty")
    # the parent of the class folders: the lists name no clip under it
    parent = tmp_path / "parent"
    shutil.copytree(ucf.root, parent / "UCF-101")
    shutil.move(parent / "UCF-101" / UCF_LIST_DIR, parent / UCF_LIST_DIR)
    with pytest.raises(ValueError, match="should be the folder holding the class folders"):
        scan(parent)
    (parent / UCF_LIST_DIR / "testlist01.txt").unlink()
    with pytest.raises(ValueError, match=r"trainlist01\.txt' has no partner"):
        scan(parent)
    (parent / UCF_LIST_DIR / "x_test_split1.txt").write_text("a.avi 1\n")
    with pytest.raises(ValueError, match=r"both UCF-101 .* and HMDB-51"):
        scan(parent)
    bad = tmp_path / "bad_index"
    write_clip(bad, "A/a.avi")
    (bad / "classInd.txt").write_text("1 A\nB\n")
    with pytest.raises(ValueError, match=r"classInd.txt:2: expected '<index> <class>', got 'B'"):
        scan(bad)
