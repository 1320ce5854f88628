"""Impression items that assert what their findings negate: raised uptake where the findings say
there is none (or that it is gone), an organ state the findings deny (`膀胱充盈欠佳` for
`膀胱充盈可`), and a change in the opposite direction (`增高` for `减低`).

A reader trusts an impression that leaves something out more than one that says the opposite of its
report, and ROUGE cannot tell the two apart (`充盈欠佳` and `充盈可` share most characters). The
same rule judges generated impressions and the radiologists' own, so what it flags in the
references bounds its false alarms: every rule here needs the findings to say the opposite
explicitly, of the same organ (and side, and part), and stays silent where the findings say the
item's claim anywhere about that organ.

Findings are read clause by clause, each clause about the organs it names or, naming none, about
those of the clause before it (`右肺上叶见结节，大小约1.2cm，放射性摄取增高`); a new section starts
afresh. `余骨骼未见异常` and `未见其他…` speak of the rest, never of a named lesion, so they deny
nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from petsum.text.lexicon import Lexicon, load_lexicon
from petsum.text.report import impression_items, normalize
from petsum.text.rules import ADVICE, BOTH_SIDES, SIDE, STABLE, VERSUS, changes, raised_uptake, sentences

KINDS = ("uptake", "state", "direction")

# --- which organ a clause is about ---------------------------------------------------------------

# A generic organ stands for its family: `高代谢淋巴结` is supported by raised uptake in `纵隔淋巴结`, and
# a vertebra by `全身骨骼多发高代谢`. Support only: a denial must name the claim's own organ.
_NODES = frozenset({"淋巴结", "颈部淋巴结", "腋窝淋巴结", "腹膜后淋巴结", "腹股沟淋巴结", "纵隔"})
_BONES = frozenset({"骨", "脊柱", "骨盆", "四肢骨", "肋骨", "胸骨", "肩胛骨", "锁骨", "颅骨"})
_FAMILIES = (_NODES, _BONES)
_GENERIC = {"淋巴结", "骨"}
# `双肺门` would read as 双肺 (lung) by the lexicon's longest match; the hilum is the mediastinum's.
_HILUM = re.compile(r"(?<=[双两左右])肺门")
# `胰腺头颈部` is the pancreas's head and neck, not the neck's lymph nodes.
_PANCREAS_NECK = re.compile(r"胰腺?头颈")
_BILE_DUCTS = re.compile(r"肝内外?胆管")  # the bile ducts, not the liver
# Where in the lung a nodule lies (`左肺斜裂胸膜下结节`), not the pleura or the mediastinum.
_PLACE = re.compile(r"(?:斜裂|水平裂|叶间)?胸膜下|纵隔旁")
# An organ term followed by these names a place beside the organ (`胰周`, `子宫后方`, `脾门部`), not the organ.
_NEAR = re.compile(r"[前后上下]方|旁|周围|周边|周|附近|间隙|门")
# Regions, not organs: `盆腔多发高代谢结节` and `盆腔积液，无异常放射性摄取` are about different things.
_REGIONS = {"腹腔", "盆腔"}
# Organs the lexicon does not spell so.
_ALIASES = (
    (re.compile(r"(?<![结空回小直])肠(?:管|道|壁|腔)"), "肠"),
    (re.compile(r"[左右双两]侧?乳(?![腺头糜])|乳房"), "乳腺"),
    (re.compile(r"[左右][上中下]叶|舌段"), "肺"),
)
# Organs whose terms name distinct structures (`乙状结肠` and `降结肠`, `小脑` and `额叶`, `心肌` and
# `主动脉`): what the findings say of one is not said of another.
_DISTINCT_PARTS = {"肠", "脑", "心脏", "腹膜"}
_PART = re.compile(r"[上中下前后]叶|尾状叶|胰?[头颈体尾]部?|钩突")

_SECTION_BREAK = re.compile(r"\s{2,}|\n")
# Not at `、` (`左侧肾盂、肾盏及输尿管无扩张` is one site), nor at `：` (`SUVmax：5.1`).
_CLAUSE_SPLIT = re.compile(r"[，,。；;]")
# A clause that places the lesion before it against another organ rather than starting a new finding.
_RELATION = re.compile(r"^与|分界|界限|累及|侵犯|包绕|推压|压迫|紧贴|毗邻|相邻|邻近|牵拉|凹陷|粘连|截断")
# History, after which a clause without an organ is about the operated area: `胰腺癌术后，上腹部…代谢增高`.
_HISTORY = re.compile(r"术后|切除|引流|置管|置入|植入|[放化]疗后|治疗后")
_OPERATED = re.compile(r"术区|术后区|吻合口|残端")  # the operative bed, not the organ
_JOINED = re.compile(r"伴|并|合并")
# The rest of the body, not a named site: `余骨骼未见异常`, `其余淋巴结未见肿大`, `未见其他异常放射性摄取`.
_THE_REST = re.compile(r"^(?:其)?余|其[他它]")


def _terms(text: str, lex: Lexicon) -> list[str]:
    """The organ terms `text` names, read as a radiologist would (see the patterns above); `软组织`
    is a density, not an organ."""
    text = _BILE_DUCTS.sub("胆管", _PANCREAS_NECK.sub("胰头、胰颈", _HILUM.sub("侧肺门", _PLACE.sub("", text))))
    terms = [m.group(0) for m in lex.pattern.finditer(text) if not _NEAR.match(text, m.end())]
    terms = [t for t in terms if t != "软组织" and t not in _REGIONS]
    return terms + [organ for pattern, organ in _ALIASES if pattern.search(text)]


def _organs(text: str, lex: Lexicon) -> frozenset[str]:
    return frozenset(lex.organ_of.get(t, t) for t in _terms(text, lex))


def _placed(text: str, lex: Lexicon) -> bool:
    """Whether `text` names a place beside an organ (`脾脏前方见实性结节`): a site of its own, so the
    sentence does not continue the organ of the one before it."""
    return any(_NEAR.match(text, m.end()) for m in lex.pattern.finditer(text))


def _support(organ: str) -> frozenset[str]:
    """The organs whose findings can support a claim about `organ`: itself and its family's generic
    name; the whole family for the generic name itself."""
    for family in _FAMILIES:
        if organ in family:
            return family if organ in _GENERIC else frozenset({organ} | (family & _GENERIC))
    return frozenset({organ})


@dataclass(frozen=True)
class Clause:
    """A clause of a findings or impression text and what it is about."""

    organs: frozenset[str]  # what it speaks of: the organs it names, else those it continues
    text: str
    sentence: str
    anchor: str  # the clause that named `organs`: where the site is (`右肾`, `胰体尾部`)
    scope: frozenset[str]  # every organ its sentence has named so far: what a finding may be about


_READ: dict[tuple[int, str, bool], tuple[Lexicon, tuple[Clause, ...]]] = {}
_READ_MAX = 20_000  # texts remembered; cleared when full (a batch asks about the same finding once per candidate)


def _statements(text: str, lex: Lexicon, carry: bool) -> list[Clause]:
    """`_read_statements` of the normalized `text`, remembered by the text as given: every answer
    (and, in consensus decoding, every candidate) is checked against the same finding, which need be
    neither normalized nor read again each time. Clauses are immutable."""
    key = (id(lex), text, carry)
    hit = _READ.get(key)
    if hit is None or hit[0] is not lex:  # the lexicon itself is kept: an id is never mistaken for another's
        if len(_READ) >= _READ_MAX:
            _READ.clear()
        hit = _READ[key] = (lex, tuple(_read_statements(normalize(text), lex, carry)))
    return list(hit[1])


def _read_statements(text: str, lex: Lexicon, carry: bool) -> list[Clause]:
    """Each clause of `text` with the organs it is about: those it names, else those of the clause
    before it in its sentence; with `carry`, a sentence that names no organ at all continues the
    one before it (`右肺上叶见结节。放射性摄取增高。`). A new section starts afresh. A clause that
    places the lesion against another organ (`与胰头分界不清`, `胸膜牵拉`) adds that organ."""
    out: list[Clause] = []
    for section in _SECTION_BREAK.split(text):
        organs: frozenset[str] = frozenset()
        scope: frozenset[str] = frozenset()
        anchor = ""
        for sentence in sentences(section):
            pieces = [c for c in _CLAUSE_SPLIT.split(sentence) if c.strip()]
            if not carry or any(_organs(c, lex) or _placed(c, lex) for c in pieces):
                organs, scope, anchor = frozenset(), frozenset(), ""
            for clause in pieces:
                named = _organs(clause, lex)
                if named and organs and _RELATION.search(clause):
                    organs = organs | named
                elif named:
                    organs, anchor = named, clause
                scope |= organs
                out.append(Clause(organs, clause, sentence, anchor, scope))
                if _HISTORY.search(clause):
                    organs, anchor = frozenset(), ""
    return out


def _sites(text: str) -> tuple[set[str], set[str]]:
    """(sides, parts) a clause names: `右肺上叶` → ({右}, {上叶}); both sides name no side."""
    sides = set() if BOTH_SIDES.search(text) else set(SIDE.findall(text))
    return sides, set(_PART.findall(text))


def _elsewhere(claim: Clause, clause: Clause, lex: Lexicon) -> bool:
    """Whether a finding clause is about another part of the claim's organ (`左肾` against `右肾`,
    `胰体尾部` against `胰头`, `降结肠` against `乙状结肠`)."""
    # A finding clause that names a side of its own continues its anchor's organ there (`双侧颈部5区淋巴结…，
    # 左侧较前增大`).
    there = clause.text if SIDE.search(clause.text) and not _organs(clause.text, lex) else clause.anchor
    sides = (_sites(claim.anchor)[0], _sites(there)[0])
    if any(a and b and not a & b for a, b in (sides, (_sites(claim.anchor)[1], _sites(clause.anchor)[1]))):
        return True
    for organ in claim.organs & clause.organs & _DISTINCT_PARTS:
        here = {t for t in _terms(claim.anchor, lex) if lex.organ_of.get(t, t) == organ}
        there = {t for t in _terms(clause.anchor, lex) if lex.organ_of.get(t, t) == organ}
        if here and there and not any(a in b or b in a for a in here for b in there):
            return True
    return False


def _subject(clause: Clause, pattern: re.Pattern, lex: Lexicon) -> frozenset[str]:
    """The organs a clause asserts `pattern` of, in the part of a `、` list that says it: those named
    just before it (after the last `伴`, `并` or `合并`: `团块伴胆总管扩张` asserts 扩张 of the bile duct,
    not of the mass), else just after it (`高代谢淋巴结`, not `高代谢病变侵犯腰3椎体`), else, when the
    clause names no organ itself, those it continues. Nodes named after it are the subject, at the
    stations named before it (`腹膜后多发高代谢淋巴结`)."""
    for part in clause.text.split("、"):
        if m := pattern.search(part):
            before = _organs(_JOINED.split(part[: m.start()])[-1], lex)
            after = _organs(_RELATION.split(_JOINED.split(part[m.end() :])[0])[0], lex)
            if "淋巴结" in after:
                return frozenset(o for o in before | after if o in _NODES)
            if before or after:
                return before or after
            break
    return frozenset() if _organs(clause.text, lex) else clause.organs


def _denies(clause: Clause, organ: str, claimed: set[str]) -> bool:
    """Whether a denial in `clause` reaches `organ`: it names the organ, not the rest of the body,
    is not about nodes beside it (`胰周散在小淋巴结，未见异常放射性摄取` says nothing of the pancreas)
    and, in a family, names no member the claim does not (`纵隔未见肿大淋巴结` denies nothing of
    `高代谢淋巴结`, which may be anywhere)."""
    if organ not in clause.organs or _THE_REST.search(clause.text) or _THE_REST.search(clause.anchor):
        return False
    if "淋巴结" in clause.organs and organ not in _NODES:
        return False
    family = next((f for f in _FAMILIES if organ in f), frozenset())
    return (clause.organs & family) - _GENERIC <= claimed


def _contradicted(
    claims: list[Clause],
    stated: list[Clause],
    says: Callable[[str], bool],
    denies: Callable[[str, str], bool],
    lex: Lexicon,
) -> bool:
    """Whether, for a claim, the findings deny it (`denies(claim, clause)`) of one of its organs and
    never say it (`says(clause)`) of any of them or their families: a claim naming several organs
    (`肝门区近胰头处肿块`) is about one lesion, which the findings may place by either."""
    claimed = {o for c in claims for o in c.organs}
    for claim in claims:
        support = {o for organ in claim.organs for o in _support(organ)}
        if any(c.scope & support and says(c.text) for c in stated):
            continue
        for organ in claim.organs:
            if any(
                denies(claim.text, c.text) and _denies(c, organ, claimed) and not _elsewhere(claim, c, lex)
                for c in stated
            ):
                return True
    return False


# --- uptake ---------------------------------------------------------------------------------------

# The lesion or its uptake is gone: `原纵隔淋巴结代谢增高灶消失`, `本次未见显示`. `脂肪间隙消失` is a sign.
_GONE = re.compile(r"恢复正常|本次[^，。；]{0,3}未见|未再见|(?<!间隙)(?<!分界)(?<!界限)(?<!界线)消失|消退")
# A clause that describes the earlier exam (`原右肺门高代谢淋巴结`): what it says is not so now.
_BEFORE = re.compile(r"^[^，。；]{0,3}原(?!发)|前次|前片")
# Uptake said to be absent. `放射性分布均匀` is the template's word for an unremarkable organ.
_NO_UPTAKE = re.compile(
    r"(?:未见|无)[^，。；]{0,10}?(?:摄取|浓聚|高代谢|代谢|放射性)"
    r"|(?:摄取|代谢|浓聚)[^，。；]{0,4}(?:未见|无|未)(?:明显)?(?:异常|增高|升高)"
    r"|(?:代谢|摄取)(?:不高|未增高)"
    r"|放射性分布(?:大致)?(?:正常|均匀|未见异常)"
)
# Raised, said to be not clearly so: an item that says it asserts no raised uptake.
_NOT_CLEARLY = re.compile(r"(?:增高|升高|摄取|代谢|浓聚)[^，。；]{0,2}(?:不明显|不显著|不著|不确切)")
# Words that say raised: `代谢异常` (of a failing kidney) need not.
_RAISED_NOW = re.compile(r"高代谢|增高|升高|增强|活跃|浓聚|代谢高|摄取高|SUV", re.IGNORECASE)
_UPTAKE_WORDS = re.compile(r"高代谢|代谢|摄取|浓聚|SUV", re.IGNORECASE)
_ANY_UPTAKE = re.compile(r"浓聚|摄取|代谢")
_NEGATED = re.compile(r"(?:未见|未|无|不伴|没有)[^，。；]{0,10}$")
_LOW_UPTAKE = re.compile(r"稀疏|缺损|减低|降低|不高|正常|如常|均匀|生理")
_DIFFUSE = re.compile(r"弥漫")
# A denial of a focus only (`未见局灶性…浓聚`, `未见异常放射性增高灶`).
_FOCAL = re.compile(r"局灶|灶性|结节|(?:增高|浓聚|摄取|代谢)灶")
# What an item names a lesion by; an item naming none (`甲状腺代谢轻度增高`) speaks of the whole organ.
_LESION_WORDS = re.compile(r"灶|结节|肿块|肿物|团块|病变|占位|密度影|淋巴结|癌|瘤|转移")


def _uptake_now(clause: str) -> bool:
    """Raised uptake that `clause` reports of this exam (`代谢未见增高` reports none)."""
    return (
        raised_uptake(clause)
        and bool(_RAISED_NOW.search(clause))
        and not _NO_UPTAKE.search(clause)
        and not _GONE.search(clause)
        and not _BEFORE.search(clause)
    )


def _some_uptake(clause: str) -> bool:
    """Any uptake the findings give of this exam, raised or merely present (`放射性稍浓聚`, `伴轻度摄取`):
    enough to make an impression's `高代谢` a judgement, not a contradiction."""
    if _GONE.search(clause) or _BEFORE.search(clause) or _NO_UPTAKE.search(clause):
        return False
    if raised_uptake(clause):
        return True
    mentions = [m for m in _ANY_UPTAKE.finditer(clause) if not _NEGATED.search(clause[: m.start()])]
    return bool(mentions) and not _LOW_UPTAKE.search(clause)


