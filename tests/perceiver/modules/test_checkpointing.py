import copy

import pytest
import torch

from perceiver import ImageClassifierConfig, image_classifier
from perceiver.modules.encoder import PerceiverEncoder
from tests.perceiver.helpers import IdentityAdapter, encoder_around, grads


def make_encoder(dropout: float = 0.0, **kwargs) -> PerceiverEncoder:
    torch.manual_seed(0)
    return encoder_around(
        IdentityAdapter(12),
        num_latents=6,
        num_latent_channels=16,
        num_self_attention_heads=2,
        num_self_attention_layers_per_block=2,
        num_self_attention_blocks=3,
        dropout=dropout,
        **kwargs,
    )


def run(encoder, x, pad_mask=None, seed=1):
    torch.manual_seed(seed)  # same dropout masks for both runs
    out = encoder(x, pad_mask)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    return out.detach(), grads(encoder)


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_checkpointing_keeps_outputs_and_gradients(dropout):
    plain = make_encoder(dropout).train()
    ckpt = copy.deepcopy(plain)
    ckpt.activation_checkpointing = True
    torch.manual_seed(5)
    x = torch.randn(3, 10, 12)
    pad = torch.zeros(3, 10, dtype=torch.bool)
    pad[1, 7:] = True
    out_a, grads_a = run(plain, x, pad)
    out_b, grads_b = run(ckpt, x, pad)
    torch.testing.assert_close(out_b, out_a, atol=1e-6, rtol=0)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], atol=1e-6, rtol=0, msg=name)


def count_calls(module: torch.nn.Module) -> list[int]:
    calls = [0]

    def hook(*_):
        calls[0] += 1

    module.register_forward_pre_hook(hook)
    return calls


def test_checkpointing_recomputes_layers_in_backward_only_when_training():
    enc = make_encoder(activation_checkpointing=True)
    cross = count_calls(enc.cross_attention)
    latent = count_calls(enc.self_attention[0])
    x = torch.randn(2, 10, 12)

    enc.train()
    enc(x).sum().backward()
    # forward + recomputation in backward; the latent layer runs once per block each time
    assert cross[0] == 2
    assert latent[0] == 2 * 3

    cross[0] = latent[0] = 0
    enc.eval()
    enc(x).sum().backward()
    assert (cross[0], latent[0]) == (1, 3)

    cross[0] = latent[0] = 0
    enc.train()
    with torch.no_grad():
        enc(x)
    assert (cross[0], latent[0]) == (1, 3)


def test_checkpointing_does_not_change_the_state_dict():
    a, b = make_encoder(), make_encoder(activation_checkpointing=True)
    assert list(a.state_dict()) == list(b.state_dict())


def test_config_switch_reaches_the_encoder():
    def config(**switch):
        encoder = dict(num_latents=4, num_latent_channels=8, num_self_attention_heads=2, **switch)
        return ImageClassifierConfig.model_validate(
            dict(image_shape=(8, 8, 3), num_classes=3, num_frequency_bands=2, encoder=encoder)
        )

    assert config().encoder.activation_checkpointing is False
    assert image_classifier(config()).encoder.activation_checkpointing is False
    model = image_classifier(config(activation_checkpointing=True))
    assert model.encoder.activation_checkpointing is True
    model.train()
    logits = model(torch.randint(0, 256, (2, 8, 8, 3), dtype=torch.uint8))
    logits.sum().backward()
    assert logits.shape == (2, 3)


def test_a_bf16_model_takes_float32_adapter_features():
    """Adapters without weights scale uint8 pixels with float32 constants; the encoder casts
    their output to the model's dtype (both the input-space and the ordinary path)."""
    torch.manual_seed(0)
    cfg = ImageClassifierConfig(
        image_shape=(8, 8, 3),
        num_classes=3,
        num_frequency_bands=2,
        encoder={"num_latents": 4, "num_latent_channels": 8, "num_self_attention_heads": 2},
    )
    model = image_classifier(cfg)
    model.to(torch.bfloat16)
    model.encoder.input_adapter.float()  # as DeepSpeed leaves buffers: float32 mean/std
    x = torch.randint(0, 256, (2, 8, 8, 3), dtype=torch.uint8)
    logits = model(x)
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()
    logits.float().sum().backward()
    pad = torch.zeros(2, 64, dtype=torch.bool)
    assert model(x, pad).dtype == torch.bfloat16  # the ordinary path, with a pad mask
