import copy

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from perceiver import builders
from perceiver.builders import image_classifier
from perceiver.config import ImageClassifierConfig
from perceiver.modules.attention import CrossAttentionLayer, attention_mask
from perceiver.modules.attention import kv_chunked as chunked_attention
from perceiver.modules.attention.kv_chunked import kv_chunked_attention
from perceiver.modules.inputs import SegmentedTable, SharedPositionInputs, SharedSegment
from tests.perceiver.helpers import IdentityAdapter, cross_attention, grads, iterative_encoder


def make_layer(**kwargs) -> CrossAttentionLayer:
    torch.manual_seed(0)
    return cross_attention(
        num_heads=2, num_q_input_channels=8, num_kv_input_channels=6, widening_factor=2, **kwargs
    )


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 16, 100])
@pytest.mark.parametrize("query_residual", [True, False])
def test_chunked_equals_unchunked(chunk_size, query_residual):
    layer = make_layer(query_residual=query_residual).eval()
    torch.manual_seed(1)
    x_q, x_kv = torch.randn(2, 16, 8), torch.randn(2, 5, 6)
    pad = torch.tensor([[False] * 5, [False, False, False, True, True]])
    expected = layer(x_q, x_kv, pad)
    layer.chunk_size = chunk_size
    torch.testing.assert_close(layer(x_q, x_kv, pad), expected, atol=1e-6, rtol=0)


def test_chunked_gradients_equal_unchunked():
    plain = make_layer()
    chunked = copy.deepcopy(plain)
    chunked.chunk_size = 3
    torch.manual_seed(1)
    x_q, x_kv = torch.randn(2, 10, 8), torch.randn(2, 5, 6)
    outs, all_grads = [], []
    for layer in (plain, chunked):
        q, kv = x_q.clone().requires_grad_(), x_kv.clone().requires_grad_()
        out = layer(q, kv)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        outs.append(out.detach())
        all_grads.append({**grads(layer), "x_q": q.grad, "x_kv": kv.grad})
    torch.testing.assert_close(outs[1], outs[0], atol=1e-6, rtol=0)
    for name, g in all_grads[0].items():
        torch.testing.assert_close(all_grads[1][name], g, atol=1e-6, rtol=0, msg=name)


def test_chunks_bound_the_queries_per_attention_call():
    layer = make_layer(chunk_size=4)
    sizes: list[int] = []
    original = layer.attention.attend

    def spy(x_q, *rest):
        sizes.append(x_q.shape[1])
        return original(x_q, *rest)

    layer.attention.attend = spy  # type: ignore[method-assign]
    out = layer(torch.randn(1, 10, 8), torch.randn(1, 3, 6))
    assert out.shape == (1, 10, 8)
    assert sizes == [4, 4, 2]


@pytest.mark.parametrize("bad", [0, -3])
def test_bad_chunk_size_is_a_value_error(bad):
    with pytest.raises(ValueError, match=f"chunk_size must be None or >= 1, got {bad}"):
        make_layer(chunk_size=bad)
    layer = make_layer()
    with pytest.raises(ValueError, match="chunk_size"):
        layer.chunk_size = bad


# -- chunking over the inputs (key/value positions): ``kv_chunk_size`` ----------------------


@pytest.fixture(params=["flash", "explicit"])
def path(request, monkeypatch) -> str:
    """Runs a test on the flash-kernel path and again forced onto the explicit path."""
    if request.param == "explicit":
        monkeypatch.setattr(chunked_attention, "uses_flash", lambda q, dropout: False)
    return request.param


class FlashCalls(TorchDispatchMode):
    """Counts calls of the CPU flash-attention kernel and of its backward."""

    def __init__(self) -> None:
        super().__init__()
        self.forward = self.backward = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default:
            self.forward += 1
        elif func is torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward.default:
            self.backward += 1
        return func(*args, **(kwargs or {}))


