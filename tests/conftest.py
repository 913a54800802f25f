"""Shared fixtures: one local Ray cluster, one real MLflow server, one sample dataset.

Each engine is real and started once per session: ``ray.init(num_cpus=2)``, an ``mlflow
server`` process on 127.0.0.1 (sqlite backend, temp artefact root, stopped by its pid), and
a generated ImageNet-layout folder preprocessed once by the real Ray Data job.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SHARED_SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "torch_extensions"))


@pytest.fixture(scope="session")
def shared_samples() -> Path:
    if not SHARED_SAMPLES.is_dir():
        pytest.fail(f"{SHARED_SAMPLES} is missing: CI keeps shared/ beside the checkout")
    return SHARED_SAMPLES


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=True)
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1; yields its http URI."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [
            str(mlflow_bin),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            pytest.fail(
                f"mlflow server exited with {proc.returncode}: {(root / 'server.log').read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(
                f"mlflow server did not answer in 120 s: {(root / 'server.log').read_text()}"
            )
        time.sleep(0.5)
    try:
        yield uri
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@dataclass
class PreprocessedImages:
    raw: Path
    shards: Path
    sample: object  # preprocessing.sample_data.image.SampleDataset
    extra: dict[str, str]  # kind -> source of the copied shared samples
    manifest: object
    config: object


@pytest.fixture(scope="session")
def image_shards(
    tmp_path_factory: pytest.TempPathFactory, ray_cluster: None, shared_samples: Path
) -> PreprocessedImages:
    """Generated sample (3 classes) + the real CMYK/grayscale JPEGs, preprocessed once."""
    from preprocessing.config import ImagePreprocessConfig
    from preprocessing.modalities.image import preprocess_images
    from preprocessing.sample_data.image import write_imagenet_sample

    root = tmp_path_factory.mktemp("images")
    raw = root / "raw"
    sample = write_imagenet_sample(raw, num_classes=3, train_per_class=8, val_per_class=3, seed=1)
    extra = {}
    for name, kind in (("pil_sample_cmyk.jpg", "real_cmyk"), ("hopper_gray.jpg", "real_gray")):
        dest = raw / "train" / sample.wnids[1] / name
        shutil.copy(shared_samples / "images" / name, dest)
        extra[kind] = dest.relative_to(raw).as_posix()
    (raw / "train" / sample.wnids[0] / "notes.txt").write_text("not an image")
    extra["text"] = f"train/{sample.wnids[0]}/notes.txt"
    shards = root / "shards"
    config = ImagePreprocessConfig(rows_per_shard=8)
    manifest = preprocess_images(raw, shards, config)
    return PreprocessedImages(raw, shards, sample, extra, manifest, config)


@pytest.fixture(scope="session")
def toy_shards(tmp_path_factory: pytest.TempPathFactory, ray_cluster: None) -> Path:
    """A learnable 2-class split (distinct hues) for the training tests."""
    from preprocessing.config import ImagePreprocessConfig
    from preprocessing.modalities.image import preprocess_images
    from preprocessing.sample_data.image import write_imagenet_sample

    root = tmp_path_factory.mktemp("toy")
    write_imagenet_sample(root / "raw", num_classes=2, train_per_class=16, val_per_class=6, seed=2)
    preprocess_images(root / "raw", root / "shards", ImagePreprocessConfig(rows_per_shard=16))
    return root / "shards"
