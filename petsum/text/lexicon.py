"""The organ → region lexicon: which organs a clause talks about, and in which region."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

LEXICON_FILE = Path(__file__).parents[1] / "resources" / "lexicon.tsv"
# Clinical order, as radiologists number impression items (head to foot, then systemic).
REGIONS = ("brain", "head_neck", "chest", "abdomen", "pelvis", "musculoskeletal", "lymph", "soft_tissue")


@dataclass(frozen=True)
class Lexicon:
    organ_of: dict[str, str]  # term → organ
    region_of: dict[str, str]  # organ → region
    pattern: re.Pattern

    def terms_in(self, text: str) -> list[str]:
        return self.pattern.findall(text)

    def organs_in(self, text: str) -> set[str]:
        return {self.organ_of[t] for t in self.terms_in(text)}

    def regions_in(self, text: str) -> set[str]:
        return {self.region_of[o] for o in self.organs_in(text)}


@lru_cache(maxsize=1)
def load_lexicon(path: Path = LEXICON_FILE) -> Lexicon:
    organ_of: dict[str, str] = {}
    region_of: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        term, organ, region = line.split("\t")
        if region not in REGIONS:
            raise ValueError(f"{path}: unknown region {region!r} for {term!r}")
        if region_of.setdefault(organ, region) != region:
            raise ValueError(f"{path}: organ {organ!r} is in two regions")
        organ_of[term] = organ
    terms = sorted(organ_of, key=len, reverse=True)  # longest match first
    return Lexicon(organ_of, region_of, re.compile("|".join(map(re.escape, terms))))
