import copy

import pytest
import torch

from perceiver.modules.encoder_iterative import IterativePerceiverEncoder
from tests.perceiver.helpers import IdentityAdapter, grads, iterative_encoder, num_parameters


def make_encoder(num_cross_attends: int = 3, **kwargs) -> IterativePerceiverEncoder:
    torch.manual_seed(0)
    args = dict(
        num_latents=6,
        num_latent_channels=16,
        num_cross_attends=num_cross_attends,
        num_self_attention_heads=2,
        num_self_attention_layers_per_block=2,
    )
    args.update(kwargs)
    return iterative_encoder(IdentityAdapter(12), **args)  # type: ignore[arg-type]


def test_shapes_and_backward():
    enc = make_encoder(num_self_attention_blocks_per_cross_attend=2)
    x = torch.randn(3, 10, 12, requires_grad=True)
    out = enc(x)
    assert out.shape == (3, 6, 16)
    out.square().sum().backward()
    grads(enc)  # the first and the shared cross-attention and the latent block all learn
    assert x.grad is not None


def test_parameters_stop_growing_after_the_second_cross_attend():
    counts = {n: num_parameters(make_encoder(n)) for n in (1, 2, 3, 8)}
    assert counts[1] < counts[2]
    assert counts[2] == counts[3] == counts[8]
    assert make_encoder(1).shared_cross_attention is None
    # ...and latent blocks share weights too
    assert (
        num_parameters(make_encoder(2, num_self_attention_blocks_per_cross_attend=4)) == (counts[2])
    )


def test_forward_matches_the_written_out_iteration():
    """Cross-attend 1 (own weights), then cross-attends 2..n with one shared layer."""
    enc = make_encoder(4, num_self_attention_blocks_per_cross_attend=2).eval()
    torch.manual_seed(1)
    x = torch.randn(2, 9, 12)
    pad = torch.zeros(2, 9, dtype=torch.bool)
    pad[0, 6:] = True
    latents = enc.latents.expand(2, -1, -1)
    latents = enc.cross_attention(latents, x, pad)
    latents = enc.self_attention(enc.self_attention(latents))
    assert enc.shared_cross_attention is not None
    for _ in range(3):
        latents = enc.shared_cross_attention(latents, x, pad)
        latents = enc.self_attention(enc.self_attention(latents))
    torch.testing.assert_close(enc(x, pad), latents, atol=1e-6, rtol=0)


def test_pad_mask_hides_padded_inputs_in_every_cross_attend():
    enc = make_encoder(3).eval()
    x = torch.randn(1, 8, 12)
    pad = torch.tensor([[False] * 5 + [True] * 3])
    x2 = x.clone()
    x2[:, 5:] = 50.0
    torch.testing.assert_close(enc(x2, pad), enc(x, pad))


@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_checkpointing_keeps_outputs_and_gradients(dropout):
    plain = make_encoder(3, dropout=dropout).train()
    ckpt = copy.deepcopy(plain)
    ckpt.activation_checkpointing = True
    x = torch.randn(2, 10, 12)
    results = []
    for enc in (plain, ckpt):
        torch.manual_seed(3)
        out = enc(x)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append((out.detach(), grads(enc)))
    torch.testing.assert_close(results[1][0], results[0][0], atol=1e-6, rtol=0)
    for name, g in results[0][1].items():
        torch.testing.assert_close(results[1][1][name], g, atol=1e-6, rtol=0, msg=name)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(num_cross_attends=0), "num_cross_attends must be >= 1, got 0"),
        (
            dict(num_self_attention_blocks_per_cross_attend=0),
            "num_self_attention_blocks_per_cross_attend must be >= 1, got 0",
        ),
    ],
)
def test_bad_arguments_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_encoder(**kwargs)
