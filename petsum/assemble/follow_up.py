"""A follow-up finding's change, kept in the impression item written for it.

A follow-up exam's findings say how each lesion changed since the earlier exam (`较前增大`,
`代谢较前减低`, `新发`, `较前相仿`), and its impression keeps that change: it is what the referring
doctor reads a follow-up for. A small model often drops it, or the guard trims the clause that
carried it. `keep_change` adds it back, in the short forms cPET radiologists write
(`较前增大、代谢增高`, `代谢较前减低`, `较前消失`, `较前新发`, `同前相仿`), with the finding's
`SUVmax now vs before` values where the finding gives them.

The values are there for the reader, not for the scores: cPET references never write SUV values,
so each pair costs ROUGE-L; and references say a stable lesion is stable less often than they keep
a change. Both can be left out (`values=False`, `stable=False`) where only the scores count.

It only adds: an item that already states a change or stability is returned as it is, whatever it
says (a contradiction with the finding is for `petsum.text.contradiction` to judge, not this
module), and nothing is added that the finding does not state, the numbers being the finding's own
characters. The clause goes where radiologists put it: after the description, before what the item
concludes (`考虑…`) or advises (`建议…`), and before the mark that ends the description.

What counts as a stated change is read more strictly here than by `petsum.text.rules.changes`,
because a clause written from a misread state says the opposite of the report (`原…摄取增高，本次
未见` is a lesion that is gone, not one whose uptake rose), and a first-exam state word is no
change (`放射性摄取增高，本次SUVmax：4.9`, `脂肪间隙消失`, `密度与肌肉相似`):

- a change verb counts where its own clause compares (`较前`, `较上次`, `与前…相比`, `进一步`);
  after `原` (the lesion seen before) only the verbs of decline count (`原…体积缩小`), since `原…摄取
  增高` describes the lesion, not its course;
- `新发`, `新见`, `新增`, `新出现` and `前次未见` say a new lesion; `消失`, `消退`, `吸收` (not of an
  anatomical plane or curve: `脂肪间隙消失`) and `本次未见` at a clause's end say one that is gone;
  `减淡`, `好转` and `进展` are changes wherever they stand;
- `同前`, `无明显变化`, `变化不大` say stability anywhere, `相仿`/`相似`/`大致相同` only where the
  clause compares;
- an `SUVmax now vs before` pair gives the uptake's direction only where no verb does and the values
  differ by more than radiologists call stable: cPET findings write `减低` for most pairs below
  0.8 of the earlier value and `增高` for most above 1.25, and mostly `相仿` or nothing between.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from petsum.text.rules import ADVICE, CHANGE_VERBS, NORMAL_STATEMENT, VERSUS, clause_pieces

# --- what the finding states ------------------------------------------------------------------

# (what, direction) of each change verb: `size`, `count`, `level` (uptake, density) or `overall`.
_VERBS: dict[str, tuple[str, str]] = {**CHANGE_VERBS, "增粗": ("size", "up")}  # rules' verbs, and a thickened vessel
_VERB = re.compile("|".join(sorted(_VERBS, key=len, reverse=True)))
# A clause that compares with the earlier exam: its change verbs are changes.
_COMPARES = re.compile(r"较前|较上次|较之前|与前次?|与上次|进一步|前次|上次|同前(?!列腺)")
_SEEN_BEFORE = re.compile(r"原(?!发|因|则|位|来|始)")  # `原直肠壁…`: the lesion of the earlier exam
_DECLINE = {"缩小", "减小", "变小", "变薄", "减低", "降低", "减弱", "减轻", "减淡", "变淡", "减少"}
_ALWAYS = {"新发", "新见", "新增", "新出现", "消失", "消退", "吸收", "减淡", "变淡", "好转", "进展"}
# `脂肪间隙消失`, `生理曲度消失`, `分界消失`: an anatomical plane or curve that is absent, not a lesion that went.
_ANATOMICAL_LOSS = re.compile(r"(?:间隙|曲度|界限|分界|界面|边界|气房|隐窝|脂肪层|结构)\S{0,2}$")
# `未见增大`, `无明显增高`: no change said; `不均匀增高` is one.
_NEGATED = re.compile(r"(?:未见|未|无|不(?![均规整清])|没有)[^，,。；;]{0,4}$")
_NEW = re.compile(r"(?:前次|上次|前片)(?:检查|显像|PET/CT)?(?:未见|未显示|未发现)")
_GONE = re.compile(r"(?:本次|此次)(?:检查|显像)?(?:未见|未显示|未再显示|显示不清)\s*[。；;，,]?\s*$|未再(?:显示|见)")
_STABLE_ANYWHERE = re.compile(r"同前(?!列腺)|无明显变化|无变化|变化不明显|变化不大|无著变")
_STABLE_COMPARED = re.compile(r"相仿|相似|大致相同|基本相同")
# Ratios of `now / before` SUVmax outside which the pair alone says the uptake's direction.
VALUE_DOWN, VALUE_UP = 0.8, 1.25


@dataclass
class Stated:
    """What a finding states of its course: changes as (what, direction), whether it says something
    is stable, and its `SUVmax now vs before` pairs as written."""

    changes: set[tuple[str, str]] = field(default_factory=set)
    stable: bool = False
    values: list[tuple[str, str]] = field(default_factory=list)


def stated(text: str) -> Stated:
    """What `text` (a finding, or an impression item) states of its course, read by the rules in
    the module docstring."""
    out = Stated()
    value_directions: set[str] = set()
    for sentence in re.split(r"[。；;\n]", text):
        seen_before = bool(_SEEN_BEFORE.search(sentence))
        if _NEW.search(sentence):
            out.changes.add(("overall", "up"))
        for clause in clause_pieces(sentence):
            compares = bool(_COMPARES.search(clause))
            if _GONE.search(clause):
                out.changes.add(("overall", "down"))
            for m in _VERB.finditer(clause):
                verb, before = m.group(0), clause[: m.start()]
                if (
                    _NEGATED.search(before)
                    or (verb == "消失" and _ANATOMICAL_LOSS.search(before))
                    or (verb == "进展" and clause.startswith("期", m.end()))  # `进展期胃癌`: a stage
                ):
                    continue
                if compares or verb in _ALWAYS or (seen_before and verb in _DECLINE):
                    out.changes.add(_VERBS[verb])
            if _STABLE_ANYWHERE.search(clause) or (compares and _STABLE_COMPARED.search(clause)):
                out.stable = True
        for now, before in VERSUS.findall(sentence):
            out.values.append((now, before))
            ratio = float(now) / float(before) if float(before) else float("inf")
            if ratio < VALUE_DOWN:
                value_directions.add("down")
            elif ratio > VALUE_UP:
                value_directions.add("up")
    if not any(what == "level" for what, _ in out.changes):
        out.changes |= {("level", d) for d in value_directions}
    return out


# --- the clause ---------------------------------------------------------------------------------

# The verbs a clause echoes, by (what, direction): the finding's own word where it uses one of
# these (`较前减小` stays `减小`), else the first, the commonest in cPET references.
_SIZE = {"up": ("增大", "增厚", "扩大"), "down": ("缩小", "减小", "变薄")}
_COUNT = {"up": ("增多",), "down": ("减少",)}
_OVERALL = {"up": ("新发", "新见", "进展"), "down": ("消失", "好转", "吸收", "消退")}
_NEW_OR_GONE = ("新发", "新见", "基本消失", "消失")
# A level change is said of metabolism (`代谢较前减低`, as references write 摄取/浓聚 changes too),
# of density where only density changed, or bare for 加重/减轻 (`炎症较前减轻`).
_LEVEL = {"up": "增高", "down": "减低"}
_LEVEL_VERB = re.compile(r"增高|升高|增强|减低|降低|减弱|加重|减轻|浓聚增加|减淡|变淡")
_METABOLIC = re.compile(r"代谢|摄取|浓聚|放射性|SUV", re.IGNORECASE)
_BARE_LEVEL = {"加重": "加重", "减轻": "减轻"}


def _echo(finding: str, verbs: tuple[str, ...]) -> str:
    """The first of `verbs` the finding uses, else the first; `基本消失` where the finding says so."""
    verb = next((v for v in verbs if v in finding), verbs[0])
    return "基本消失" if verb == "消失" and "基本消失" in finding else verb


def _level(finding: str, direction: str) -> tuple[str, str]:
    """(subject, verb) of a level change: `代谢`/`增高`, `密度`/`减低`, or ``/`减轻`, from the clauses
    of the finding that name a level."""
    compared = [c for c in clause_pieces(finding) if _LEVEL_VERB.search(c)]
    if compared and not any(_METABOLIC.search(c) for c in compared):
        if any("密度" in c for c in compared):
            return "密度", _LEVEL[direction]
        bare = next((v for c in compared for k, v in _BARE_LEVEL.items() if k in c), None)
        if bare:
            return "", bare
    return "代谢", _LEVEL[direction]


def _direction(found: set[tuple[str, str]], what: str) -> str | None:
    """The one direction `found` gives `what`; None for none, or for both (two lesions that went
    different ways: which the item means is not known)."""
    directions = {d for w, d in found if w == what}
    return directions.pop() if len(directions) == 1 else None


def _values(pairs: list[tuple[str, str]]) -> str:
    """`（SUVmax 5.3 vs 11.2）` from `SUVmax now vs before` pairs, in the finding's order and its own
    digits; empty for none."""
    written = [f"{now} vs {before}" for now, before in pairs]
    return f"（SUVmax {'，'.join(dict.fromkeys(written))}）" if written else ""


def change_clause(finding: str, *, values: bool = True, stable: bool = True) -> str | None:
    """The clause that says how the finding's lesion compares with the earlier exam, or None where
    the finding states no change, no stability and no SUVmax pair: `较前增大、代谢增高`,
    `代谢较前减低（SUVmax 5.3 vs 11.2）`, `较前消失`, `较前新发`, `同前相仿` (`较前无明显变化` where the
    finding says so), or the pair alone, `（SUVmax 3.6 vs 3.5）`, where its values differ too little
    to say a direction and nothing else is stated. `values=False` leaves out the SUVmax pair and
    `stable=False` the stable clause: cPET references write neither as often as the changes."""
    said = stated(finding)
    parts: list[tuple[str, str]] = []  # (subject, verb)
    for what, verbs in (("size", _SIZE), ("count", _COUNT)):
        direction = _direction(said.changes, what)
        if direction:
            parts.append(("", _echo(finding, verbs[direction])))
    level = _direction(said.changes, "level")
    if level:
        parts.append(_level(finding, level))
    overall = _direction(said.changes, "overall")
    if overall and (not parts or _echo(finding, _OVERALL[overall]) in _NEW_OR_GONE):
        # a new or vanished lesion is said as such (its size and uptake have no before or after);
        # 进展/好转 only where nothing more specific is said
        parts = [("", _echo(finding, _OVERALL[overall]))]
    pairs = _values(said.values) if values else ""
    if parts:
        (subject, verb), rest = parts[0], parts[1:]
        return "、".join([f"{subject}较前{verb}"] + [s + v for s, v in rest]) + pairs
    if not said.changes and stable and said.stable:
        return ("较前无明显变化" if "无明显变化" in finding else "同前相仿") + pairs  # the references' commonest
    return pairs or None


# --- the item -----------------------------------------------------------------------------------

# What an item concludes: the change is said before it, as before advice (`ADVICE`).
_CONCLUSION = re.compile(r"^(?:考虑|首先考虑|多考虑|提示|符合|不除外|除外|倾向|怀疑|警惕|多系|多为|可能|疑)")
_MARKS = "，,。；;"
_ENDS = "。；;"
# Words with which an item already says how its lesion compares: nothing is added to it.
_SAYS_COURSE = re.compile(
    r"较前|较上次|前次|上次|同前(?!列腺)|与前|本次|新发|新见|新增|新出现|消失|消退|吸收|好转|进展|相仿|无明显变化"
    r"|进一步|vs",
    re.IGNORECASE,
)


def says_course(item: str) -> bool:
    """Whether an impression item already says how its lesion compares with the earlier exam."""
    said = stated(item)
    return bool(_SAYS_COURSE.search(item) or said.changes or said.stable)


def keep_change(finding: str, item: str, *, values: bool = True, stable: bool = True) -> str:
    """The item written for one finding sentence (after the guard), with the finding's change
    (`change_clause`) added where the item says no course of its own (`says_course`); the item as
    it is otherwise, and a normal statement (`未见明显异常。`) always. The clause goes after the
    item's first description, before its first conclusion (`考虑…`), advice (`建议…`, `请结合…`) or
    sentence end. `values` and `stable` as in `change_clause`. Meant for the findings of a
    follow-up exam (`petsum.text.rules.is_follow_up`)."""
    clause = change_clause(finding, values=values, stable=stable)
    if not clause or not item.strip() or NORMAL_STATEMENT.match(item.strip()) or says_course(item):
        return item
    pieces = clause_pieces(item)
    at = next(
        (
            k
            for k in range(1, len(pieces))
            if pieces[k - 1].rstrip().endswith(tuple(_ENDS))
            or _CONCLUSION.match(pieces[k].strip())
            or ADVICE.match(pieces[k].strip())
        ),
        len(pieces),
    )
    before, after = "".join(pieces[:at]), "".join(pieces[at:])
    stripped = before.rstrip(_MARKS + " ")
    mark = before[len(stripped) :].strip()
    if at < len(pieces) and not mark:
        mark = "，"
    joint = "" if clause.startswith("（") else "，"  # the values alone qualify the description
    return f"{stripped}{joint}{clause}{mark}{after}"