def kv_inputs(num_inputs: int = 11) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x_q (2, 6, 8), x_kv (2, M, 6) and a pad mask whose second sample pads its first 6
    inputs (all-padded chunks for kv_chunk_size <= 6) and its last one."""
    torch.manual_seed(1)
    pad = torch.zeros(2, num_inputs, dtype=torch.bool)
    pad[1, :6] = True
    pad[1, -1] = True
    return torch.randn(2, 6, 8), torch.randn(2, num_inputs, 6), pad


def run_with_grads(
    layer: nn.Module, *inputs: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Output and the gradients of all parameters and float inputs of a weighted sum."""
    layer.zero_grad(set_to_none=True)
    leaves = [x.clone().requires_grad_(x.is_floating_point()) for x in inputs]
    out = layer(*leaves)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    inputs_grads = {f"input{i}": x.grad for i, x in enumerate(leaves) if x.grad is not None}
    return out.detach(), {**grads(layer), **inputs_grads}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol=1e-5) -> None:
    assert a.keys() == b.keys()
    for name, expected in b.items():
        assert torch.isfinite(a[name]).all(), name
        torch.testing.assert_close(a[name], expected, atol=atol, rtol=1e-5, msg=name)


@pytest.mark.parametrize("kv_chunk_size", [1, 3, 4, 11, 50])
@pytest.mark.parametrize("chunk_size", [None, 4])
@pytest.mark.parametrize("query_residual", [True, False])
def test_kv_chunked_equals_unchunked(kv_chunk_size, chunk_size, query_residual, path):
    layer = make_layer(query_residual=query_residual).eval()
    x_q, x_kv, pad = kv_inputs()
    expected = layer(x_q, x_kv, pad)
    layer.chunk_size, layer.kv_chunk_size = chunk_size, kv_chunk_size
    with torch.no_grad():  # one pass, online softmax
        torch.testing.assert_close(layer(x_q, x_kv, pad), expected, atol=1e-5, rtol=0)
    # with autograd: checkpointed chunks
    torch.testing.assert_close(layer(x_q, x_kv, pad), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kv_chunk_size,chunk_size", [(1, None), (3, None), (4, 4), (5, 1)])
def test_kv_chunked_gradients_equal_unchunked(kv_chunk_size, chunk_size, path):
    plain = make_layer(query_residual=False)
    chunked = copy.deepcopy(plain)
    chunked.kv_chunk_size, chunked.chunk_size = kv_chunk_size, chunk_size
    x_q, x_kv, pad = kv_inputs()
    out, expected = run_with_grads(plain, x_q, x_kv, pad)
    out_chunked, got = run_with_grads(chunked, x_q, x_kv, pad)
    torch.testing.assert_close(out_chunked, out, atol=1e-5, rtol=0)
    assert_same(got, expected)


def test_kv_chunk_without_any_unpadded_key_gives_no_nan(path):
    """A sample whose every input is padded: finite outputs and gradients, and the other
    sample is unaffected."""
    layer = make_layer()
    x_q, x_kv, pad = kv_inputs()
    pad[1] = True
    out, _ = run_with_grads(layer, x_q[:1], x_kv[:1], pad[:1])
    layer.kv_chunk_size = 3
    out_chunked, got = run_with_grads(layer, x_q, x_kv, pad)
    assert all(torch.isfinite(g).all() for g in got.values())
    assert torch.isfinite(out_chunked).all()
    torch.testing.assert_close(out_chunked[:1], out, atol=1e-5, rtol=0)


def chunks_of(k: torch.Tensor, v: torch.Tensor):
    def kv_chunks(start: int, end: int, values: bool):
        return k[:, :, start:end], v[:, :, start:end]

    return kv_chunks


def test_kv_chunked_kernel_gradcheck_with_padding(path):
    torch.manual_seed(0)
    q = torch.randn(2, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 2, 7, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 2, 7, 5, dtype=torch.float64, requires_grad=True)
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[1, :3] = True  # the first chunk of sample 1 is all padded

    def attention(q, k, v):
        return kv_chunked_attention(q, chunks_of(k, v), 7, 3, pad, query_chunk_size=2)

    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=~pad[:, None, None, :])
    calls = FlashCalls()
    with calls:  # flash path: head sizes 4 and 5, zero-padded to 5
        torch.testing.assert_close(attention(q, k, v), expected)
    assert calls.forward == (3 if path == "flash" else 0)
    assert torch.autograd.gradcheck(attention, (q, k, v))


