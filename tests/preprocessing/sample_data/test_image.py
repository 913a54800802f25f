import io

from PIL import Image

from preprocessing.sample_data.image import write_imagenet_sample


def test_sample_has_the_layout_and_the_special_files(tmp_path):
    ds = write_imagenet_sample(tmp_path, num_classes=3, train_per_class=6, val_per_class=2)
    assert ds.files == {"train": 18, "val": 6}
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == list(ds.wnids)
    first = tmp_path / "train" / ds.wnids[0] / f"{ds.wnids[0]}_1.JPEG"
    assert first.is_file()
    opened = {
        k: Image.open(io.BytesIO((tmp_path / s).read_bytes()))
        for k, s in ds.special.items()
        if k not in ("truncated", "empty")
    }
    assert opened["grayscale"].mode == "L"
    assert opened["cmyk"].mode == "CMYK"
    assert opened["progressive"].info.get("progressive") or opened["progressive"].info.get(
        "progression"
    )
    assert opened["palette_png"].format == "PNG" and opened["palette_png"].mode == "P"
    assert (tmp_path / ds.special["empty"]).stat().st_size == 0
    assert sorted(ds.broken) == sorted([ds.special["truncated"], ds.special["empty"]])
    sizes = {Image.open(p).size for p in (tmp_path / "val").rglob("*.JPEG")}
    assert len(sizes) > 3  # varied sizes and aspect ratios


def test_sample_is_deterministic(tmp_path):
    a = write_imagenet_sample(tmp_path / "a", num_classes=2, train_per_class=4, val_per_class=1)
    b = write_imagenet_sample(tmp_path / "b", num_classes=2, train_per_class=4, val_per_class=1)
    for split, n in a.files.items():
        assert b.files[split] == n
    for p in (tmp_path / "a").rglob("*.JPEG"):
        assert p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes()
