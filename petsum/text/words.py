"""Word segmentation for word-level ROUGE: jieba with the organ lexicon as a user dictionary,
and clinical tokens (PET/CT, SUVmax, 18F-FDG, numbers with units) kept whole."""

from __future__ import annotations

import re
from functools import lru_cache

from petsum.text.lexicon import load_lexicon

# Tokens jieba would cut apart: tracer and modality names, SUV readings, measurements.
PROTECTED = re.compile(
    r"PET/CT|PET/MR|SPECT/CT|18F-FDG|\d+F-[A-Z]+|SUV(?:max|mean|peak)?"
    r"|\d+(?:\.\d+)?(?:\s*[×xX*]\s*\d+(?:\.\d+)?)*\s*(?:cm|mm|ml|mL|min|kg|g|MBq|mCi|HU|%)?",
)


def available() -> bool:
    try:
        import jieba  # noqa: F401
    except ImportError:
        return False
    return True


@lru_cache(maxsize=1)
def _tokenizer():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)  # it logs its dictionary build to stderr otherwise
    tok = jieba.Tokenizer()
    for term in load_lexicon().organ_of:
        tok.add_word(term, freq=100_000)  # organ terms win over the general dictionary's splits
    return tok


def words(text: str) -> list[str]:
    """Words of `text`, without whitespace and punctuation."""
    out: list[str] = []
    pos = 0
    for m in PROTECTED.finditer(text):
        if m.start() > pos:
            out += _tokenizer().lcut(text[pos : m.start()])
        out.append(re.sub(r"\s+", "", m.group()))
        pos = m.end()
    out += _tokenizer().lcut(text[pos:])
    return [w for w in (w.strip() for w in out) if w and re.search(r"\w", w)]
