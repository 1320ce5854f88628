"""Every clinical-text rule petsum applies, in one place: how findings and impressions are cut into
sentences, clauses and items, and what in a clause negates, measures, names a side, advises,
reports raised uptake or suggests malignancy. Every other module uses these; none re-derives
them, so that a fix here reaches the input selection, the guard, the assembler, the fits and the
metrics at once.

Findings and impressions are cut differently on purpose. A findings section is template prose
whose sentences end at `。` or `；`; an impression is numbered items whose sentences end at
`。！？` (a `；` there joins findings of one item), never inside a bracketed aside.
"""

from __future__ import annotations

import re
import unicodedata

from petsum.text.lexicon import Lexicon, load_lexicon
from shared.metrics import units

# --- sentences and clauses -------------------------------------------------------------------

SENTENCE_MARKS = "。；;"  # a findings sentence ends here
CLAUSE_MARKS = "，," + SENTENCE_MARKS  # a clause ends at a comma or where its sentence does
_SENTENCE_AFTER = re.compile(f"(?<=[{SENTENCE_MARKS}])")
_CLAUSE_AFTER = re.compile(f"(?<=[{CLAUSE_MARKS}])")
_CLAUSE_SPLIT = re.compile(f"[{CLAUSE_MARKS}]")


def sentences(text: str) -> list[str]:
    """Findings text cut after each `。`, `；` or `;`, blank pieces dropped."""
    return [p for p in _SENTENCE_AFTER.split(text) if p.strip()]


# A section header another hospital writes before a region's findings (`胸部：`, `【腹部】`, `骨骼肌肉:`):
# structure, not content, so no finding or copy of one starts with it. A colon or a closing
# bracket is required: cPET starts sections with the bare word (`腹部胃充盈好`), which is content.
# The name each header may take, with the region it names (None: the organs decide).
HEADER_REGIONS: dict[str, str | None] = {
    **dict.fromkeys(("脑", "脑部", "头部", "颅脑"), "brain"),
    **dict.fromkeys(("头颈", "头颈部", "颈部"), "head_neck"),
    **dict.fromkeys(("胸部", "胸"), "chest"),
    **dict.fromkeys(("腹部", "腹"), "abdomen"),
    **dict.fromkeys(("盆腔", "盆部"), "pelvis"),
    **dict.fromkeys(("骨骼", "骨骼肌肉", "骨骼系统", "肌肉骨骼", "骨与关节"), "musculoskeletal"),
    **dict.fromkeys(("腹盆", "腹盆部", "腹盆腔", "其他", "其它"), None),
}
_HEADER_NAME = "|".join(sorted(map(re.escape, HEADER_REGIONS), key=len, reverse=True))  # longest first
# Unanchored, for finding headers inside a text (`…正常。胸部：右肺…`); `_HEADER` at its start.
HEADER = re.compile(rf"[【\[]?(?P<name>{_HEADER_NAME})[ \t]*(?:[】\]][ \t]*[：:]?|[：:])\s*")
_HEADER = re.compile(rf"^\s*{HEADER.pattern}")


def strip_header(text: str) -> str:
    """`text` without a section header at its start."""
    return _HEADER.sub("", text, count=1)


def header_region(text: str) -> str | None:
    """The region the section header at the start of `text` names; None without one (or for a
    header such as `其他：` that names no single region)."""
    m = _HEADER.match(text)
    return HEADER_REGIONS[m.group("name")] if m else None


def clause_pieces(text: str) -> list[str]:
    """`text` cut after each clause's punctuation, which each piece keeps (a piece may be blank)."""
    return [p for p in _CLAUSE_AFTER.split(text) if p]


def clauses(text: str) -> list[str]:
    """`text`'s clauses without their punctuation, stripped, blank ones dropped."""
    return [c.strip() for c in _CLAUSE_SPLIT.split(text) if c.strip()]


# A closed bracket is one aside: `考虑良性（囊腺瘤？）可能性大。` is one sentence, not `…（囊腺瘤？` and `）可能性大。`.
_ASIDE = re.compile(r"[（(][^（）()]*[）)]")  # either width: the model mixes them (`（囊肿?)`)
_IMPRESSION_SENTENCE_END = re.compile(r"(?<=[。！？!?])")


def impression_sentences(text: str) -> list[str]:
    """Impression text cut after each `。！？!?` that is not inside a closed bracket."""
    asides = [m.span() for m in _ASIDE.finditer(text)]
    cuts = [m.start() for m in _IMPRESSION_SENTENCE_END.finditer(text) if not any(a < m.start() < b for a, b in asides)]
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


