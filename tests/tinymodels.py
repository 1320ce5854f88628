"""A tiny BPE tokenizer and tiny random T5s for the unit tests, built from hand-written text.

Imported by the test modules (pytest puts tests/ on sys.path); cached so the whole session
trains the tokenizer once."""

from __future__ import annotations

import contextlib
import functools

# Hand-written corpus (never the real data): Chinese report-style text and English math text.
TOY_TEXTS = [
    "胰头部见软组织肿块，放射性摄取增高。",
    "胰头部软组织肿块，考虑恶性肿瘤。",
    "肝右叶见低密度结节，SUVmax：5.6。胆总管扩张。",
    "1、肝右叶低密度结节，转移可能大。  2、胆总管扩张。",
    "静脉注射18F-FDG后约60min行PET/CT显像。",
    "She has 5 apples. Then she buys 3 more, so she has 8 apples. The answer is 8.",
    "Hello, world. Hello, world.",
]

TINY_DIMS = dict(d_model=32, d_ff=64, num_layers=1, num_heads=2)


@functools.lru_cache(maxsize=1)
def tiny_tokenizer():
    from shared.modeling import train_tokenizer

    return train_tokenizer(TOY_TEXTS * 3, 300, ["<STOP>"])


def tiny_model(seed: int = 0):
    """A fresh tiny random T5 in eval mode (fresh, so a test may change its generation config)."""
    from shared.config import ModelConfig
    from shared.modeling import build_model

    return build_model(ModelConfig(**TINY_DIMS), tiny_tokenizer(), seed=seed).eval()


@contextlib.contextmanager
def one_torch_thread():
    """For a model this small, torch's thread hand-offs cost ~100x the math on a busy machine.
    Restores the previous setting so other test modules (real training) are unaffected."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