def _no_uptake(claim: str, clause: str) -> bool:
    """Whether `clause` says there is no uptake, or none left, where `claim` says it is raised: not
    of the operative bed (`十二指肠术后，术区未见异常放射性浓聚`), and not only no focal uptake
    (`未见局灶性…浓聚`, `未见…增高灶`) against diffuse uptake or uptake of the whole organ (an item that
    names no lesion: `甲状腺代谢轻度增高`)."""
    if not (_NO_UPTAKE.search(clause) or _GONE.search(clause)) or _OPERATED.search(clause):
        return False
    if _GONE.search(clause):
        return True  # what is gone is gone, focus or not
    diffuse = _DIFFUSE.search(claim) or not _LESION_WORDS.search(claim)
    return not (diffuse and _FOCAL.search(clause))


def _uptake(claims: list[Clause], stated: list[Clause], lex: Lexicon) -> bool:
    # `高代谢灶，无异常代谢` says both; `胰尾部高代谢灶，本次未见` says it is gone.
    unsure = {c.sentence for c in claims if _NO_UPTAKE.search(c.text) or _GONE.search(c.text)}
    unsure |= {c.sentence for c in claims if _NOT_CLEARLY.search(c.text)}  # `代谢增高不明显` says it is not
    raised = [
        replace(c, organs=_subject(c, _UPTAKE_WORDS, lex))
        for c in claims
        if c.sentence not in unsure and _uptake_now(c.text) and not _OPERATED.search(c.text)
    ]
    return _contradicted(raised, stated, _some_uptake, _no_uptake, lex)