# --- follow-up exams ----------------------------------------------------------------------------

# Findings that compare with an earlier exam (`较前增大`, `前次`, `新增`, `同前`): a follow-up exam, whose
# impression opens with the comparison and keeps each lesion's change.
FOLLOW_UP = re.compile(r"较前(?!列腺)|前次|前片|新发|新增|同前(?!列腺)|好转")


def is_follow_up(findings: str) -> bool:
    """Whether the findings compare with an earlier exam."""
    return bool(FOLLOW_UP.search(findings))


# A change since the earlier exam, by what changed: `size` (增大/缩小), `count` (增多/减少), `level` (代谢、
# 摄取、密度 增高/减低) and `overall` (进展/好转, 新发, 消失), each `up` or `down`; `stable` for `相仿`/`同前`.
# A verb is a change when `较前`, `前次`, `本次` or `原` frames its sentence (`原直肠壁放射性摄取较前减低`),
# or when it only has one reading (`新发`, `消失`, `进展`, `好转`).
CHANGE_VERBS: dict[str, tuple[str, str]] = {
    **dict.fromkeys(("增大", "扩大", "增厚", "变大"), ("size", "up")),
    **dict.fromkeys(("缩小", "减小", "变小", "变薄"), ("size", "down")),
    **dict.fromkeys(("增多",), ("count", "up")),
    **dict.fromkeys(("减少",), ("count", "down")),
    **dict.fromkeys(("增高", "升高", "增强", "加重", "加深", "浓聚增加"), ("level", "up")),
    **dict.fromkeys(("减低", "降低", "减弱", "减轻", "减淡", "变淡"), ("level", "down")),
    **dict.fromkeys(("进展", "新发", "新见", "新增", "新出现"), ("overall", "up")),
    **dict.fromkeys(("好转", "消失", "吸收", "消退"), ("overall", "down")),
}
_CHANGE_VERB = re.compile("|".join(sorted(CHANGE_VERBS, key=len, reverse=True)))
_ALWAYS_CHANGE = {"进展", "新发", "新见", "新增", "新出现", "好转", "消失", "消退"}
_COMPARED = re.compile(r"较前|前次|本次|原(?!发)|与前|治疗后")
STABLE = re.compile(r"相仿|同前(?!列腺)|无明显变化|无变化|变化不明显|变化不大|大致相同|基本相同|相似")
_NOT_BEFORE_VERB = re.compile(r"(?:未见|未|无|不|没有)[^，。；]{0,4}$")
# `SUVmax：5.3vs11.2`: this exam's value, then the earlier one's (cPET writes them so, after `较前减低`).
VERSUS = re.compile(
    r"SUV\s*max\s*[:：为约]?\s*([0-9]+(?:\.[0-9]+)?)\s*(?:vs|VS|Vs|→)\.?\s*([0-9]+(?:\.[0-9]+)?)", re.IGNORECASE
)


def changes(text: str) -> set[tuple[str, str]]:
    """(what, direction) for each change since the earlier exam that `text` states: what is `size`,
    `count`, `level` or `overall`, direction `up` or `down`; (`level`, up or down) also for an
    `SUVmax: now vs before` pair with different values. `stable` comparisons are not changes."""
    out: set[tuple[str, str]] = set()
    for sentence in re.split(r"[。；;\n]", text):
        compared = bool(_COMPARED.search(sentence))
        for m in _CHANGE_VERB.finditer(sentence):
            if _NOT_BEFORE_VERB.search(sentence[: m.start()]):
                continue  # `未见增大`, `无明显增高`: no change said
            if compared or m.group(0) in _ALWAYS_CHANGE:
                out.add(CHANGE_VERBS[m.group(0)])
        for now, before in VERSUS.findall(sentence):
            if float(now) != float(before):
                out.add(("level", "up" if float(now) > float(before) else "down"))
    return out


def is_stable(text: str) -> bool:
    """Whether `text` says something is unchanged since the earlier exam (`较前相仿`, `同前`)."""
    return bool(STABLE.search(text))


# An impression item's number: `1、`, ` 2.`, `。3．`; not `2.5cm`. Scoring strips these.
ITEM_NUMBER = re.compile(r"(?:^|(?<=[\s。；]))\d{1,2}[、.．](?!\d)")


def comparable(text: str) -> str:
    """What an impression says: item numbers and whitespace removed."""
    return re.sub(r"\s+", "", ITEM_NUMBER.sub("", text))


