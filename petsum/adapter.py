"""The PET/CT task as the AS-ES core sees it."""

from __future__ import annotations

from shared.adapter import StopTokenAdapter

STOP = "<STOP>"


class PetAdapter(StopTokenAdapter):
    """Impressions are split at Chinese punctuation and item numbers; the last segment ends
    with `<STOP>`; BLEU uses sacrebleu's Chinese tokenizer."""

    def __init__(self) -> None:
        super().__init__(name="petsum", stop=STOP, bleu_tokenize="zh")
