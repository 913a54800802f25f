"""The shared-position cross-attention path equals the ordinary one (``perceiver.factorized``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from perceiver.adapters.image import ImageInputAdapter
from perceiver.adapters.image_variants import (
    Conv1x1ImageInputAdapter,
    ConvImageInputAdapter,
    PatchImageInputAdapter,
)
from perceiver.modules.attention.input_space import _NormalizedInputAttention, layer_norm_stats
from perceiver.modules.encoder import PerceiverEncoder
from perceiver.modules.inputs import (
    InputAdapter,
    SegmentedTable,
    SharedPositionInputs,
    SharedSegment,
)
from perceiver.modules.position import TrainablePositionEncoding
from tests.perceiver.helpers import cross_attention, encoder_around

OUT_RTOL = 1e-5
GRAD_RTOL = 1e-4
# A key bias shifts each query's row of scores uniformly, which softmax ignores: its true
# gradient is zero. The shared path returns exactly 0 for the input cross-attention's, the
# ordinary path (and every self-attention) rounding noise.
SHARED_ZERO_GRAD = ("cross_attention.attention.k_proj.bias", "layer.attention.k_proj.bias")


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def assert_grads_close(new: dict[str, torch.Tensor], old: dict[str, torch.Tensor]) -> None:
    assert new.keys() == old.keys()
    scale = max(g.abs().max().item() for g in old.values())
    for name, g_old in old.items():
        g_new = new[name]
        if name.endswith("k_proj.bias"):
            if name in SHARED_ZERO_GRAD:
                assert torch.count_nonzero(g_new) == 0, name
            assert g_new.abs().max().item() <= 1e-6 * scale, name
            assert g_old.abs().max().item() <= 1e-6 * scale, name
            continue
        assert rel(g_new, g_old) <= GRAD_RTOL, (name, rel(g_new, g_old))


def param_grads(module: nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for name, p in module.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, name
            out[name] = p.grad.clone()
    module.zero_grad(set_to_none=True)
    return out


def named(grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"layer.{k}": v for k, v in grads.items()}


def core(z: torch.Tensor, p: torch.Tensor, *tables: torch.Tensor) -> torch.Tensor:
    return _NormalizedInputAttention.apply(z, p, 1e-5, *tables)


def reference(z: torch.Tensor, inputs: SharedPositionInputs) -> torch.Tensor:
    """softmax(Z xhat^T) xhat over the materialised, LayerNorm-ed (no affine) inputs."""
    x = inputs.materialize()  # (B, M, C)
    xhat = nn.functional.layer_norm(x, x.shape[-1:], eps=1e-5)[:, None]  # (B, 1, M, C)
    return torch.softmax(z @ xhat.transpose(-1, -2), dim=-1) @ xhat


# (positions, varying channels, row channels) per segment, 4 shared channels: a run of
# positions with both, a fully constant one (a mask token) and one without a row
SEGMENTS = [(3, 2, 2), (2, 0, 4), (1, 4, 0)]


def segmented(dtype: torch.dtype = torch.float64) -> list[torch.Tensor]:
    """[varying_1, row_1, ...] of ``SEGMENTS``, all requiring gradients."""
    tables = []
    for num, width, row in SEGMENTS:
        tables += [torch.randn(num, width, dtype=dtype), torch.randn(row, dtype=dtype)]
    return [t.requires_grad_() for t in tables]


def table_of(tables: list[torch.Tensor]) -> SegmentedTable:
    return SegmentedTable(
        [SharedSegment(v, r) for v, r in zip(tables[::2], tables[1::2], strict=True)]
    )


def test_core_gradcheck_float64() -> None:
    torch.manual_seed(0)
    batch, heads, queries, cp, cf, positions = 2, 2, 3, 2, 3, 5
    z = torch.randn(batch, heads, queries, cp + cf, dtype=torch.float64, requires_grad=True)
    p = torch.randn(batch, positions, cp, dtype=torch.float64, requires_grad=True)
    f = torch.randn(positions, cf, dtype=torch.float64, requires_grad=True)
    empty = torch.empty(0, dtype=torch.float64)  # a plain table: one segment without a row
    assert torch.autograd.gradcheck(core, (z, p, f, empty))


def test_core_gradcheck_float64_segmented() -> None:
    torch.manual_seed(0)
    z = torch.randn(2, 2, 3, 2 + 4, dtype=torch.float64, requires_grad=True)
    p = torch.randn(2, 6, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(core, (z, p, *segmented()))


def test_core_equals_softmax_attention_over_normalised_inputs() -> None:
    torch.manual_seed(0)
    z = torch.randn(2, 3, 4, 7, dtype=torch.float64)
    p = torch.randn(2, 6, 3, dtype=torch.float64)
    f = torch.randn(6, 4, dtype=torch.float64)
    mu, rstd = layer_norm_stats(p, f, 1e-5)
    x = SharedPositionInputs(p, f).materialize()
    xhat = nn.functional.layer_norm(x, (7,), eps=1e-5)  # (B, M, C)
    torch.testing.assert_close(xhat, (x - mu[..., None]) * rstd[..., None])
    expected = reference(z, SharedPositionInputs(p, f))
    torch.testing.assert_close(core(z, p, f, f.new_empty(0)), expected)


def test_segmented_core_gradients_equal_the_dense_tables() -> None:
    """The rows' gradients (sums over their segments) and the varying channels' equal
    autograd's through the materialised (M, Cf) table."""
    torch.manual_seed(0)
    z = torch.randn(2, 2, 3, 2 + 4, dtype=torch.float64, requires_grad=True)
    p = torch.randn(2, 6, 2, dtype=torch.float64, requires_grad=True)
    tables = segmented()
    weights = torch.randn(2, 2, 3, 6, dtype=torch.float64)
    leaves = [z, p, *tables]
    new = torch.autograd.grad((core(z, p, *tables) * weights).sum(), leaves)
    old = torch.autograd.grad(
        (reference(z, SharedPositionInputs(p, table_of(tables))) * weights).sum(), leaves
    )
    for a, b in zip(new, old, strict=True):
        torch.testing.assert_close(a, b)