def chars(text: str) -> list[str]:
    """What an impression says in the metrics' units (each CJK character, each ASCII word or
    number; no punctuation): consensus decoding votes in these too."""
    return [u for u in units(comparable(text)) if not unicodedata.category(u[0]).startswith("P")]


# Where a written impression's next item starts when it is read into items: also after a colon
# (`与前次比较：1、…`), with the number captured.
ITEM_START = re.compile(r"(?:^|(?<=\s)|(?<=[。；：:]))(\d{1,2})[、.．](?!\d)")
# The closing line radiologists end with: `余躯干及脑部PET/CT检查未见其他异常代谢征象。`
CLOSING = re.compile(r"^(?:目前)?余.{0,20}(?:PET|未见)")
# A sentence that advises rather than reports belongs to the finding before it.
ADVICE = re.compile(r"^(?:请|建议|必要时|随访|随诊|复查|结合|注意)")

# --- what a clause says ----------------------------------------------------------------------

# Clauses that report the absence of disease: their organs are not findings.
NEGATIVE = re.compile(r"未见|未显示|无明显|无异常|无扩张|无增厚|无肿大|如常|大致正常|形态正常|阴性|(?<!不)对称")
# Descriptions that call an organ unremarkable, beyond the negations above (未见, 无异常, 如常 …).
# 规则/清晰/均匀/光整 only when no 不/欠/非 negates them: `形态不规则` reports something.
UNREMARKABLE = re.compile(
    r"形态可|形态尚可|比例正常|结构正常|显影可|显影尚可|不大|尚可|显影淡|居中|充盈好|充盈尚可|充盈良好"
    r"|未显影|不扩张|(?<![不欠非])(?:清晰|规则|均匀|光整|光滑|正常|对称)"
)
# A lesion named without an organ (`右叶内可见结节伴钙化`): the organ is the sentence's subject.
LESION = re.compile(
    r"(?<![不无未])(?:结节|钙化|占位|肿块|囊肿|囊性|结石|积液|增厚|增粗|增大|肿大|扩张|高密度|低密度|致密影|密度增高|密度减低"
    r"|软组织影|斑片|条索|实变|磨玻璃|缺如|切除|术后|萎缩|肿物|病灶)"
)
_RAISED = re.compile(
    r"(?:摄取|代谢|浓聚|聚集|分布)[^，。；]{0,4}(?:增高|增强|升高|活跃|异常)|(?:异常|增高的?)(?:放射性)?(?:摄取|浓聚|代谢)|高代谢"
)
_NEGATED_BEFORE = re.compile(r"(?:未见|未|无|不伴|没有)[^，。；]{0,10}$")  # a negation that reaches the words after it
_SUV = re.compile(r"SUV", re.IGNORECASE)


def raised_uptake(sentence: str) -> bool:
    """An SUV value, or an uptake/metabolism increase that no 未见/无 clause negates."""
    if _SUV.search(sentence):
        return True
    return any(not _NEGATED_BEFORE.search(sentence[: m.start()]) for m in _RAISED.finditer(sentence))


def informative(clause: str, lexicon: Lexicon | None = None) -> bool:
    """Raised uptake, a lesion that nothing negates, or an organ named without a word that calls
    it normal."""
    if NEGATIVE.search(clause):
        return raised_uptake(clause)
    if raised_uptake(clause) or LESION.search(clause):
        return True
    return not UNREMARKABLE.search(clause) and bool((lexicon or load_lexicon()).terms_in(clause))


def finding_clauses(text: str) -> list[str]:
    """Clauses (split at ，。；, newlines and item numbers) that do not report a normal finding: what
    the missing and extra ratios read organs from."""
    pieces = re.split(r"[，。；;\n]|\s{2,}|(?<!\d)\d{1,2}[、.．](?!\d)", text)
    return [c for c in pieces if c.strip() and not NEGATIVE.search(c)]


def finding_organs(text: str, lexicon: Lexicon | None = None) -> set[str]:
    """Organs named in the clauses of `text` that report findings."""
    lex = lexicon or load_lexicon()
    return {o for c in finding_clauses(text) for o in lex.organs_in(c)}


# `未见明显异常。`, and the whole-field form some reports number as an item (`脑部PET/CT检查未见明显异常
# 代谢征象。`): the closing line already says it, so as an item it only repeats it.
NORMAL_STATEMENT = re.compile(r"^(?:[^，。；]{0,10}PET/CT检查)?(?:(?:未见|无)(?:明显)?(?:异常|其他异常|其它异常)|正常)")

