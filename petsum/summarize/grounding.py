"""The grounding guard: what the model writes about a finding must be about that finding.

A small model sometimes answers a finding with a frequent impression about another organ: a
neck lymph node as `胰腺癌伴肝内转移`, prostate calcification as `肝内钙化灶`. On 300 validation
reports 5.4% of the abnormal outputs named organs of which the finding names none. Such an output
is replaced by the finding in the report's own words (`report_words`): less fluent, but true,
and it keeps the organ in the impression. On those reports the guard lowered the missing ratio
from 13.0 to 10.0 and the extra ratio from 19.1 to 16.9 at the same ROUGE-L (45.6).

Numbers and sides are held to the same rule, since the findings are all the model reads: a
clause that states a number its finding does not (a comparison date, `与2019-19-09 PET/CT检查比较`;
a vertebra, `胸1111椎体`), or puts an organ on the side opposite to the only side its finding
gives it (`左肾囊肿` for `右肾见囊性低密度影`), is invented. Numbers compare by value (`2cm` is
`2.0cm`, `09` is `9`), a range in the finding gives every level in it (`腰3-5椎体` gives 4), and
tracer and sequence names (`18F-FDG`, `T2WI`) are not numbers. `trim` cuts such clauses; when
nothing about the finding would be left, `guard` puts the report's words in place of the output.
"""

from __future__ import annotations

from dataclasses import dataclass

from petsum.text.contradiction import contradictions
from petsum.text.lexicon import Lexicon, load_lexicon
from petsum.text.rules import (
    MAX_RANGE,
    NOT_A_NUMBER,
    NUMBER,
    OPPOSITE_SIDE,
    RANGE,
    changes,
    clause_pieces,
    clauses,
    informative,
    is_stable,
    key_measure,
    sentences,
    sided_organs,
    strip_header,
    without_suv,
)

MAX_CLAUSES = 5  # an impression item is short: the organ, what is seen in it, its size and uptake


@dataclass(frozen=True)
class Given:
    """What a finding gives an answer to say: its organs, its numbers by value, its sided organs."""

    organs: set[str]
    numbers: set[float]
    sides: set[tuple[str, str]]


def given(finding: str, lexicon: Lexicon | None = None) -> Given:
    lex = lexicon or load_lexicon()
    return Given(lex.organs_in(finding), _values(finding), sided_organs(finding, lex))


def _values(text: str) -> set[float]:
    """The numbers `text` states, by value, with every whole number inside its ranges."""
    text = NOT_A_NUMBER.sub(" ", text)
    values = {float(n) for n in NUMBER.findall(text)}
    for low, high in RANGE.findall(text):
        if 0 < int(high) - int(low) <= MAX_RANGE:
            values.update(float(v) for v in range(int(low), int(high) + 1))
    return values


def _new_numbers(numbers: set[float], text: str) -> set[str]:
    return {n for n in NUMBER.findall(NOT_A_NUMBER.sub(" ", text)) if float(n) not in numbers}


def _new_sides(sides: set[tuple[str, str]], text: str, lexicon: Lexicon | None = None) -> set[tuple[str, str]]:
    return {
        (side, organ)
        for side, organ in sided_organs(text, lexicon)
        if (OPPOSITE_SIDE[side], organ) in sides and (side, organ) not in sides
    }


def invented_numbers(finding: str, text: str) -> set[str]:
    """The numbers `text` states that `finding` does not, compared by value as whole numbers
    (`胸1` is not in `胸11`; `2cm` is in `2.0cm`)."""
    return _new_numbers(_values(finding), text)


def invented_sides(finding: str, text: str, lexicon: Lexicon | None = None) -> set[tuple[str, str]]:
    """(side, organ) that `text` states where `finding` names that organ on the other side only."""
    return _new_sides(sided_organs(finding, lexicon), text, lexicon)


def invented(finding: str, text: str, lexicon: Lexicon | None = None) -> bool:
    """`text` states a number or a side that `finding` does not give it."""
    return _invents(given(finding, lexicon), text, lexicon)


def _invents(g: Given, text: str, lexicon: Lexicon | None = None) -> bool:
    return bool(_new_numbers(g.numbers, text) or _new_sides(g.sides, text, lexicon))


def grounded(finding: str, output: str, lexicon: Lexicon | None = None) -> bool:
    """False when `output` names organs and `finding` names organs, but none in common."""
    lex = lexicon or load_lexicon()
    return _grounded(lex.organs_in(finding), lex.organs_in(output))


