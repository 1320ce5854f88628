"""More training problems from GSM8K's own annotations: the same reasoning with other numbers.

A GSM8K solution states each step's arithmetic as an annotation, `<<48/2=24>>`. Read together with
the question, the annotations are a small program: each number in a step is a number of the
question (48), the result of an earlier step (24 in `<<48+24=72>>`), or a constant the solution
brings (the 2 of "half", 60 minutes an hour). A variant draws new values for the question's
numbers, of the same kind (an integer stays an integer, a decimal keeps its places, each within a
factor of two of the original), recomputes every step with the calculator, and writes the
question, the solution and the answer with the new values. A variant is kept only when every
step's result keeps the original's kind (positive stays positive, whole stays whole), the final
answer is the last step's result as in the original, and the written solution re-evaluates:
each rewritten annotation computes its own stated result.

A problem is not augmented (counted by reason, never quoted) when its annotations do not read as
such a program: a step's result equal to another value (a question number, a constant, an earlier
result: the rewrite could not tell them apart in the text), a question number written several
ways, or a final answer that is not the last step's result. A number the question states twice is
one value, changed alike in both places.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from mwp.calculator import evaluate, format_value

_ANNOTATION = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?(?![\w])|(?<![\w.])\.\d+(?![\w])")
_FINAL = re.compile(r"####\s*(.+?)\s*$")
MAX_TRIES = 30  # draws per variant before giving up on it: most problems need one or two
SPREAD = 2  # a new question value lies within this factor of the original


def _value(token: str) -> Fraction:
    return Fraction(token.replace(",", ""))


@dataclass
class Program:
    """A solution as steps over named values: `q0…` the question's numbers, `s0…` the steps'
    results; constants stay as written. `template` is the solution with every value as `{name}`."""

    question: str  # with `{q0}`… where the question's numbers were
    template: str  # the solution likewise, annotations included
    originals: dict[str, Fraction]  # every name's value in the original
    steps: list[tuple[str, str]] = field(default_factory=list)  # (expression with `{names}`, result name)
    places: dict[str, int] = field(default_factory=dict)  # a question value's decimal places
    grouped: set[str] = field(default_factory=set)  # names written with thousands commas


def _places(token: str) -> int:
    return len(token.split(".")[1]) if "." in token else 0


def read_program(question: str, answer: str) -> tuple[Program | None, str]:
    """(the program of one GSM8K problem, "") or (None, why it cannot be augmented)."""
    final = _FINAL.search(answer)
    annotations = list(_ANNOTATION.finditer(answer))
    if not final or not annotations:
        return None, "no annotations"
    names: dict[Fraction, str] = {}  # value → name: each value has one name, or the problem is skipped
    originals: dict[str, Fraction] = {}
    places: dict[str, int] = {}
    forms: dict[Fraction, set[str]] = {}
    for token in _NUMBER.findall(question):
        value = _value(token)
        forms.setdefault(value, set()).add(token)
        if value not in names:
            name = f"q{len(places)}"
            names[value], originals[name], places[name] = name, value, _places(token)
    if any(len(f) > 1 for f in forms.values()):
        return None, "a question number written several ways"
    steps: list[tuple[str, str]] = []
    constants: set[Fraction] = set()
    for k, m in enumerate(annotations):
        expr, stated = m.group(1), m.group(2).strip().lstrip("$")
        computed = evaluate(expr)
        if computed is None or not _NUMBER.fullmatch(stated) or computed != _value(stated):
            return None, "a step that does not compute its stated result"
        constants |= {_value(t) for t in _NUMBER.findall(expr) if _value(t) not in names}
        if computed in names or computed in constants:
            return None, "two values that are equal"
        result = f"s{k}"
        steps.append((_named(expr, names), result))
        names[computed], originals[result] = result, computed
    if constants & set(names):  # a constant that equals a later step's result
        return None, "two values that are equal"
    last = final.group(1).lstrip("$").strip()
    if not _NUMBER.fullmatch(last) or _value(last) != originals[steps[-1][1]]:
        return None, "a final answer that is not the last step's result"
    grouped = {names[_value(t)] for t in _NUMBER.findall(question + answer) if "," in t and _value(t) in names}
    answer = answer.replace("{", "(").replace("}", ")")  # braces would read as names below
    question = question.replace("{", "(").replace("}", ")")
    return Program(_named(question, names), _named(answer, names), originals, steps, places, grouped), ""


def _named(text: str, names: dict[Fraction, str]) -> str:
    """`text` with every number that has a name written as `{name}`."""

    def swap(m: re.Match) -> str:
        name = names.get(_value(m.group(0)))
        return f"{{{name}}}" if name else m.group(0)

    return _NUMBER.sub(swap, text)


def _draw(value: Fraction, places: int, rng: random.Random) -> Fraction:
    """A new value of the same kind: within a factor of `SPREAD`, positive, with `places` decimals."""
    scale = 10**places
    low, high = max(1, int(value * scale / SPREAD)), max(2, int(value * scale * SPREAD))
    return Fraction(rng.randint(low, high), scale)


def _written(value: Fraction, places: int | None, grouped: bool) -> str:
    text = format_value(value) if places is None else f"{float(value):.{places}f}" if places else str(int(value))
    if grouped and "." not in text and abs(value) >= 1000:
        text = f"{int(text):,}"
    return text


def variant(program: Program, rng: random.Random) -> tuple[str, str] | None:
    """(question, answer) with new question values, or None when no draw in `MAX_TRIES` keeps every
    step's kind and re-evaluates."""
    questions = [n for n in program.originals if n.startswith("q")]
    for _ in range(MAX_TRIES):
        values = {n: _draw(program.originals[n], program.places[n], rng) for n in questions}
        if all(values[n] == program.originals[n] for n in questions):
            continue
        ok = True
        for expr, result in program.steps:
            computed = evaluate(expr.format(**{k: format_value(v) for k, v in values.items()}))
            original = program.originals[result]
            if (
                computed is None
                or (original > 0 and computed <= 0)
                or (original.denominator == 1 and computed.denominator != 1)
            ):
                ok = False
                break
            values[result] = computed
        if not ok or len(set(values.values())) < len(values):
            continue
        texts = {
            n: _written(v, program.places.get(n) if n.startswith("q") else None, n in program.grouped)
            for n, v in values.items()
        }
        question = program.question.format(**texts)
        answer = program.template.format(**texts)
        final = texts[program.steps[-1][1]]
        answer = _FINAL.sub(f"#### {final}", answer)
        if reevaluates(answer):
            return question, answer
    return None