# --- organ states ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """An organ state an impression may assert (`affirmed`), the findings' words that describe it
    (`described`: more ways to say it than an impression uses) and those that deny it (`denied`)."""

    name: str
    affirmed: re.Pattern
    described: re.Pattern
    denied: re.Pattern


# The one table of organ states.
STATES = (
    State(
        "充盈",
        re.compile(r"充盈(?:欠佳|不佳|较差|差|不良|不足|欠满意)"),
        re.compile(r"充盈(?:欠佳|不佳|较差|差|不良|不足|欠满意|不全)|未充盈|排空"),
        re.compile(r"充盈(?:尚?可|尚?好|良好|佳|满意|正常)"),
    ),
    State(
        "显影",
        re.compile(r"显影(?:欠佳|不佳|较差|差|不良|不清)"),
        re.compile(r"显影(?:欠佳|不佳|较差|差|不良|不清|淡|浅|减低|稀疏)|未显影|不显影"),
        re.compile(r"显影(?:尚?可|尚?好|良好|清晰|清楚|正常)"),
    ),
    State(
        "大小",
        re.compile(r"增大|肿大"),
        re.compile(r"增大|肿大|饱满|体积大|较大|增粗|大于|巨大"),
        re.compile(
            r"(?<!变化)(?<!范围)不大|(?:未见|无)(?:明显)?(?:增大|肿大)|(?:形态)?大小(?:形态)?(?:正常|未见异常|如常)"
        ),
    ),
    State(
        "扩张",
        re.compile(r"扩张"),
        re.compile(r"扩张|扩大|增宽|积水|积液|梗阻"),
        re.compile(r"(?:未见|无|不)(?:明显)?扩张"),
    ),
    State(
        "增厚",
        re.compile(r"增厚"),
        re.compile(r"增厚|肥厚|[稍略较]厚|显厚|厚度增加"),
        re.compile(r"(?:未见|无)(?:明显)?增厚|不厚"),
    ),
)
# A differential, not an assertion: `小囊肿或扩张分支胰管可能`, `（扩张胆管？）`, `不除外胆总管扩张`.
_HEDGED = re.compile(r"可能|[？?]|不除外|除外|待排|或")
_NEGATION = re.compile(r"(?:未见|未|无|不伴|不(?![均规整齐清])|没有)[^，。；]{0,6}$")  # `不均匀性增厚` says it
_CHANGED = re.compile(r"较前|较[^，。；]{0,6}(?:比|相比)|前次|与前")  # `较前增大` is a change, not a state


def _affirmed(clause: str, pattern: re.Pattern) -> bool:
    """Whether `clause` says `pattern` of now: not negated just before it, not a change since the
    earlier exam, not about the earlier exam."""
    if _BEFORE.search(clause) or _GONE.search(clause):
        return False
    return any(
        not _NEGATION.search(clause[: m.start()]) and not _CHANGED.search(clause[: m.start()])
        for m in pattern.finditer(clause)
    )


def _state(claims: list[Clause], stated: list[Clause], lex: Lexicon) -> bool:
    for state in STATES:
        said = [
            replace(c, organs=_subject(c, state.affirmed, lex))
            for c in claims
            if _affirmed(c.text, state.affirmed) and not _HEDGED.search(c.text)
        ]
        if _contradicted(
            said,
            stated,
            lambda text, s=state: _affirmed(text, s.described),
            lambda _, text, s=state: bool(s.denied.search(text)),
            lex,
        ):
            return True
    return False


# --- change since the earlier exam ------------------------------------------------------------------

_OPPOSITE = {"up": "down", "down": "up"}
_EXPLICIT = re.compile(r"较前|前次|前片|与前|较[^，。；]{0,8}(?:前|比)|原(?!发)|本次")
_COMPARED_HERE = re.compile(r"较前|与前|比前|较[^，。；]{0,8}(?:前|比)")
_ENHANCED = re.compile(r"增强(?:CT|MR|MRI|扫描|检查|影像)", re.IGNORECASE)  # contrast imaging, not a change
_DENSITY = re.compile(r"密度|CT值")
_GONE_WORDS = re.compile(r"消失|消退|吸收")
_EVENTS = re.compile(r"新发|新见|新增|新出现|消失|消退|吸收")  # a lesion new or gone, not a change of one


def _loose_changes(text: str) -> set[tuple[str, str]]:
    """Every change `text` may state, read loosely (what the findings may agree with): `rules.changes`
    of the sentences that compare (`较前`, `前次`, `原`, `本次`), every change verb of the others, and
    something gone (`原…消失`) as an overall decrease; advice (`请结合增强MR`) states none, and
    `咽隐窝变浅、消失` no change."""
    out: set[tuple[str, str]] = set()
    for sentence in re.split(r"[。；;\n]", _ENHANCED.sub("", text)):
        pieces = [c for c in _CLAUSE_SPLIT.split(sentence) if c.strip() and not ADVICE.match(c.strip())]
        if not _EXPLICIT.search(sentence):
            # A follow-up's findings may leave the comparison implicit (`右侧颈部2区淋巴结缩小`): agreement
            # reads every change verb as one.
            out |= changes("较前，" + _GONE_WORDS.sub("", "，".join(pieces)))
            continue
        kept = [c for c in pieces if not _GONE.search(c)]
        if len(kept) < len(pieces):
            out.add(("overall", "down"))
        if _EXPLICIT.search("，".join(kept)):
            out |= changes("，".join(kept))
    return out


def _strict_changes(clause: Clause) -> set[tuple[str, str]]:
    """The changes a clause states of one lesion, read strictly (what may oppose): a verb after a
    comparison in its own part of the clause (`代谢较前减低`; not `原…增厚`, which describes the
    earlier exam, not `代谢增高灶较前…`, nor `…摄取增高，…较前缩小`), an `SUVmax now vs before` pair
    (unless its sentence calls the lesion unchanged), or the verdict `进展`/`好转`. What is new or gone
    (`新增`, `消失`) is another lesion than one that changed, so it opposes nothing. A CT density is no
    uptake level (`肝实质密度较前增高` is a fatty liver improving)."""
    text = _ENHANCED.sub("", clause.text)
    if ADVICE.match(text.strip()) or _GONE.search(text):
        return set()
    found = {c for c in changes(_EVENTS.sub("", text)) if c[0] == "overall"}
    for part in text.split("、"):  # `较前明显缩小、代谢轻度增高`: only the first is compared
        if m := _COMPARED_HERE.search(part):
            found |= {c for c in changes(part[m.start() :]) if c[0] != "overall"}
    if not STABLE.search(clause.sentence):  # `摄取同前相仿，SUVmax:4.0vs3.7`: the reader calls it unchanged
        for now, before in VERSUS.findall(text):
            if float(now) != float(before):
                found.add(("level", "up" if float(now) > float(before) else "down"))
    if _DENSITY.search(text) and not _UPTAKE_WORDS.search(text):
        found = {c for c in found if c[0] != "level"}
    return found


def _claimed_changes(clause: Clause) -> set[tuple[str, str]]:
    """`_strict_changes` of an impression clause, whose level changes must be of uptake: `不张较前加重`
    is a lung collapsing further, not its uptake rising."""
    found = _strict_changes(clause)
    return found if _UPTAKE_WORDS.search(clause.text) else {c for c in found if c[0] != "level"}


def _about_nodes(organs: frozenset[str]) -> bool:
    return any(o.endswith("淋巴结") for o in organs)


def _same_subject(claim: Clause, clause: Clause, lex: Lexicon) -> bool:
    """Whether a finding clause is about what an item's clause is about: lymph nodes at a shared
    station (nodes named without one could be any), or else a shared organ, at no other side or
    part of it."""
    if _about_nodes(claim.organs) != _about_nodes(clause.organs) or _elsewhere(claim, clause, lex):
        return False
    if _about_nodes(claim.organs):
        return bool((claim.organs - {"淋巴结"}) & (clause.organs - {"淋巴结"}))
    return bool((claim.organs - _GENERIC or claim.organs) & (clause.organs - _GENERIC or clause.organs))


def _opposed(a: tuple[str, str], b: tuple[str, str]) -> bool:
    """Opposite changes of one quantity, or a verdict (`进展`, `好转`) against a quantity's change."""
    return a[1] == _OPPOSITE[b[1]] and (a[0] == b[0] or "overall" in (a[0], b[0]))