def _grounded(asked: set[str], said: set[str]) -> bool:
    return not (said and asked) or bool(said & asked)


def report_words(finding: str, lexicon: Lexicon | None = None) -> str:
    """The finding as an impression item in the report's words: what it reports (`informative`
    clauses, changes since an earlier exam) with the size and SUV that follow them in their
    sentence (`key_measure`), at most `MAX_CLAUSES`; without the section header, clauses that
    call something normal, and other measurements (CT values). A kept clause that names no organ
    takes the organ of the normal clause before it (`前列腺大小正常，内见钙化灶` → `前列腺内见钙化灶`).
    "" when nothing is reported."""
    lex = lexicon or load_lexicon()
    kept: list[str] = []
    for sentence in sentences(strip_header(finding)):
        reported, subject = False, ""
        for clause in clauses(sentence):
            if key_measure(clause) and not informative(without_suv(clause), lex):
                if reported:  # the size or uptake of what this sentence reported
                    kept.append(clause)
                continue
            if informative(clause, lex) or changes(clause) or is_stable(clause):
                kept.append(clause if lex.terms_in(clause) or not subject else subject + clause)
                reported, subject = True, ""
            elif terms := lex.terms_in(clause):
                subject = terms[0]  # a normal clause's organ: the subject of what follows
    kept = kept[:MAX_CLAUSES]
    return "，".join(kept) + "。" if kept else ""


def ground(finding: str, output: str, lexicon: Lexicon | None = None, cut: bool = True) -> tuple[str, str | None]:
    """(what stands for `output`, what the guard did: None, "copy" or "trim"), the finding's
    organs, numbers and sides read once.

    "copy": `output` is ungrounded, and the finding in `report_words` (or, when every clause of it
    is a measurement, the finding as written) stands instead. An output is ungrounded when it
    names only organs the finding does not, or when nothing about the finding is left of it
    without its clauses that state numbers or sides the finding does not.
    "trim" (only with `cut`): `output` without its clauses about organs the finding does not name
    (`肝左叶高代谢灶，考虑胃癌可能性大` → `肝左叶高代谢灶。` for a liver finding) and without its
    clauses that invent a number or side. A clause may stay when it invents nothing and names no
    organ, or one the finding names; with a finding that names no organ, the organ rule does not
    apply but the number and side rule does."""
    lex = lexicon or load_lexicon()
    g = given(finding, lex)
    pieces = [(p, lex.organs_in(p), _invents(g, p, lex)) for p in clause_pieces(output)]
    kept = [(p, organs) for p, organs, new in pieces if not new and (not g.organs or not organs or organs & g.organs)]
    if not (any(organs & g.organs for _, organs in kept) if g.organs else any(p.strip("，,；;。 ") for p, _ in kept)):
        kept = []  # nothing about the finding would be left
    said = set().union(*(organs for _, organs, _ in pieces))
    if not _grounded(g.organs, said) or (any(new for _, _, new in pieces) and not kept):
        words = report_words(finding, lex) or finding.strip()
        if words:
            return (words if words.endswith("。") else words + "。"), "copy"
    if cut and kept and len(kept) != len(pieces):
        return "".join(p for p, _ in kept).rstrip("，,；;。 ") + "。", "trim"
    return output, None


def checked(finding: str, output: str, lexicon: Lexicon | None = None, cut: bool = True) -> tuple[str, str | None]:
    """`ground`, then the contradiction check (`petsum.text.contradiction`): an answer that asserts
    what its finding negates (raised uptake the finding denies, an organ state it denies, the
    opposite change) is replaced by the finding in the report's words, action "contradiction"."""
    said, action = ground(finding, output, lexicon, cut)
    if action == "copy" or not contradictions(finding, said):
        return said, action
    words = report_words(finding, lexicon) or finding.strip()
    return (words if words.endswith("。") else words + "。"), "contradiction"


def guard(finding: str, output: str, lexicon: Lexicon | None = None) -> str | None:
    """What stands in place of an ungrounded `output` (`ground`'s "copy"); None when it may stand."""
    text, action = ground(finding, output, lexicon, cut=False)
    return text if action == "copy" else None


def trim(finding: str, output: str, lexicon: Lexicon | None = None) -> str | None:
    """`output` with its clauses about other organs, or with invented numbers or sides, cut
    (`ground`'s "trim"); None when nothing is cut, and when the output is to be replaced instead."""
    text, action = ground(finding, output, lexicon)
    return text if action == "trim" else None
