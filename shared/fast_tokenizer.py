"""The tokenizer of an export without transformers: a `tokenizers.Tokenizer` read from
`tokenizer.json`, with the few methods inference calls on a Hugging Face tokenizer.

Importing transformers (and torch behind it) takes seconds, more than a batch of a hundred
reports takes to summarize on a fast engine; an export served by onnxruntime or CTranslate2 needs
neither. `tests/shared/test_fast_tokenizer.py` holds it to the Hugging Face tokenizer it stands
for, id for id and text for text.
"""

from __future__ import annotations

import json
from pathlib import Path

from shared.textio import InputError


class FastTokenizer:
    """What generation asks of a tokenizer: encode without special tokens, decode without them,
    and the ids of EOS and padding."""

    def __init__(self, tokenizer, eos_token: str, pad_token: str) -> None:
        self._tok = tokenizer
        self.eos_token_id = tokenizer.token_to_id(eos_token)
        self.pad_token_id = tokenizer.token_to_id(pad_token)
        if self.eos_token_id is None or self.pad_token_id is None:
            raise ValueError(f"{eos_token!r} or {pad_token!r} is not in the vocabulary")

    def __call__(self, texts: str | list[str], add_special_tokens: bool = True) -> dict[str, list]:
        if isinstance(texts, str):
            return {"input_ids": self._tok.encode(texts, add_special_tokens=add_special_tokens).ids}
        encoded = self._tok.encode_batch(texts, add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encoded]}

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return self._tok.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        return self._tok.decode(ids, skip_special_tokens=skip_special_tokens)

    def batch_decode(self, rows: list[list[int]], skip_special_tokens: bool = False) -> list[str]:
        return self._tok.decode_batch([list(r) for r in rows], skip_special_tokens=skip_special_tokens)

    def convert_ids_to_tokens(self, ids: int | list[int]):
        if isinstance(ids, int):
            return self._tok.id_to_token(ids)
        return [self._tok.id_to_token(i) for i in ids]

    def get_vocab(self) -> dict[str, int]:
        return self._tok.get_vocab()

    def __len__(self) -> int:
        return self._tok.get_vocab_size()


def load_fast_tokenizer(path: str | Path) -> FastTokenizer | None:
    """The folder's tokenizer as a `FastTokenizer`; None where the folder's tokenizer is not one
    this class stands for (then the caller loads it with transformers)."""
    from tokenizers import Tokenizer

    folder = Path(path)
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    # Only the plain form our training writes (`shared.modeling`): no added cleanup, no chat template,
    # no special-token handling beyond EOS and padding.
    plain = (
        isinstance(config, dict)
        and config.get("tokenizer_class") in ("TokenizersBackend", "PreTrainedTokenizerFast")
        and not config.get("clean_up_tokenization_spaces", False)
        and isinstance(config.get("eos_token"), str)
        and isinstance(config.get("pad_token"), str)
    )
    if not plain or not (folder / "tokenizer.json").is_file():
        return None
    try:
        return FastTokenizer(
            Tokenizer.from_file(str(folder / "tokenizer.json")), config["eos_token"], config["pad_token"]
        )
    except Exception as e:  # tokenizers raises plain Exceptions for a broken file
        raise InputError(f"{folder / 'tokenizer.json'}: not a readable tokenizer ({type(e).__name__})") from None