def _agrees(a: tuple[str, str], b: tuple[str, str]) -> bool:
    return a[1] == b[1] and (a[0] == b[0] or "overall" in (a[0], b[0]))


def _direction(claims: list[Clause], stated: list[Clause], lex: Lexicon) -> bool:
    """A change an item's clause states (a verdict, `进展`/`好转`, only of a clause that names its organ)
    whose opposite a finding clause about the same subject
    states, while no finding sentence about its organs (or their family) states the item's
    direction, however loosely: `部分增大，部分缩小` agrees with both."""
    for claim in claims:
        said = _claimed_changes(claim)
        if not _organs(claim.text, lex):  # `综上所述考虑病情较前进展` is a verdict on the patient, not the organ
            said = {c for c in said if c[0] != "overall"}
        if not said:
            continue
        opposed = {change for c in stated if _same_subject(claim, c, lex) for change in _strict_changes(c)}
        support = {o for organ in claim.organs for o in _support(organ)}
        about = [c for c in stated if c.organs & support]
        agreed = _loose_changes("".join(dict.fromkeys(c.sentence for c in about)))
        agreed |= {change for c in about for change in _strict_changes(c)}
        for change in said:
            if any(_opposed(change, o) for o in opposed) and not any(_agrees(change, a) for a in agreed):
                return True
    return False


# --- the API --------------------------------------------------------------------------------------


def contradictions(finding: str, item: str, lexicon: Lexicon | None = None) -> list[str]:
    """The kinds of contradiction (`uptake`, `state`, `direction`, in that order) between an
    impression item and the findings text it was written from. The findings may be the whole
    report: each of the item's organs is judged only against the findings clauses about it."""
    lex = lexicon or load_lexicon()
    stated = _statements(finding, lex, carry=True)
    claims = [c for c in _statements(item, lex, carry=False) if c.organs]
    checks = (("uptake", _uptake), ("state", _state), ("direction", _direction))
    return [kind for kind, check in checks if check(claims, stated, lex)]


def impression_contradictions(findings: str, impression: str, lexicon: Lexicon | None = None) -> tuple[int, int]:
    """(items, contradicted items) of an impression against its whole findings text: each numbered
    item (not the closing line) against the findings about its organs. An item that names no
    organ cannot be judged and counts as not contradicted."""
    lex = lexicon or load_lexicon()
    items, _ = impression_items(impression)
    return len(items), sum(bool(_organs(item, lex)) and bool(contradictions(findings, item, lex)) for item in items)
