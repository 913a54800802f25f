"""Weight-decay groups of a real model, and the warm-up + cosine schedule."""

import math

import pytest

from perceiver.builders import build
from perceiver.config import load_task_config, shipped_configs
from pipelines.training.optim import parameter_groups, warmup_cosine


def names_without_decay(config_name: str) -> set[str]:
    model = build(load_task_config(shipped_configs()[config_name]))
    groups = parameter_groups(model, 0.1)
    skip = {id(p) for p in groups[1]["params"]}
    assert {id(p) for p in groups[0]["params"]}.isdisjoint(skip)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    return {n for n, p in model.named_parameters() if id(p) in skip}


def test_norms_biases_latents_and_codes_get_no_decay():
    names = names_without_decay("tiny_multimodal")
    assert "encoder.latents" in names
    assert "encoder.cross_attention.q_norm.weight" in names
    assert "encoder.cross_attention.attention.q_proj.bias" in names
    assert "decoder.output_query.queries.label.table" in names
    assert "decoder.output_query.padding.audio" in names
    assert "encoder.input_adapter.mask_tokens.label" in names
    assert "encoder.cross_attention.attention.q_proj.weight" not in names
    assert "decoder.head.weight" not in names


def test_classification_query_and_position_tables_get_no_decay():
    names = names_without_decay("tiny_image")
    assert "decoder.output_query.table" in names
    assert not any(n.endswith("mlp.1.weight") for n in names)


def test_warmup_then_cosine_to_min_lr():
    f = warmup_cosine(warmup_steps=4, total_steps=14, min_ratio=0.1)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(4) == pytest.approx(1.0)
    assert f(9) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert f(14) == pytest.approx(0.1) and f(100) == pytest.approx(0.1)
    values = [f(s) for s in range(4, 15)]
    assert values == sorted(values, reverse=True)
    with pytest.raises(ValueError, match="total_steps=0 must be >= 1"):
        warmup_cosine(0, 0, 0.0)