def reevaluates(answer: str) -> bool:
    """Whether every annotation of a solution computes its stated result, and it has a final answer."""
    annotations = list(_ANNOTATION.finditer(answer))
    return (
        bool(annotations)
        and bool(_FINAL.search(answer))
        and all(
            (got := evaluate(m.group(1))) is not None
            and _NUMBER.fullmatch(m.group(2).strip())
            and got == _value(m.group(2).strip())
            for m in annotations
        )
    )


@dataclass
class Augmented:
    rows: list[dict]
    counts: Counter


def masked(question: str) -> str:
    """A question with its numbers masked and its spacing folded: two problems alike but for their
    numbers (GSM8K holds such pairs across train and test) mask alike."""
    return " ".join(_NUMBER.sub("#", question).split())


def augment(rows: list[dict], variants: int, seed: int = 0, held_out: Iterable[str] = ()) -> Augmented:
    """Every row as it is, then up to `variants` variants of it (`id` `{id}~v{k}`, `variant_of`, and
    `group`: the original's question, which keeps a variant on its original's side of a split),
    drawn reproducibly from `seed` and the row's position; `counts` says what was skipped and why.
    A problem whose masked question is that of a `held_out` question (the test set's) gets no
    variants: with other numbers it could become that test problem."""
    out: list[dict] = []
    counts: Counter = Counter()
    test_masks = {masked(q) for q in held_out}
    for n, row in enumerate(rows):
        out.append(row)
        rid = str(row.get("id", n + 1))
        if masked(str(row["question"])) in test_masks:
            counts["problem skipped: a test question with other numbers"] += 1
            continue
        program, why = read_program(str(row["question"]), str(row["answer"]))
        if program is None:
            counts[f"problem skipped: {why}"] += 1
            continue
        counts["problems augmented"] += 1
        rng = random.Random(f"{seed}:{n}")
        seen = {str(row["question"])}
        for k in range(variants):
            got = variant(program, rng)
            if got is None or got[0] in seen:
                counts["variants rejected"] += 1
                continue
            seen.add(got[0])
            out.append(
                {
                    "id": f"{rid}~v{k + 1}",
                    "question": got[0],
                    "answer": got[1],
                    "variant_of": rid,
                    "group": row["question"],
                }
            )
            counts["variants written"] += 1
    return Augmented(out, counts)


def augment_file(
    data: str | Path, out: str | Path, variants: int, seed: int = 0, test: str | Path | None = None
) -> Counter:
    """`augment` from one JSONL file (or a folder's train.jsonl) to another, refusing a test set as
    input; `test` (default: the test.jsonl beside the input, where there is one) is held out."""
    from shared.textio import InputError, read_jsonl_rows

    source = Path(data) / "train.jsonl" if Path(data).is_dir() else Path(data)
    if source.name.startswith("test"):
        raise InputError(f"{source}: mwp augment never reads a test set")
    rows = list(read_jsonl_rows(source))
    if any(not isinstance(r.get("question"), str) or not isinstance(r.get("answer"), str) for r in rows):
        raise InputError(f"{source}: every record needs a question and a GSM8K answer (text)")
    held = Path(test) if test else source.parent / "test.jsonl"
    held_out = [str(r.get("question", "")) for r in read_jsonl_rows(held)] if held.is_file() else []
    result = augment(rows, variants, seed, held_out)
    target = Path(out)
    if target.exists() and target.stat().st_size:
        raise InputError(f"{target} exists and is not empty: choose another --out")
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as f:
        for row in result.rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    result.counts["held-out questions"] = len(held_out)
    return result.counts
