"""Output head tied to an input embedding: logits are dot products with the embedding table.

Masked language models (BERT, Perceiver IO's byte-level MLM) predict a token by comparing the
decoder output with every row of the input token embedding, plus a per-token bias. Tying the
head to the embedding saves a (V, C) matrix and lets both uses train the same table.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TiedEmbeddingHead(nn.Module):
    """(B, N, C) -> (B, N, V) logits ``x @ embedding.weight.T + bias``.

    ``embedding`` is shared, not copied: it stays a submodule of its input adapter too, so
    its weight appears under both names in the state dict and gets the gradient of both uses.
    """

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self.embedding = embedding
        self.bias = nn.Parameter(torch.zeros(embedding.num_embeddings))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.embedding.embedding_dim:
            raise ValueError(
                f"expected {self.embedding.embedding_dim} channels, got shape {tuple(x.shape)}"
            )
        return F.linear(x, self.embedding.weight, self.bias)  # (B, N, V)