def test_kv_chunked_dropout_drops_whole_probabilities():
    """Values = one-hot positions make the output the (dropped-out) probability matrix:
    each entry is either 0 or the unchunked probability / (1 - p), in both schedules; and
    the checkpointed backward sees the forward's masks (gradcheck with a fixed seed)."""
    torch.manual_seed(0)
    q, k = (
        torch.randn(1, 1, 4, 3, dtype=torch.float64),
        torch.randn(1, 1, 9, 3, dtype=torch.float64),
    )
    v = torch.eye(9, dtype=torch.float64).expand(1, 1, 9, 9)
    probs = torch.softmax(q @ k.transpose(-1, -2) / 3**0.5, dim=-1)
    for grad_enabled in (False, True):
        with torch.set_grad_enabled(grad_enabled):
            out = kv_chunked_attention(q, chunks_of(k, v), 9, 4, dropout=0.5)
        kept = out != 0
        assert 0 < kept.sum() < out.numel()
        torch.testing.assert_close(out[kept], probs[kept] / 0.5)

    def attention(q, k):
        torch.manual_seed(3)
        return kv_chunked_attention(q, chunks_of(k, v), 9, 4, dropout=0.5)

    assert torch.autograd.gradcheck(attention, (q.requires_grad_(), k.requires_grad_()))


def test_kv_chunked_dropout_layer_trains():
    """Training with attention dropout runs chunked (dropout is on) on the explicit path;
    eval equals unchunked."""
    layer = make_layer(dropout=0.3, kv_chunk_size=4).train()
    x_q, x_kv, pad = kv_inputs()
    calls = FlashCalls()
    with calls:
        out, got = run_with_grads(layer, x_q, x_kv, pad)
    assert (calls.forward, calls.backward) == (0, 0)
    assert torch.isfinite(out).all() and all(torch.isfinite(g).all() for g in got.values())
    layer.eval()
    with torch.no_grad():
        chunked = layer(x_q, x_kv, pad)
        assert not torch.allclose(out, chunked)
        layer.kv_chunk_size = None
        torch.testing.assert_close(chunked, layer(x_q, x_kv, pad), atol=1e-5, rtol=0)


def test_attend_with_projected_keys_chunks_the_scores():
    layer = make_layer(kv_chunk_size=3).eval()
    x_q, x_kv, pad = kv_inputs()
    k, v = layer.project_kv(x_kv)
    expected = make_layer().eval()(x_q, x_kv, pad)
    torch.testing.assert_close(
        layer.attend(x_q, k, v, attention_mask(pad)), expected, atol=1e-5, rtol=0
    )


def count_key_positions(layer: CrossAttentionLayer) -> list[int]:
    sizes: list[int] = []
    layer.attention.k_proj.register_forward_pre_hook(lambda m, args: sizes.append(args[0].shape[1]))
    return sizes


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_kv_chunks_bound_the_keys_per_projection(dropout):
    """Flash path (no dropout): one forward pass, each chunk recomputed once in backward.
    Explicit path (dropout): two passes forward, both recomputed in backward."""
    layer = make_layer(kv_chunk_size=4, dropout=dropout)
    sizes = count_key_positions(layer)
    x_q, x_kv, pad = kv_inputs(10)
    with torch.no_grad():
        layer(x_q, x_kv, pad)
    assert sizes == [4, 4, 2]
    sizes.clear()
    passes = 1 if dropout == 0.0 else 2
    out = layer(x_q, x_kv.requires_grad_(), pad)
    assert sizes == [4, 4, 2] * passes
    out.sum().backward()
    # backward recomputes the chunks, one at a time (in reverse order)
    assert sorted(sizes[3 * passes :]) == sorted([2, 4, 4] * passes)


