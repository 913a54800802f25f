"""Models registered by earlier versions still load and compute the same function.

``legacy/`` holds ``PortableModel`` pickles written by the code before the package layout
changed (see ``legacy/README.md``); MLflow unpickles a registered model the same way.
"""

import pickle
from pathlib import Path

import pytest
import torch

from perceiver.convert import load_converted
from perceiver.portable import PortableModel

LEGACY = Path(__file__).parent / "legacy"
NAMES = sorted(p.name.removesuffix(".io.pt") for p in LEGACY.glob("*.io.pt"))


def _load(name: str) -> tuple[PortableModel, dict]:
    model = torch.load(LEGACY / f"{name}.pt", weights_only=False)
    io = torch.load(LEGACY / f"{name}.io.pt", weights_only=False)
    return model, io


def test_every_task_has_a_legacy_pickle():
    tasks = {_load(name)[0].config.task for name in NAMES}
    assert tasks == {
        "image_classification",
        "masked_language_modeling",
        "sequence_classification",
        "optical_flow",
        "audio_classification",
        "video_classification",
        "point_cloud_classification",
        "multimodal_autoencoding",
    }


def _expected(model: PortableModel, io: dict) -> object:
    """The old output in today's units: the flow model now outputs pixels (x20, DeepMind's
    flow scale), where the old one gave the flow / 20 as Hugging Face does."""
    if model.config.task == "optical_flow":
        return io["output"] * 20.0
    return io["output"]


@pytest.mark.parametrize("name", NAMES)
def test_legacy_pickle_loads_and_gives_the_same_outputs(name):
    model, io = _load(name)
    assert isinstance(model, PortableModel)
    with torch.no_grad():
        out = model(io["input"])
    torch.testing.assert_close(out, _expected(model, io), rtol=1e-5, atol=1e-5)


def test_legacy_pickle_saves_in_todays_layout():
    """A model loaded from the old layout re-pickles with today's keys and loads again."""
    model, io = _load("tiny_multimodal")
    keys = set(model.model.state_dict())
    assert "decoder.output_query.queries.label.table" in keys
    assert not any(k.startswith(("decoder.queries.", "decoder.padding.")) for k in keys)
    again = pickle.loads(pickle.dumps(model))
    with torch.no_grad():
        torch.testing.assert_close(again(io["input"]), io["output"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(p.name for p in (LEGACY / "converted").iterdir()))
def test_legacy_conversion_folder_loads(name):
    model = load_converted(LEGACY / "converted" / name)
    io = torch.load(LEGACY / f"{name}.io.pt", weights_only=False)
    with torch.no_grad():
        out = model(io["input"])
    torch.testing.assert_close(out, _expected(model, io), rtol=1e-5, atol=1e-5)