def test_segmented_core_keeps_no_table_sized_tensor_for_backward() -> None:
    """Saved for backward: the inputs (segments as given) and (B, ...)-sized statistics,
    never the (M, Cf) table or the (B, H, L, M) scores."""
    torch.manual_seed(0)
    positions, cf = 4096, 16
    varying = torch.randn(positions, 4)
    row = torch.randn(cf - 4, requires_grad=True)
    z = torch.randn(1, 1, 8, 2 + cf, requires_grad=True)
    p = torch.randn(1, positions, 2)
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = core(z, p, varying, row)
    sizes = {t.numel() for t in saved}
    assert max(sizes) == varying.numel()  # the biggest is the given varying table itself
    assert positions * cf not in sizes and 8 * positions not in sizes
    out.sum().backward()
    assert row.grad is not None and z.grad is not None


def test_layer_norm_stats_match_layer_norm_with_offset_inputs() -> None:
    torch.manual_seed(0)
    p = torch.randn(2, 10, 3) * 3 + 50.0  # a large mean stresses E[x^2] - mu^2
    f = torch.randn(10, 20) + 50.0
    segments = SegmentedTable(
        [
            SharedSegment(f[:6, :12], f[0, 12:]),
            SharedSegment(f[6:, :0], f[1]),  # a constant run of positions
        ]
    )
    for shared in (f, segments):
        x = SharedPositionInputs(p, shared).materialize()
        mu, rstd = layer_norm_stats(p, shared, 1e-5)
        var, mean = torch.var_mean(x.double(), dim=-1, correction=0)
        torch.testing.assert_close(mu, mean.float())
        torch.testing.assert_close(rstd, (var + 1e-5).rsqrt().float())


def test_segmented_table_materializes_and_validates() -> None:
    varying, row = torch.randn(3, 2), torch.randn(4)
    table = SegmentedTable([SharedSegment(varying, row), SharedSegment(torch.randn(2, 6), row[:0])])
    assert table.shape == (5, 6) and table.dtype == torch.float32
    dense = table.materialize()
    assert torch.equal(dense[:3], torch.cat([varying, row.expand(3, -1)], dim=-1))
    assert torch.equal(table.to(torch.float64).materialize(), dense.double())
    inputs = SharedPositionInputs(torch.randn(2, 5, 1), table)
    assert torch.equal(inputs.materialize()[1, :, 1:], dense)
    with pytest.raises(ValueError, match="one C"):
        SegmentedTable([SharedSegment(varying, row), SharedSegment(varying, row[:1])])
    with pytest.raises(ValueError, match="at least one segment"):
        SegmentedTable([])