class OpShapes(TorchDispatchMode):
    """Records the shape of every tensor every aten op returns."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.shapes.append(tuple(t.shape))
        return out


@pytest.mark.parametrize("grad", [False, True])
def test_no_tensor_spans_all_inputs(grad, path):
    """With M = 97 inputs in chunks of 8, no op (forward or backward) makes a tensor with
    97 positions: no (N x M) scores, no (B, H, M, C) keys/values. Only the gradient of the
    (B, M, C) inputs themselves is input-sized."""
    layer = make_layer(kv_chunk_size=8, chunk_size=4).train(grad)
    torch.manual_seed(0)
    x_q, x_kv = torch.randn(2, 5, 8), torch.randn(2, 97, 6, requires_grad=grad)
    pad = torch.zeros(2, 97, dtype=torch.bool)
    pad[0, 50:] = True
    mode = OpShapes()
    with mode, torch.set_grad_enabled(grad):
        out = layer(x_q, x_kv, pad)
        if grad:
            out.square().sum().backward()
    spanning = {s for s in mode.shapes if any(d % 97 == 0 for d in s)}  # also B * M rows
    assert spanning == ({tuple(x_kv.shape)} if grad else set())


@pytest.mark.parametrize("kv_chunk_size", [3, 4, 5, 7])  # M = 12: 5 and 7 do not divide it
@pytest.mark.parametrize("chunk_size", [None, 5])
@pytest.mark.parametrize("padded", [False, True])
def test_flash_path_equals_unchunked_sdpa(kv_chunk_size, chunk_size, padded):
    """Outputs and all gradients (queries, inputs, every parameter) equal the unchunked
    layer's within 1e-5; each chunk goes through the flash kernel once forward and once
    backward, and once without autograd."""
    plain = make_layer()
    chunked = copy.deepcopy(plain)
    chunked.kv_chunk_size, chunked.chunk_size = kv_chunk_size, chunk_size
    x_q, x_kv, pad = kv_inputs(12)
    inputs = (x_q, x_kv, pad) if padded else (x_q, x_kv)
    out, expected = run_with_grads(plain, *inputs)
    calls = FlashCalls()
    with calls:
        out_chunked, got = run_with_grads(chunked, *inputs)
    num_chunks = -(-12 // kv_chunk_size)
    assert (calls.forward, calls.backward) == (num_chunks, num_chunks)
    torch.testing.assert_close(out_chunked, out, atol=1e-5, rtol=0)
    assert_same(got, expected, atol=1e-5)
    calls = FlashCalls()
    with calls, torch.no_grad():
        torch.testing.assert_close(chunked(*inputs), out, atol=1e-5, rtol=0)
    assert (calls.forward, calls.backward) == (num_chunks, 0)


@pytest.mark.parametrize("qk_channels,v_channels", [(4, 10), (10, 4)])
def test_flash_path_with_unequal_head_sizes(qk_channels, v_channels):
    """Query/key head size 2 and value head size 5 (and the reverse): the kernel gets the
    narrower side zero-padded; outputs and gradients equal the unchunked layer's."""
    torch.manual_seed(0)
    plain = cross_attention(
        2, 8, 6, num_qk_channels=qk_channels, num_v_channels=v_channels, widening_factor=2
    )
    chunked = copy.deepcopy(plain)
    chunked.kv_chunk_size = 5
    x_q, x_kv, pad = kv_inputs(12)
    out, expected = run_with_grads(plain, x_q, x_kv, pad)
    calls = FlashCalls()
    with calls:
        out_chunked, got = run_with_grads(chunked, x_q, x_kv, pad)
    assert (calls.forward, calls.backward) == (3, 3)
    torch.testing.assert_close(out_chunked, out, atol=1e-5, rtol=0)
    assert_same(got, expected, atol=1e-5)


