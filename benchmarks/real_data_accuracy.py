"""Does the image task learn real data? scikit-learn's handwritten digits, against a linear model.

The data: the 1,797 8x8 grey digits that ship inside scikit-learn (``load_digits``; the UCI
"Optical Recognition of Handwritten Digits" test set), not anything this project generates.
They are split 75/25, stratified (seed 0), and written as PNG files in the ImageNet layout.

The baseline, in this process: a linear classifier (scikit-learn's ``LogisticRegression`` on
the 64 standardised pixels) trained on the train split and scored on the val split.

The pipeline: ``perceiver-pipeline run`` as a user runs it, on
``pipelines/configs/image_classification_debug.yaml`` with only ``train.epochs`` raised (and
the paths): preprocess (the PNGs upscaled to 36x36), Ray Train + DeepSpeed on 2 CPU workers,
Ray Data evaluation of the logged model. The goal: its ``val_top1`` reaches the linear
model's accuracy. Prints a table and rewrites its section of docs/benchmarks.md
(``--no-record`` to only print).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._record import record

ROOT = Path(__file__).resolve().parents[1]


def write_digits(root: Path, seed: int = 0) -> tuple[np.ndarray, ...]:
    """The digits as PNGs in ``root/{train,val}/<digit>/``; returns the split arrays."""
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_val, y_train, y_val = train_test_split(
        digits.images, digits.target, test_size=0.25, stratify=digits.target, random_state=seed
    )
    for split, images, labels in (("train", x_train, y_train), ("val", x_val, y_val)):
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            folder = root / split / f"digit{label}"
            folder.mkdir(parents=True, exist_ok=True)
            pixels = np.round(image * 255.0 / 16.0).astype(np.uint8)  # values 0..16 -> 0..255
            Image.fromarray(pixels, mode="L").save(folder / f"{i:04d}.png")
    return x_train, x_val, y_train, y_val


def linear_baseline(x_train, x_val, y_train, y_val) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    model.fit(x_train.reshape(len(x_train), -1), y_train)
    return float(model.score(x_val.reshape(len(x_val), -1), y_val))


def run_pipeline(raw: Path, work: Path, epochs: int) -> tuple[float, float]:
    """``perceiver-pipeline run`` on the debug config; (val_top1, seconds)."""
    import mlflow

    uri = f"sqlite:///{work / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "RAY_ADDRESS": ""}
    cmd = [
        str(Path(sys.executable).parent / "perceiver-pipeline"),
        "run",
        "--config",
        str(ROOT / "pipelines" / "configs" / "image_classification_debug.yaml"),
        "--input",
        str(raw),
        "--log-dir",
        str(work / "logs"),
        "--set",
        f"train.epochs={epochs}",
        "--set",
        f"data.shards={work / 'shards'}",
        "--set",
        f"train.storage_path={work / 'ray'}",
        "--set",
        "tracking.experiment=real-data-digits",
        "--set",
        "tracking.model_name=digits",
    ]
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True)
    seconds = time.perf_counter() - started
    client = mlflow.MlflowClient(uri)
    champion = client.get_model_version_by_alias("digits", "champion")
    return float(client.get_run(champion.run_id).data.metrics["val_top1"]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=40, help="train.epochs (the debug: 12)")
    parser.add_argument("--no-record", action="store_true", help="only print")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        splits = write_digits(work / "raw")
        linear = linear_baseline(*splits)
        top1, seconds = run_pipeline(work / "raw", work, args.epochs)
    n_train, n_val = len(splits[0]), len(splits[1])
    verdict = "reached" if top1 >= linear else "NOT reached"
    body = "\n".join(
        [
            "## The image task on real data: scikit-learn's handwritten digits",
            "",
            "`benchmarks/real_data_accuracy.py`: the 1,797 8x8 digits shipped in scikit-learn, "
            f"split 75/25 stratified ({n_train} train, {n_val} val), written as PNGs in the "
            "ImageNet layout; `perceiver-pipeline run` on "
            "`pipelines/configs/image_classification_debug.yaml` with only `train.epochs` "
            f"raised to {args.epochs} (2 CPU workers, ZeRO-2, fp32; the images upscaled to "
            "36x36, random 32x32 crops).",
            "",
            "| model | val accuracy |",
            "| --- | --- |",
            f"| linear classifier (logistic regression, 64 standardised pixels), same split | "
            f"{linear:.4f} |",
            f"| Perceiver IO debug config, {args.epochs} epochs | {top1:.4f} |",
            "",
            f"- Goal (the linear classifier's accuracy): **{verdict}** "
            f"(ratio {top1 / linear:.3f}).",
            f"- The whole `run` (preprocess, train, evaluate, register, promote) took "
            f"{seconds:.0f} s.",
        ]
    )
    print(body)
    if not args.no_record:
        print(f"recorded in {record('real_data_accuracy', body)}")


if __name__ == "__main__":
    main()