def table_grads(tables: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """The non-empty tables' gradients, which are reset."""
    out = {}
    for i, t in enumerate(tables):
        if t.numel():
            assert t.grad is not None
            out[f"table{i}"] = t.grad
        t.grad = None
    return out


def test_cross_attention_layer_with_a_segmented_table_equals_materialized() -> None:
    torch.manual_seed(0)
    layer = cross_attention(1, 16, 2 + 4).train()
    x_q = torch.randn(2, 5, 16)
    p = torch.randn(2, 6, 2)
    tables = segmented(torch.float32)
    inputs = SharedPositionInputs(p, table_of(tables))
    assert layer.uses_shared_path(5)
    new = layer(x_q, inputs)
    new.square().sum().backward()
    g_new = named(param_grads(layer)) | table_grads(tables)
    old = layer(x_q, inputs.materialize())
    old.square().sum().backward()
    g_old = named(param_grads(layer)) | table_grads(tables)
    assert rel(new, old) <= OUT_RTOL
    assert_grads_close(g_new, g_old)


@pytest.mark.parametrize(
    "heads,qk,v,query_residual,chunk_size",
    [(1, None, None, True, None), (2, 16, 24, False, None), (1, 8, None, True, 2)],
)
@pytest.mark.parametrize("train", [False, True])
def test_cross_attention_layer_shared_equals_materialized(
    heads: int,
    qk: int | None,
    v: int | None,
    query_residual: bool,
    chunk_size: int | None,
    train: bool,
) -> None:
    torch.manual_seed(0)
    cp, cf = 3, 10
    layer = cross_attention(
        heads, 16, cp + cf, qk, v, query_residual=query_residual, chunk_size=chunk_size
    ).train(train)
    assert layer.uses_shared_path(5)
    x_q = torch.randn(2, 5, 16, requires_grad=True)
    p = torch.randn(2, 11, cp, requires_grad=True)  # e.g. a learned per-pixel projection
    f = torch.randn(11, cf, requires_grad=True)  # e.g. trainable positions
    inputs = SharedPositionInputs(p, f)

    new = layer(x_q, inputs)
    new.square().sum().backward()
    g_new = named(param_grads(layer)) | {"x_q": x_q.grad, "p": p.grad, "f": f.grad}
    x_q.grad = p.grad = f.grad = None
    old = layer(x_q, inputs.materialize())
    old.square().sum().backward()
    g_old = named(param_grads(layer)) | {"x_q": x_q.grad, "p": p.grad, "f": f.grad}

    assert rel(new, old) <= OUT_RTOL
    assert_grads_close(g_new, g_old)


def image_encoder(adapter: InputAdapter, checkpointing: bool = False) -> PerceiverEncoder:
    return encoder_around(
        adapter,
        num_latents=6,
        num_latent_channels=16,
        num_cross_attention_heads=1,
        num_self_attention_heads=2,
        num_self_attention_layers_per_block=1,
        activation_checkpointing=checkpointing,
    )


def shared_vs_materialized(
    encoder: PerceiverEncoder, images: torch.Tensor, train: bool
) -> tuple[float, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(output difference, parameter gradients) of encoder(x) and encode(adapter(x))."""
    encoder.train(train)
    new = encoder(images)
    new.square().sum().backward()
    g_new = param_grads(encoder)
    old = encoder.encode(encoder.input_adapter(images))
    old.square().sum().backward()
    g_old = param_grads(encoder)
    return rel(new, old), g_new, g_old


@pytest.mark.parametrize("checkpointing", [False, True])
@pytest.mark.parametrize("train", [False, True])
def test_image_encoder_takes_the_shared_path_with_equal_results(
    checkpointing: bool, train: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    adapter = ImageInputAdapter((8, 6, 3), num_frequency_bands=4)
    encoder = image_encoder(adapter, checkpointing)
    images = torch.rand(3, 8, 6, 3)
    calls = []
    original = _NormalizedInputAttention.forward
    monkeypatch.setattr(
        _NormalizedInputAttention,
        "forward",
        staticmethod(lambda *a: calls.append(1) or original(*a)),
    )
    error, g_new, g_old = shared_vs_materialized(encoder, images, train)
    assert calls  # the shared path ran (twice with checkpointing: forward and recompute)
    assert error <= OUT_RTOL
    assert_grads_close(g_new, g_old)


def test_image_encoder_with_trainable_positions_gets_their_gradient() -> None:
    torch.manual_seed(0)
    positions = TrainablePositionEncoding(8 * 6, 12, init_scale=0.5)
    adapter = ImageInputAdapter((8, 6, 3), None, position_encoding=positions)
    encoder = image_encoder(adapter)
    error, g_new, g_old = shared_vs_materialized(encoder, torch.rand(2, 8, 6, 3), True)
    assert "input_adapter.position_encoding.table" in g_new
    assert error <= OUT_RTOL
    assert_grads_close(g_new, g_old)


def test_forward_shared_materializes_to_forward_exactly() -> None:
    adapter = ImageInputAdapter((8, 6, 3), num_frequency_bands=4, channels_first=True)
    images = torch.rand(2, 3, 8, 6)
    shared = adapter.forward_shared(images)
    assert shared.per_sample.shape == (2, 48, 3)
    assert shared.shared.shape == (48, adapter.position_encoding.num_channels)
    assert torch.equal(shared.materialize(), adapter(images))


def test_state_dict_keys_unchanged() -> None:
    adapter = ImageInputAdapter((8, 6, 3), num_frequency_bands=4)
    keys = set(image_encoder(adapter).state_dict())
    assert not any("input_adapter" in k for k in keys)  # Fourier table is not persistent
    assert {k for k in keys if k.startswith("cross_attention.")} == {
        f"cross_attention.{k}"
        for k in cross_attention(1, 16, adapter.num_input_channels).state_dict()
    }


@pytest.mark.parametrize(
    "adapter",
    [
        Conv1x1ImageInputAdapter((8, 8, 3), num_frequency_bands=2, num_output_channels=5),
        PatchImageInputAdapter((8, 8, 3), patch_size=2, num_frequency_bands=2),
        ConvImageInputAdapter((16, 16, 3), num_frequency_bands=2, num_output_channels=4),
    ],
    ids=["conv1x1", "patches", "conv"],
)
def test_image_variants_keep_their_results(adapter: InputAdapter) -> None:
    """The variants do not split their inputs (yet): encoder(x) is the ordinary path."""
    torch.manual_seed(0)
    encoder = image_encoder(adapter).eval()
    height, width, _ = adapter.image_shape  # type: ignore[attr-defined]
    images = torch.rand(2, height, width, 3)
    split = adapter.forward_shared(images)
    if split is not None:
        assert torch.equal(split.materialize(), adapter(images))
    with torch.no_grad():
        assert rel(encoder(images), encoder.encode(adapter(images))) <= OUT_RTOL


def test_fallbacks_use_the_materialized_inputs() -> None:
    torch.manual_seed(0)
    x_q = torch.randn(2, 4, 16)
    inputs = SharedPositionInputs(torch.randn(2, 7, 3), torch.randn(7, 5))
    layer = cross_attention(1, 16, 8).eval()
    pad_mask = torch.zeros(2, 7, dtype=torch.bool)
    pad_mask[0, -2:] = True
    assert torch.equal(layer(x_q, inputs, pad_mask), layer(x_q, inputs.materialize(), pad_mask))

    dropout = cross_attention(1, 16, 8, dropout=0.1).train()
    assert not dropout.uses_shared_path(4)
    assert dropout.eval().uses_shared_path(4)

    # 8 heads over all 8 input channels cost more than 8 + 8 key/value channels
    many_heads = cross_attention(8, 16, 8, num_qk_channels=8, num_v_channels=8).eval()
    assert not many_heads.uses_shared_path(4)
    assert torch.equal(many_heads(x_q, inputs), many_heads(x_q, inputs.materialize()))


def test_encoder_with_pad_mask_keeps_the_ordinary_path() -> None:
    torch.manual_seed(0)
    adapter = ImageInputAdapter((4, 4, 3), num_frequency_bands=2)
    encoder = image_encoder(adapter).eval()
    images = torch.rand(2, 4, 4, 3)
    pad_mask = torch.zeros(2, 16, dtype=torch.bool)
    pad_mask[1, :3] = True
    with torch.no_grad():
        assert torch.equal(encoder(images, pad_mask), encoder.encode(adapter(images), pad_mask))
