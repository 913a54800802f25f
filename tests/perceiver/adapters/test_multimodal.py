"""The multimodal adapter's [per-sample | batch-shared] split (``forward_shared``)."""

from __future__ import annotations

import pytest
import torch

from perceiver.adapters.audio import AudioInputAdapter
from perceiver.adapters.label import LabelInputAdapter
from perceiver.adapters.multimodal import MultimodalInputAdapter
from perceiver.adapters.video import VideoInputAdapter
from perceiver.modules.attention.input_space import _NormalizedInputAttention
from perceiver.modules.inputs import InputAdapter, SegmentedTable
from perceiver.modules.multimodal_autoencoder import MultimodalAutoencoder
from tests.perceiver.modules.test_multimodal_autoencoder import FRAMES, SIZE, inputs, model

OUT_RTOL = 1e-5
GRAD_RTOL = 1e-4
VIDEO_PATCH = 1 * 4 * 4 * 3  # tiny(): 1x4x4 patches of RGB
NUM_POSITIONS = 32 // 4 + FRAMES * (SIZE // 4) ** 2 + 1  # tiny(): audio, video, label


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def adapter_of(m: MultimodalAutoencoder) -> MultimodalInputAdapter:
    adapter = m.encoder.input_adapter
    assert isinstance(adapter, MultimodalInputAdapter)
    return adapter


@pytest.mark.parametrize("train", [True, False])
def test_forward_shared_materializes_to_forward_exactly(train: bool) -> None:
    adapter = adapter_of(model()).train(train)
    x = inputs(3)
    split = adapter.forward_shared(x)
    assert split is not None
    width = adapter.num_input_channels
    assert split.per_sample.shape == (3, NUM_POSITIONS, VIDEO_PATCH)
    assert split.shared.shape == (NUM_POSITIONS, width - VIDEO_PATCH)
    assert torch.equal(split.materialize(), adapter(x))


def test_forward_shared_gradients_reach_mask_token_and_padding() -> None:
    adapter = adapter_of(model()).train()
    x = inputs()
    weights = torch.randn(2, NUM_POSITIONS, adapter.num_input_channels)
    split = adapter.forward_shared(x)
    assert split is not None
    (split.materialize() * weights).sum().backward()
    new = {n: p.grad.clone() for n, p in adapter.named_parameters() if p.grad is not None}
    adapter.zero_grad(set_to_none=True)
    (adapter(x) * weights).sum().backward()
    old = {n: p.grad.clone() for n, p in adapter.named_parameters() if p.grad is not None}
    assert new.keys() == old.keys() and "mask_tokens.label" in new and "padding.audio" in new
    for name in old:
        assert torch.allclose(new[name], old[name], rtol=1e-6, atol=1e-6), name


def test_unmasked_narrow_label_still_splits() -> None:
    adapter = adapter_of(model(eval_masked=())).eval()  # 5 classes: narrower than the video
    split = adapter.forward_shared(inputs())
    assert split is not None and split.per_sample.shape[-1] == VIDEO_PATCH
    assert torch.equal(split.materialize(), adapter(inputs()))


@pytest.mark.parametrize(
    ("overrides", "train"),
    [
        ({"mask_probs": {"label": 1.0, "audio": 0.5}}, True),  # positions masked at random
        ({"mask_probs": {"label": 0.3}}, True),
        ({"mask_probs": {}, "num_classes": 100}, True),  # unmasked wide label
        ({"eval_masked": (), "num_classes": 100}, False),
    ],
    ids=["random-audio", "random-label", "wide-label-train", "wide-label-eval"],
)
def test_forward_shared_falls_back_to_none(overrides: dict, train: bool) -> None:
    adapter = adapter_of(model(**overrides)).train(train)
    x = inputs()
    if "num_classes" in overrides:
        x["label"] = torch.rand(2, overrides["num_classes"])
    assert adapter.forward_shared(x) is None
    assert adapter(x).shape[-1] == adapter.num_input_channels  # forward works as before


def test_unknown_adapter_falls_back_to_none_unless_fully_masked() -> None:
    class Doubled(InputAdapter):
        def __init__(self) -> None:
            super().__init__()
            self.num_input_channels = 3

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.cat([x, 2 * x], dim=-1)  # (B, M, 3)

    def build(**kwargs) -> MultimodalInputAdapter:
        return MultimodalInputAdapter(
            {"other": Doubled(), "label": LabelInputAdapter(2)}, min_padding_size=2, **kwargs
        ).train()

    x = {"other": torch.randn(2, 4, 1), "label": torch.rand(2, 2)}
    assert build(mask_probs={"label": 1.0}).forward_shared(x) is None
    adapter = build(mask_probs={"other": 1.0})  # only the label is left: nothing shared
    assert adapter.forward_shared(x) is None
    with pytest.raises(ValueError, match="expected inputs for the modalities"):
        adapter.forward_shared({"other": x["other"]})