def test_flash_path_half_precision_keeps_float32_statistics():
    """bfloat16 queries/keys/values: the kernel runs in float32, the output is bfloat16 and
    within bfloat16 rounding of the float32 attention."""
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 2, 5, 8), torch.randn(1, 2, 37, 8), torch.randn(1, 2, 37, 8)
    expected = F.scaled_dot_product_attention(q, k, v)
    half = [t.bfloat16().requires_grad_() for t in (q, k, v)]
    out = kv_chunked_attention(half[0], chunks_of(*half[1:]), 37, 8)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expected, atol=2e-2, rtol=0)
    out.float().square().sum().backward()
    assert all(t.grad is not None and t.grad.dtype == torch.bfloat16 for t in half)


class SharedWrapper(nn.Module):
    """(x_q, per_sample, shared) -> layer(x_q, SharedPositionInputs(per_sample, shared))."""

    def __init__(self, layer: CrossAttentionLayer) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x_q: torch.Tensor, p: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        return self.layer(x_q, SharedPositionInputs(p, f))


@pytest.mark.parametrize("grad", [False, True])
def test_kv_chunked_shared_position_inputs_equal_unchunked(grad):
    """Batch-shared position channels are sliced and materialised one chunk at a time; the
    result equals the unchunked (input-space) path's."""
    torch.manual_seed(0)
    plain = SharedWrapper(cross_attention(1, 16, 13)).train(grad)
    chunked = copy.deepcopy(plain)
    chunked.layer.kv_chunk_size = 4
    sizes = count_key_positions(chunked.layer)
    x_q, p, f = torch.randn(2, 5, 16), torch.randn(2, 11, 3), torch.randn(11, 10)
    assert plain.layer.uses_shared_path(5) and not chunked.layer.uses_shared_path(5, 11)
    if grad:
        out, expected = run_with_grads(plain, x_q, p, f)
        out_chunked, got = run_with_grads(chunked, x_q, p, f)
        assert_same(got, expected, atol=1e-4)
    else:
        with torch.no_grad():
            out, out_chunked = plain(x_q, p, f), chunked(x_q, p, f)
    torch.testing.assert_close(out_chunked, out, atol=1e-5, rtol=1e-5)
    assert sizes and max(sizes) <= 4


