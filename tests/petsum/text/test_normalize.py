"""petsum.text.report.normalize: what every rule and the model read. Invisible characters and stray
spaces must never change what a report says (a zero-width space inside 未见 once hid the negation
and made a normal report read as malignant); clinical content must survive; the work is linear."""

from __future__ import annotations

import csv
import random
import time
import unicodedata

import pytest
from conftest import REPO

from petsum.summarize.summarizer import MAX_CALLS_PER_REGION, MAX_CALLS_PER_REPORT, bounded_inputs
from petsum.text.inputs import InputKind
from petsum.text.report import normalize, split_sections
from petsum.text.rules import NEGATIVE

FORMAT = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e", "\u202a", "\x00", "\x07", "\x1b"]
SPACES = [" ", "\u00a0", "\u3000", "\u2009", "\t"]  # one: two or more separate items and sections
NORMAL_REPORT = (
    "脑部：双侧大脑半球对称，皮质代谢分布均匀，未见局灶性代谢增高或减低区。      "
    "胸部：双肺纹理清晰，未见结节及实变影，未见异常放射性浓聚。纵隔居中，未见代谢增高淋巴结。      "
    "腹部：肝脏形态大小正常，未见异常放射性浓聚。胰腺未见异常。      "
    "骨骼肌肉：全身骨骼未见骨质破坏及异常放射性浓聚。"
)


def _reports() -> list[str]:
    with (REPO / "tests" / "fixtures" / "pet_toy.csv").open(encoding="utf-8") as f:
        found = [row["question"] for row in csv.DictReader(f)]
    return [NORMAL_REPORT, (REPO / "examples" / "report.txt").read_text(encoding="utf-8"), *found[:6]]


def _perturbed(text: str, rng: random.Random, n: int = 12) -> str:
    """`text` with format and control characters anywhere, and a space of any kind between two
    Chinese characters (where a reader sees none)."""
    chars = list(text)
    for _ in range(n):
        at = rng.randrange(1, len(chars))
        if rng.random() < 0.5:
            chars.insert(at, rng.choice(FORMAT))
        elif "\u4e00" <= chars[at - 1] <= "\u9fff" and "\u4e00" <= chars[at] <= "\u9fff":
            chars.insert(at, rng.choice(SPACES))
    return "".join(chars)


def test_a_hidden_character_inside_a_negation_is_gone():
    for mark in FORMAT + [" ", "\u00a0", "\u3000"]:
        said = normalize(f"肝脏未{mark}见异常放射性浓聚。")
        assert said == "肝脏未见异常放射性浓聚。", repr(mark)
        assert NEGATIVE.search(said)


def test_every_invisible_character_in_unicode_is_removed_and_every_space_folded():
    invisible = [chr(cp) for cp in range(0x110000) if unicodedata.category(chr(cp)) in ("Cf", "Cc")]
    invisible = [c for c in invisible if c not in "\t\n\r"]
    assert normalize("肝" + "".join(invisible) + "脏") == "肝脏"
    spaces = [chr(cp) for cp in range(0x110000) if unicodedata.category(chr(cp)) == "Zs"]
    assert normalize("A" + "".join(spaces) + "B") == "A" + " " * len(spaces) + "B"


def test_clinical_content_survives():
    text = "右肺上叶结节，大小约2.0cm×1.5cm，SUVmax：3.6，较前（SUVmax 5.5 vs 7.1）减低。PET/CT示18F-FDG摄取增高。"
    assert normalize(text) == text
    assert normalize("ＳＵＶｍａｘ：３．６") == "SUVmax：3.6"  # full-width Latin and digits folded, the colon kept
    assert normalize("胸部：右肺   腹部：肝脏") == "胸部：右肺   腹部：肝脏"  # a run of spaces is a section break
    impression = "1、肝囊肿。  2、考虑转移  余躯干PET/CT检查未见明显异常代谢征象。"
    assert normalize(impression) == impression  # two spaces separate an impression's items


@pytest.mark.parametrize("seed", range(5))
def test_invisible_characters_do_not_change_what_the_rules_read(seed):
    rng = random.Random(seed)
    for report in _reports():
        noisy = _perturbed(report, rng)
        assert normalize(noisy) == normalize(report)
        assert split_sections(noisy) == split_sections(report)


@pytest.mark.slow
def test_invisible_characters_do_not_change_the_impression():
    """The property the issue asks for, end to end with the shipped default (greedy)."""
    from petsum import Summarizer

    summarizer = Summarizer.load(consensus=0)
    reports = _reports()[:4]
    rng = random.Random(0)
    noisy = [_perturbed(r, rng) for r in reports for _ in range(2)]
    clean = [s.impression for s in summarizer.summarize(reports)]
    got = [s.impression for s in summarizer.summarize(noisy)]
    assert got == [c for c in clean for _ in range(2)]
    assert (
        "未见" in "".join(split_sections(NORMAL_REPORT)[0][1]) and "考虑" not in clean[0]
    )  # the normal one stays normal


def test_normalize_is_idempotent_and_linear_on_adversarial_text():
    rng = random.Random(1)
    anywhere = [chr(cp) for cp in (rng.randrange(0x110000) for _ in range(400)) if not 0xD800 <= cp < 0xE000]
    alphabet = (
        "未见 \t\n\u200b\u00a0\u3000。，；:：SUVmax3.6肝脏"
        + "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(200))
        + "".join(anywhere)
    )  # mixed scripts, astral planes and unassigned code points too
    for _ in range(50):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 400)))
        once = normalize(text)
        assert normalize(once) == once
        assert not any(unicodedata.category(c) in ("Cf", "Cc") and c not in "\t\n" for c in once)
        split_sections(text)  # never raises
    for text in (" " * 200_000 + "x", "未 " * 150_000 + "见", "\t \n" * 100_000, "肝" + " \u200b" * 200_000):
        start = time.perf_counter()
        normalize(text)
        split_sections(text)
        assert time.perf_counter() - start < 3.0, repr(text[:10])


def test_model_calls_are_capped_per_region_and_report_with_a_warning_that_quotes_nothing():
    finding = "右肺上叶见一结节，大小约{}cm，SUVmax：{}。"
    region = "".join(finding.format(i, i + 0.5) for i in range(1, 80))
    warnings: list[str] = []
    inputs = bounded_inputs(
        0, [("chest", region), ("abdomen", region.replace("右肺上叶", "肝右叶"))], InputKind.FINDING, warnings
    )
    counts = [len(qs) for _, _, qs in inputs]
    assert counts[0] == MAX_CALLS_PER_REGION and sum(counts) == MAX_CALLS_PER_REPORT
    assert len(warnings) == 2 and not any("结节" in w or "右肺" in w for w in warnings)


def test_a_list_longer_than_the_learned_order_takes_the_rules_order():
    from petsum.assemble.impression import MAX_LEARNED_ORDER, assemble

    class Refuses:
        def permutation(self, items, sources=None):
            raise AssertionError("the learned order was asked to place a list this long")

    outputs = [("chest", f"右肺第{i}号结节，考虑转移。") for i in range(MAX_LEARNED_ORDER + 1)]
    text = assemble(outputs, item_order=Refuses())
    assert text.count("、") >= 1 and "右肺第0号结节" in text
    short = outputs[:3]
    with pytest.raises(AssertionError):
        assemble(short, item_order=Refuses())
