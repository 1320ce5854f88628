"""The two graphs we export from a T5-family model, written as plain torch over its weights.

Why not trace Hugging Face's own forward: in transformers 5.x it threads cache objects and mask
builders through every layer, which the exporters either reject or freeze to one shape. These
modules compute the same function with flat tensors only, so the exported graph has a small,
stable signature:

- `EncoderGraph(input_ids, attention_mask)` → `hidden`, plus every decoder layer's cross-attention
  keys and values (computed once per input, not once per generated token).
- `DecoderStepGraph(token, encoder_mask, self_k_0, self_v_0, …, cross_k_0, cross_v_0, …)` →
  `logits` of the next token and the self-attention keys/values grown by one position. The past
  may be empty (length 0) at the first step.

Works for T5, Flan-T5 and mT5 checkpoints (relu or gated-gelu feed-forward, tied or untied head).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from transformers import PreTrainedModel

T5_TYPES = ("t5", "mt5")


def check_supported(model: "PreTrainedModel") -> None:
    kind = getattr(model.config, "model_type", "?")
    if kind not in T5_TYPES:
        raise ValueError(f"ONNX export supports T5-family models (t5, mt5); this checkpoint is {kind!r}")


def _heads(x: torch.Tensor, n_heads: int, d_kv: int) -> torch.Tensor:
    """(batch, length, n_heads·d_kv) → (batch, n_heads, length, d_kv)."""
    return x.view(x.shape[0], x.shape[1], n_heads, d_kv).transpose(1, 2)


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor, out: nn.Linear) -> torch.Tensor:
    # T5 does not scale scores by 1/sqrt(d_kv): the scale is folded into its initialisation.
    scores = torch.matmul(q, k.transpose(-1, -2)) + bias
    weights = torch.softmax(scores.float(), dim=-1).type_as(scores)
    ctx = torch.matmul(weights, v)  # (batch, heads, q_len, d_kv)
    return out(ctx.transpose(1, 2).reshape(ctx.shape[0], ctx.shape[2], -1))


def _position_bias(stack: nn.Module, relative: torch.Tensor, bidirectional: bool) -> torch.Tensor:
    """T5's learned relative-position bias, (1, heads, queries, keys), from the stack's first layer."""
    first, cfg = stack.block[0].layer[0].SelfAttention, stack.config
    buckets = first._relative_position_bucket(
        relative,
        bidirectional=bidirectional,
        num_buckets=cfg.relative_attention_num_buckets,
        max_distance=cfg.relative_attention_max_distance,
    )
    return first.relative_attention_bias(buckets).permute(2, 0, 1)[None]


def _mask_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch, src) 1/0 mask → additive (batch, 1, 1, src) bias."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


class EncoderGraph(nn.Module):
    def __init__(self, model: "PreTrainedModel") -> None:
        super().__init__()
        check_supported(model)
        self.cfg = model.config
        self.encoder = model.get_encoder()
        self.decoder_blocks = model.get_decoder().block

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        cfg, enc = self.cfg, self.encoder
        h = enc.embed_tokens(input_ids)
        pos = torch.arange(input_ids.shape[1], dtype=torch.long, device=input_ids.device)
        bias = _position_bias(enc, pos[None, :] - pos[:, None], True) + _mask_bias(attention_mask, h.dtype)
        for block in enc.block:
            att, ff = block.layer[0], block.layer[-1]
            x = att.layer_norm(h)
            a = att.SelfAttention
            q, k, v = (_heads(p(x), cfg.num_heads, cfg.d_kv) for p in (a.q, a.k, a.v))
            h = h + _attend(q, k, v, bias, a.o)
            h = h + ff.DenseReluDense(ff.layer_norm(h))
        hidden = enc.final_layer_norm(h)
        cross = []
        for block in self.decoder_blocks:
            a = block.layer[1].EncDecAttention
            cross += [_heads(a.k(hidden), cfg.num_heads, cfg.d_kv), _heads(a.v(hidden), cfg.num_heads, cfg.d_kv)]
        return (hidden, *cross)


class DecoderStepGraph(nn.Module):
    def __init__(self, model: "PreTrainedModel") -> None:
        super().__init__()
        check_supported(model)
        self.cfg = model.config
        self.decoder = model.get_decoder()
        self.lm_head = model.get_output_embeddings()
        # As transformers 5 does it: T5 scales the decoder output by d_model^-0.5 when its config says
        # so (tied embeddings); mT5 never does.
        cfg = model.config
        self.scale = cfg.model_type == "t5" and bool(getattr(cfg, "scale_decoder_outputs", cfg.tie_word_embeddings))

    def forward(self, token: torch.Tensor, encoder_mask: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        cfg, dec = self.cfg, self.decoder
        n = len(dec.block)
        self_past, cross = past[: 2 * n], past[2 * n :]
        h = dec.embed_tokens(token)  # (batch, 1, d_model)
        past_len = self_past[0].shape[2]
        # One query at position past_len looks at keys 0..past_len: no causal mask is needed.
        rel = torch.arange(past_len + 1, dtype=torch.long, device=token.device) - past_len
        self_bias = _position_bias(dec, rel[None, :], False)
        cross_bias = _mask_bias(encoder_mask, h.dtype)
        present = []
        for i, block in enumerate(dec.block):
            sa, ca, ff = block.layer[0], block.layer[1], block.layer[2]
            x = sa.layer_norm(h)
            a = sa.SelfAttention
            q = _heads(a.q(x), cfg.num_heads, cfg.d_kv)
            k = torch.cat([self_past[2 * i], _heads(a.k(x), cfg.num_heads, cfg.d_kv)], dim=2)
            v = torch.cat([self_past[2 * i + 1], _heads(a.v(x), cfg.num_heads, cfg.d_kv)], dim=2)
            present += [k, v]
            h = h + _attend(q, k, v, self_bias, a.o)
            x = ca.layer_norm(h)
            c = ca.EncDecAttention
            h = h + _attend(_heads(c.q(x), cfg.num_heads, cfg.d_kv), cross[2 * i], cross[2 * i + 1], cross_bias, c.o)
            h = h + ff.DenseReluDense(ff.layer_norm(h))
        h = dec.final_layer_norm(h)
        if self.scale:
            h = h * (cfg.d_model**-0.5)
        return (self.lm_head(h)[:, 0, :], *present)