def grads(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    out = {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}
    m.zero_grad(set_to_none=True)
    return out


def run(m: MultimodalAutoencoder, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = m(x)
    loss = sum(o.square().mean() for o in out.values())
    assert isinstance(loss, torch.Tensor)
    loss.backward()
    return {k: v.detach() for k, v in out.items()}


# 3 audio bands: audio's 4 samples + 7 position channels are narrower than a video patch,
# so its per-sample part reaches into its padding; 30 bands (61 position channels): its
# per-sample part ends within its position channels, as in the Kinetics model.
@pytest.mark.parametrize("audio_bands", [3, 30])
@pytest.mark.parametrize("train", [True, False])
def test_model_equal_with_the_shared_path_on_and_off(
    train: bool, audio_bands: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = model(audio_num_frequency_bands=audio_bands).train(train)
    x = inputs()
    calls: list[int] = []
    original = _NormalizedInputAttention.forward
    monkeypatch.setattr(
        _NormalizedInputAttention,
        "forward",
        staticmethod(lambda *a: calls.append(1) or original(*a)),
    )
    out_new = run(m, x)
    g_new = grads(m)
    assert calls  # the input cross-attention took the shared path
    calls.clear()
    monkeypatch.setattr(MultimodalInputAdapter, "forward_shared", lambda self, x: None)
    out_old = run(m, x)
    g_old = grads(m)
    assert not calls
    assert out_new.keys() == out_old.keys()
    for name in out_old:
        assert rel(out_new[name], out_old[name]) <= OUT_RTOL, name
    assert g_new.keys() == g_old.keys()
    scale = max(g.abs().max().item() for g in g_old.values())
    for name, g in g_old.items():
        if name.endswith("k_proj.bias"):
            # softmax ignores key biases: their true gradients are zero (exactly zero for the
            # input cross-attention on the shared path, rounding noise elsewhere)
            if name == "encoder.cross_attention.attention.k_proj.bias":
                assert not g_new[name].any(), name
            assert g_new[name].abs().max().item() <= 1e-6 * scale, name
            assert g.abs().max().item() <= 1e-6 * scale, name
            continue
        if not g.any():  # e.g. the masked label's padding: replaced, so zero either way
            assert not g_new[name].any(), name
            continue
        assert rel(g_new[name], g) <= GRAD_RTOL, (name, rel(g_new[name], g))


def test_forward_shared_segments_reference_the_position_buffers() -> None:
    """The shared table is kept as per-modality segments: each unmasked modality's position
    encoding (the adapter's buffer itself, not a copy) next to its padding embedding, and
    the masked label's mask token."""
    adapter = adapter_of(model()).train()
    split = adapter.forward_shared(inputs())
    assert split is not None and isinstance(split.shared, SegmentedTable)
    segments = dict(zip(adapter.modalities, split.shared.segments, strict=True))
    assert set(segments) == {"audio", "image", "label"}
    for name in ("audio", "image"):
        sub = adapter.adapters[name]
        assert isinstance(sub, (AudioInputAdapter, VideoInputAdapter))
        buffer = sub.position_encoding.table
        varying, row = segments[name]
        assert varying.untyped_storage().data_ptr() == buffer.untyped_storage().data_ptr()
        padding = adapter.padding[name][0]  # its head may be among the per-sample channels
        assert row.numel() and torch.equal(row, padding[padding.numel() - row.numel() :])
    varying, row = segments["label"]
    assert varying.shape == (1, 0)
    assert torch.equal(row, adapter.mask_tokens["label"][0, VIDEO_PATCH:])


def test_training_step_keeps_no_table_sized_tensor() -> None:
    m = model().train()
    x = inputs()
    shared_shape = (NUM_POSITIONS, adapter_of(m).num_input_channels - VIDEO_PATCH)
    shapes: list[tuple[int, ...]] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        shapes.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = m(x)
    assert shapes and shared_shape not in shapes
    sum(o.square().mean() for o in out.values()).backward()  # type: ignore[union-attr]


def test_patches_are_forwards_channels_before_the_positions() -> None:
    adapter = adapter_of(model())
    x = inputs()
    for name in ("audio", "image"):
        sub = adapter.adapters[name]
        assert isinstance(sub, (AudioInputAdapter, VideoInputAdapter))
        patches = sub.patches(x[name])
        full = sub(x[name])
        assert torch.equal(full[..., : patches.shape[-1]], patches)
        assert torch.equal(full[0, :, patches.shape[-1] :], sub.position_encoding.table)
