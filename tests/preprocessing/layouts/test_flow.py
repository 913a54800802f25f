"""Optical-flow layout scans and detection (``preprocessing.layouts.flow``), no Ray."""

import pytest

from preprocessing.layouts.flow import detect_flow_layout, scan_flow
from preprocessing.sample_data.flow import FLOW_LAYOUTS, write_flow_sample


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow-layouts")
    return {layout: write_flow_sample(root / layout, layout) for layout in FLOW_LAYOUTS}


@pytest.mark.parametrize("layout", FLOW_LAYOUTS)
def test_detects_each_layout_and_accounts_for_every_input(samples, layout):
    ds = samples[layout]
    assert detect_flow_layout(ds.root) == layout
    found, scan = scan_flow(ds.root)
    assert found == layout
    scan_rejects = {r.source for r in scan.rejected}
    items = {i.source: i.split for i in scan.items}
    # decode-stage cases are items here; every other broken input is a scan reject
    assert scan_rejects <= set(ds.broken) and set(ds.broken) == scan_rejects | (
        set(items) - set(ds.rows)
    )
    assert {s: items[s] for s in ds.rows} == ds.rows
    assert scan.inputs_seen == ds.total_inputs and scan.label_map == {}


def test_ambiguous_and_unknown_roots_are_errors(samples, tmp_path):
    with pytest.raises(ValueError, match="matches no optical-flow layout; expected one of"):
        detect_flow_layout(tmp_path)
    write_flow_sample(tmp_path / "a", "sintel")
    write_flow_sample(tmp_path / "a" / "extra", "chairs")
    with pytest.raises(ValueError, match="ambiguous: it looks like chairs and sintel; pass"):
        scan_flow(tmp_path / "a")
    layout, scan = scan_flow(tmp_path / "a", layout="sintel")
    assert layout == "sintel" and len(scan.items) == 11


def test_sintel_pass_selection_and_split_override(samples):
    root = samples["sintel"].root
    _, clean = scan_flow(root, "sintel", sintel_pass="clean")
    assert {i.split for i in clean.items} == {"val_clean"}
    assert all(i.source.startswith("training/clean/") for i in clean.items)
    assert len(clean.items) == 6  # 5 rows + market_2 frame 2 (its flow is truncated)
    assert sorted(r.source for r in clean.rejected) == [
        "training/clean/alley_1/Thumbs.db",
        "training/clean/bamboo_1/frame_0002.png",
    ]
    _, both = scan_flow(root, "sintel", split="train")
    assert {i.split for i in both.items} == {"train"} and len(both.items) == 11
    missing = next(r for r in both.rejected if r.source.endswith("bamboo_1/frame_0001.flo"))
    assert missing.reason.startswith(
        "missing frame 1 'training/final/bamboo_1/frame_0001.png', frame 2 "
        "'training/final/bamboo_1/frame_0002.png'"
    )


def test_chairs_split_file_and_a_sample_it_does_not_list(samples, tmp_path):
    ds = samples["chairs"]
    _, scan = scan_flow(ds.root, "chairs")
    assert sorted(i.source for i in scan.items if i.split == "val") == [
        "data/00002_img1.ppm",
        "data/00006_img1.ppm",
    ]
    _, forced = scan_flow(ds.root, "chairs", split="val")
    assert {i.split for i in forced.items} == {"val"}
    root = tmp_path / "c"
    write_flow_sample(root, "chairs")
    (root / "FlyingChairs_train_val.txt").write_text("1\n2\n1\n")
    _, short = scan_flow(root)
    no_split = {r.source: r.reason for r in short.rejected if "no split" in r.reason}
    assert no_split["data/00005_img1.ppm"] == (
        "no split for sample 00005: FlyingChairs_train_val.txt has 3 lines"
    )
    (root / "FlyingChairs_train_val.txt").write_text("1\n3\n")
    with pytest.raises(ValueError, match=r"must be 1 \(train\) or 2 \(val\), got \['3'\]"):
        scan_flow(root)


def test_autoflow_root_may_be_one_part_folder(samples):
    part = samples["autoflow"].root / "static_40k_png_2_of_4"
    layout, scan = scan_flow(part)
    assert layout == "autoflow"
    assert sorted(i.source for i in scan.items) == ["s3/im0.png", "s4/im0.png", "s6/im0.png"]
    assert [r.source for r in scan.rejected] == ["s5/im0.png"]
    assert "missing flow 's5/forward.flo'" in scan.rejected[0].reason
