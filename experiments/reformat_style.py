"""Rewrite cPET reports in other hospitals' styles, to measure how much petsum depends on cPET's layout.

cPET separates anatomical sections with runs of spaces and writes its own stock phrases. Other
hospitals write a section header before each region (`胸部：`, `【胸部】`, `胸部:`), put sections on
separate lines, or write one paragraph, and word normal findings differently. This script rewrites
the findings (`question`) of each report of a CSV in one such style and leaves every other column
(the impression, the id) as it is:

    python experiments/reformat_style.py --data runs/split/val.csv --out runs/val_other.csv --style mixed

Styles:

- `headers`: one line per section, each starting with the header of its region (`胸部：…`).
- `newlines`: one line per section, no headers.
- `paragraph`: one paragraph, no headers, no separators.
- `mixed`: a seeded choice per report among the three above, headers inline in one paragraph
  (`…未见异常。胸部：右肺…`) and headers on lines of their own.

Sections and their regions are cPET's (`petsum.text.report.split_sections` of the original), so
petsum reading the rewrite well means it splits into the same regions. Unless `--keep-phrases`,
stock phrases are also swapped for other hospitals' wording (`PHRASES`); each swap is checked
at start against the rules that read it (negation, raised uptake, SUVmax), and a wording a rule
misreads is left out (`UNREAD`, with the rule that would need extending). Deterministic: the
same data, style and seed give the same file, whatever the order of its rows.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from petsum.text.report import split_sections  # noqa: E402
from petsum.text.rules import NEGATIVE, informative, raised_uptake, suv_max  # noqa: E402

STYLES = ("headers", "newlines", "paragraph", "mixed")
_LAYOUTS = ("headers", "newlines", "paragraph", "inline_headers", "header_lines")  # what `mixed` draws from

# The names a header may give each region; one is drawn per report. Sections of the generic
# regions (lymph nodes, soft tissue alone) go under `其他：`, whose organs then decide.
HEADER_NAMES = {
    "brain": ("脑部", "颅脑"),
    "head_neck": ("头颈部", "颈部"),
    "chest": ("胸部",),
    "abdomen": ("腹部",),
    "pelvis": ("盆腔", "盆部"),
    "musculoskeletal": ("骨骼肌肉", "骨骼"),
    "lymph": ("其他",),
    "soft_tissue": ("其他",),
}
HEADER_FORMS = ("{}：", "【{}】", "{}:")

# cPET wording → another hospital's, applied to every occurrence (a hospital writes consistently).
PHRASES: tuple[tuple[str, str], ...] = (
    ("未见明显异常放射性摄取", "未见异常放射性浓聚"),
    ("无异常放射性摄取", "未见放射性摄取增高"),
    ("放射性分布大致正常", "代谢大致正常"),
    ("显影如常", "显影未见异常"),
    ("未见明显肿大淋巴结", "未见肿大淋巴结"),
    ("胸水征阴性", "未见胸腔积液"),
    ("腹水征阴性", "未见腹水"),
)
_SUV_COLON = re.compile(r"(SUV\s*max)\s*[:：]\s*(?=\d)", re.IGNORECASE)  # `SUVmax：5.3` → `SUVmax 5.3`

# Wordings other hospitals use that a rule misreads, so they are not written: the rule to extend first.
UNREAD = {
    "放射性分布大致正常 → 代谢未见异常": "rules.raised_uptake (代谢…异常 reads as raised: the 未见 inside is unseen)",
    "放射性分布大致正常 → 放射性分布未见异常": "rules.raised_uptake (as above: 分布…异常)",
    "放射性分布大致正常 → 代谢正常": "rules.NEGATIVE (has 大致正常, 如常, 未见 but not a bare 正常)",
    "显影如常 → 显影正常": "rules.NEGATIVE (as above)",
    "SUVmax:5.3 → SUVmax=5.3": "rules.suv_max (reads `:`, `：`, `为`, `约` or nothing before the number)",
    "SUVmax:5.3 → SUVmax值约5.3": "rules.suv_max (as above)",
}

_PROBE = "右肺门区{}，边界清。"  # a clause around each phrase, as a section writes it


def _reading(text: str) -> tuple[bool, bool, bool, float | None]:
    return bool(NEGATIVE.search(text)), raised_uptake(text), informative(text), suv_max(text)


def check_phrases() -> None:
    """Fail unless every swap reads, to the rules, as the wording it replaces."""
    pairs = [*PHRASES, ("SUVmax：5.3", _SUV_COLON.sub(r"\1 ", "SUVmax：5.3"))]
    for old, new in pairs:
        if _reading(_PROBE.format(old)) != _reading(_PROBE.format(new)):
            raise SystemExit(f"the rules read {new!r} differently from {old!r}: move it to UNREAD")


def rephrase(text: str) -> str:
    """`text` in another hospital's stock phrases."""
    for old, new in PHRASES:
        text = text.replace(old, new)
    return _SUV_COLON.sub(r"\1 ", text)


def _sentence(text: str) -> str:
    """A section that ends as a sentence does, so that one paragraph still cuts between sections."""
    return text if text.endswith(("。", "；", ";")) else text + "。"


def reformat(findings: str, layout: str, rng: random.Random, phrases: bool = True) -> str:
    """`findings` rewritten in `layout` (one of `_LAYOUTS`), header names and forms drawn from `rng`."""
    sections = split_sections(findings)
    form = rng.choice(HEADER_FORMS)
    names = {region: rng.choice(options) for region, options in HEADER_NAMES.items()}
    texts = [rephrase(t) if phrases else t for _, t in sections]
    headers = [form.format(names[region]) for region, _ in sections]
    if layout == "headers":
        return "\n".join(h + t for h, t in zip(headers, texts))
    if layout == "header_lines":
        return "\n".join(f"{h}\n{t}" for h, t in zip(headers, texts))
    if layout == "inline_headers":
        return "".join(h + _sentence(t) for h, t in zip(headers, texts))
    if layout == "newlines":
        return "\n".join(texts)
    if layout == "paragraph":
        return "".join(_sentence(t) for t in texts)
    raise ValueError(f"unknown layout {layout!r}")


def layout_of(style: str, rng: random.Random) -> str:
    """The layout a report gets: the style's own, or for `mixed` one drawn from `rng`."""
    return rng.choice(_LAYOUTS) if style == "mixed" else style


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="CSV with question (findings) and answer")
    parser.add_argument("--out", type=Path, required=True, help="the rewritten CSV")
    parser.add_argument("--style", choices=STYLES, default="mixed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-phrases", action="store_true", help="change the layout only, not the wording")
    args = parser.parse_args(argv)
    check_phrases()
    with args.data.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames or [], list(reader)
    counts: dict[str, int] = {}
    for number, row in enumerate(rows):
        # Seeded by the report's id, not its position: a row's rewrite does not depend on the others.
        rng = random.Random(f"{args.seed}:{row.get('qid') or number}")
        layout = layout_of(args.style, rng)
        counts[layout] = counts.get(layout, 0) + 1
        row["question"] = reformat(row["question"], layout, rng, phrases=not args.keep_phrases)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} reports rewritten to {args.out}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


if __name__ == "__main__":
    main()
