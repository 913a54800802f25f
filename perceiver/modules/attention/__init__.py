"""Attention: multi-head attention and MLP, the Perceiver layers, and their memory-bounded paths.

- ``multi_head``: ``MultiHeadAttention`` (SDPA) and ``MLP``;
- ``layers``: ``CrossAttentionLayer``, ``SelfAttentionLayer``, ``SelfAttentionBlock``;
- ``kv_chunked``: attention over the inputs chunk by chunk, merged exactly by log-sum-exp;
- ``input_space``: cross-attention computed in input space over batch-shared positions.
"""

from perceiver.modules.attention.layers import (
    CrossAttentionLayer,
    SelfAttentionBlock,
    SelfAttentionLayer,
)
from perceiver.modules.attention.multi_head import MLP, MultiHeadAttention, attention_mask

__all__ = [
    "MLP",
    "CrossAttentionLayer",
    "MultiHeadAttention",
    "SelfAttentionBlock",
    "SelfAttentionLayer",
    "attention_mask",
]