# Radiologists lead with the disease the scan is for. Ordering items by these ranks, not by
# region alone, raised ROUGE-L of the aligned training targets (a perfect per-finding model):
# ROUGE-L rewards the reference's order.
_SUSPICION = (
    re.compile(r"恶性|癌|转移|复发|淋巴瘤|肿瘤|MT|残留|活性"),
    re.compile(r"高代谢|代谢增高|摄取增高|浓聚"),
)


def suspicion(item: str) -> int:
    """0 for an item that names malignancy, 1 for raised uptake, 2 for anything else."""
    return next((rank for rank, cue in enumerate(_SUSPICION) if cue.search(item)), len(_SUSPICION))


# --- measurements and sides ------------------------------------------------------------------

# Measurements and comparisons: the impression states what a finding is, not its numbers.
MEASURE = re.compile(r"SUV|CT值|大小约|长径|短径|直径|最大|范围约|约\d|\d+(?:\.\d+)?\s*(?:cm|mm|HU)|较前|同前|与前")
# The measurements an impression item keeps of its finding when it is written in the report's words:
# the lesion's size and its uptake (`大小约1.2cm×1.0cm`, `SUVmax 6.8`), not a CT value or a range of slices.
SIZE = re.compile(r"大小约|长径|短径|直径|范围约|\d+(?:\.\d+)?\s*(?:cm|mm|CM|MM)(?![a-zA-Z])")


def key_measure(clause: str) -> bool:
    """Whether a clause gives a lesion's size or its SUV (what a copy of the finding keeps)."""
    return bool(_SUV.search(clause) or SIZE.search(clause)) and "CT值" not in clause


_SUV_MAX = re.compile(r"SUV\s*max\s*[:：为约]?\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def suv_max(text: str) -> float | None:
    """The highest SUVmax that `text` gives as `SUVmax:N` (or `：`, `为`, `约` before the number);
    None otherwise. Rarer forms (`SUVmax=5.3`, `SUVmax约为3.5`: about 1% of the corpus's
    mentions) read as none, alike in training and in use."""
    values = [float(m.group(1)) for m in _SUV_MAX.finditer(text)]
    return max(values) if values else None


_SUV_VALUE = re.compile(r"SUV\s*(?:max|mean)?\s*[:：为约=]?\s*[0-9.]+(?:\s*(?:vs|VS|→)\s*[0-9.]+)?", re.IGNORECASE)


def without_suv(text: str) -> str:
    """`text` without its SUV values (`SUVmax:3.0`, `SUVmax 5.3 vs 11.2`): what else it says."""
    return _SUV_VALUE.sub("", text)


NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")  # ASCII digits: report text is normalized to them
RANGE = re.compile(r"(?<![0-9.])([0-9]{1,2})\s*[-~～至到]\s*([0-9]{1,2})(?![0-9.])")  # `3-5`, `T10-12`
MAX_RANGE = 12  # a range of levels (`胸1-12`) spans at most the thoracic spine
NOT_A_NUMBER = re.compile(r"[0-9]+m?(?:F|Ga|Tc|C|N|Zr|Cu|I)(?![a-z])|T[12]WI")  # `18F`, `68Ga`, `99mTc`, `T2WI`

# A side and the organ term it qualifies: `右肾`, `左侧锁骨区`, `右下肺` (up to two characters between,
# none of them a separator or another side). `左、右肾`, `左右肺`, `左侧及右侧肾上腺` name both sides, as `双` does.
SIDE = re.compile(r"(左|右)侧?")
BOTH_SIDES = re.compile(r"左侧?[、及和与]?右侧?|右侧?[、及和与]?左侧?")
NOT_BETWEEN_SIDE_AND_ORGAN = set("，,；;。、及和与左右双 \n")
OPPOSITE_SIDE = {"左": "右", "右": "左"}
SIDE_PREFIX = re.compile(r"^(?:双侧|左侧|右侧)")  # the side a site list is said for


def sided_organs(text: str, lexicon: Lexicon | None = None) -> set[tuple[str, str]]:
    """(side, organ) for each organ term `text` qualifies with only 左 or only 右."""
    lex = lexicon or load_lexicon()
    text = BOTH_SIDES.sub("双", text)
    out = set()
    for m in SIDE.finditer(text):
        for gap in range(3):
            at = m.end() + gap
            if at > len(text) or any(c in NOT_BETWEEN_SIDE_AND_ORGAN for c in text[m.end() : at]):
                break
            term = lex.pattern.match(text, at)
            if term:
                out.add((m.group(1), lex.organ_of[term.group(0)]))
                break
    return out