def test_kv_chunks_of_a_segmented_shared_table_equal_materialized():
    """Chunks cut across the segments of a ``SegmentedTable``: only the rows of a chunk are
    built, and outputs and gradients equal those over the materialised inputs."""
    torch.manual_seed(0)
    plain = cross_attention(1, 16, 13)
    chunked = copy.deepcopy(plain)
    chunked.kv_chunk_size = 3
    x_q, p = torch.randn(2, 5, 16), torch.randn(2, 11, 3, requires_grad=True)
    parts = [torch.randn(n, k, requires_grad=True) for n, k in ((4, 6), (4, 4), (7, 6), (7, 4))]
    table = SegmentedTable(
        [SharedSegment(parts[0], parts[1][0]), SharedSegment(parts[2], parts[3][0])]
    )
    results = []
    for layer, inputs in (
        (plain, SharedPositionInputs(p, table).materialize()),
        (chunked, SharedPositionInputs(p, table)),
    ):
        out = layer(x_q, inputs)
        out.square().sum().backward()
        results.append(
            {
                "out": out.detach(),
                **grads(layer),
                "p": p.grad,
                **{f"part{i}": t.grad for i, t in enumerate(parts)},
            }
        )
        for t in (p, *parts):
            t.grad = None
    assert_same(results[1], results[0], atol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(
            chunked(x_q, SharedPositionInputs(p, table)), results[0]["out"], atol=1e-5, rtol=1e-5
        )


@pytest.mark.parametrize("bad", [0, -3, True, 2.5])
def test_bad_kv_chunk_size_is_a_value_error(bad):
    with pytest.raises(ValueError, match=f"kv_chunk_size must be None or >= 1, got {bad}"):
        make_layer(kv_chunk_size=bad)
    layer = make_layer()
    with pytest.raises(ValueError, match="kv_chunk_size"):
        layer.kv_chunk_size = bad
    assert layer.kv_chunk_size is None


# -- encoders built with kv_chunk_size --------------------------------------------------------


def small_image_config(**encoder) -> ImageClassifierConfig:
    return ImageClassifierConfig.model_validate(
        dict(
            image_shape=(6, 6, 3),
            num_classes=3,
            num_frequency_bands=2,
            encoder=dict(
                num_latents=4,
                num_latent_channels=16,
                num_self_attention_heads=2,
                num_self_attention_layers_per_block=1,
                **encoder,
            ),
        )
    )


def test_encoder_config_validates_kv_chunk_size():
    assert small_image_config().encoder.kv_chunk_size is None
    assert small_image_config(kv_chunk_size=None).encoder.kv_chunk_size is None
    assert small_image_config(kv_chunk_size=5).encoder.kv_chunk_size == 5
    for bad in (0, -1):
        with pytest.raises(ValidationError, match="kv_chunk_size"):
            small_image_config(kv_chunk_size=bad)


@pytest.mark.parametrize("activation_checkpointing", [False, True])
def test_image_classifier_with_kv_chunks_equals_without(activation_checkpointing):
    """The same weights give the same logits and gradients; the chunked model's input
    cross-attention projects at most kv_chunk_size of the 36 pixels at a time."""
    torch.manual_seed(0)
    plain = image_classifier(small_image_config(activation_checkpointing=activation_checkpointing))
    config = small_image_config(kv_chunk_size=5, activation_checkpointing=activation_checkpointing)
    chunked = image_classifier(config)
    chunked.load_state_dict(plain.state_dict())
    cross_attention = chunked.encoder.cross_attention
    assert isinstance(cross_attention, CrossAttentionLayer)
    assert cross_attention.kv_chunk_size == 5
    sizes = count_key_positions(cross_attention)
    images = torch.rand(2, 6, 6, 3)
    out, expected = run_with_grads(plain, images)
    out_chunked, got = run_with_grads(chunked, images)
    torch.testing.assert_close(out_chunked, out, atol=1e-5, rtol=1e-5)
    assert_same(got, expected, atol=1e-4)
    assert sizes and max(sizes) <= 5


def test_builders_encoder_with_kv_chunks_equals_without():
    enc_config = small_image_config().encoder
    torch.manual_seed(0)
    plain = builders.encoder(enc_config, IdentityAdapter(6)).eval()
    chunked = builders.encoder(
        enc_config.model_copy(update={"kv_chunk_size": 3}), IdentityAdapter(6)
    )
    chunked.load_state_dict(plain.state_dict())
    chunked.eval()
    assert chunked.cross_attention.kv_chunk_size == 3
    _, x_kv, pad = kv_inputs()
    with torch.no_grad():
        torch.testing.assert_close(chunked(x_kv, pad), plain(x_kv, pad), atol=1e-5, rtol=0)


def test_iterative_encoder_with_kv_chunks_equals_without():
    torch.manual_seed(0)
    kwargs = dict(num_latents=4, num_latent_channels=16, num_cross_attends=3)
    plain = iterative_encoder(IdentityAdapter(6), **kwargs)  # type: ignore[arg-type]
    chunked = iterative_encoder(IdentityAdapter(6), kv_chunk_size=4, **kwargs)  # type: ignore[arg-type]
    chunked.load_state_dict(plain.state_dict())
    assert chunked.shared_cross_attention is not None
    sizes = count_key_positions(chunked.shared_cross_attention)
    _, x_kv, pad = kv_inputs()
    out, expected = run_with_grads(plain, x_kv, pad)
    out_chunked, got = run_with_grads(chunked, x_kv, pad)
    torch.testing.assert_close(out_chunked, out, atol=1e-5, rtol=1e-5)
    assert_same(got, expected, atol=1e-4)
    assert sizes and max(sizes) <= 4
