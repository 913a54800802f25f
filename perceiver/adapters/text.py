"""Text input adapter: token embeddings plus trainable position embeddings.

As in Perceiver IO's byte-level language model, each token id (a UTF-8 byte plus a few
special ids) is embedded, and a learned embedding of its position is added (not
concatenated), so the encoder sees (B, N, C) with C the embedding width.
"""

from __future__ import annotations

import torch
from torch import nn

from perceiver.modules.inputs import InputAdapter
from perceiver.modules.position import TrainablePositionEncoding


class TextInputAdapter(InputAdapter):
    """(B, N) token ids, N <= max_seq_len -> (B, N, num_channels).

    Position ``i`` gets row ``i`` of the position table, so a shorter sequence uses the
    first N rows. Padding is not handled here: pass a pad mask to the encoder.
    """

    def __init__(self, vocab_size: int, max_seq_len: int, num_channels: int) -> None:
        super().__init__()
        if min(vocab_size, max_seq_len, num_channels) < 1:
            raise ValueError(
                f"vocab_size={vocab_size}, max_seq_len={max_seq_len} and "
                f"num_channels={num_channels} must be >= 1"
            )
        self.vocab_size = vocab_size
        self.max_seq_len = max_seq_len
        self.num_input_channels = num_channels
        self.token_embedding = nn.Embedding(vocab_size, num_channels)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        self.position_encoding = TrainablePositionEncoding(max_seq_len, num_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, N) integer token ids -> (B, N, C)."""
        if x.dim() != 2 or x.is_floating_point() or x.is_complex():
            raise ValueError(
                f"expected (B, N) integer token ids, got shape {tuple(x.shape)} dtype {x.dtype}"
            )
        if x.shape[1] > self.max_seq_len:
            raise ValueError(f"sequence length {x.shape[1]} exceeds max_seq_len={self.max_seq_len}")
        tokens = self.token_embedding(x)  # (B, N, C)
        positions = self.position_encoding.table[: x.shape[1]]  # (N, C)
        return tokens + positions  # (B, N, C)
