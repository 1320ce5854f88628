"""A region's findings cut down to what an impression could be about: grounding by input.

Most of a PET/CT findings section is template text that says an organ is normal (`肝脏形态可，
轮廓光整，肝叶比例正常`). A small model trained on whole sections learns to write frequent
impressions whatever the section says; trained on the few sentences that report something, it
has little else to copy from. `salient_text` keeps, per sentence, the clauses from the first
informative one on — a clause is informative when it names an organ without calling it normal,
names a lesion (`右叶内可见结节伴钙化`), or reports raised uptake — dropping later clauses that call
another organ normal. A lesion clause keeps the organ clause before it (`甲状腺两叶不大`): that is
what the lesion is in. Clauses without an organ (`SUVmax:3.0`, `无异常放射性摄取`) stay: they
qualify the finding before them.

On the validation split, listing the kept text region by region leaves out 3.3% of the organs
the reference impression names (5.8% before lesion clauses counted; the extractive floor, which
keeps raised-uptake sentences only, leaves out 48%), and keeps 47% of the characters.
"""

from __future__ import annotations

from petsum.text.lexicon import Lexicon, load_lexicon
from petsum.text.report import drop_headers
from petsum.text.rules import clause_pieces, informative, sentences, strip_header


def salient_sentence(sentence: str, lexicon: Lexicon | None = None) -> str:
    """The sentence from its first informative clause on, without later clauses about another
    organ that is normal; "" when no clause is informative. A section header at its start
    (`胸部：右肺…`) is structure and left out."""
    lex = lexicon or load_lexicon()
    clauses = [c for c in clause_pieces(strip_header(sentence)) if c.strip()]
    flags = [informative(c, lex) for c in clauses]
    if not any(flags):
        return ""
    first = flags.index(True)
    if not lex.terms_in(clauses[first]):  # `前列腺大小正常，左叶见摄取增高灶`: keep the organ it is about
        first = next((i for i in range(first - 1, -1, -1) if lex.terms_in(clauses[i])), first)
    kept = "".join(
        c for i, (c, f) in enumerate(zip(clauses, flags)) if i == first or (i > first and (f or not lex.terms_in(c)))
    )
    kept = kept.strip().rstrip("，,")
    return kept if kept.endswith(("。", "；")) else kept + "。"


def salient_text(section: str, lexicon: Lexicon | None = None) -> str:
    """The informative part of one region's findings, without its section headers; "" for a
    section with nothing to report."""
    lex = lexicon or load_lexicon()
    return "".join(s for s in (salient_sentence(p, lex) for p in sentences(drop_headers(section))) if s)
