"""petsum.summarize.memory: the training findings nearest a finding, their targets as votes in consensus
decoding, and `petsum memory`."""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
import math
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, REPO, tiny_sets

from petsum.cli import main as petsum
from petsum.summarize.folder import DEFAULT_MODEL
from petsum.summarize.memory import Memory, build
from petsum.text.rules import chars

FINDINGS = [
    "肝脏见低密度灶，无放射性摄取。",
    "肝脏见多发低密度灶，无放射性摄取。",
    "右肺上叶见结节，放射性摄取增高，SUVmax5.2。",
    "右肺上叶见结节，放射性摄取增高，SUVmax3.1。",
    "胆囊见结石。",
    "胆囊见多发结石。",
]
TARGETS = [
    "肝囊肿。",
    "肝多发囊肿。",
    "右肺上叶高代谢结节，考虑肺癌。",
    "右肺上叶高代谢结节，考虑炎性。",
    "胆囊结石。",
    "胆囊多发结石。",
]


def _cosines(findings: list[str], query: str) -> list[float]:
    """TF-IDF cosine of `query` with each finding, written out plainly: character 1–3-grams of at
    least two findings, tf 1 + log(count), idf log(N / df) + 1."""
    grams = lambda t: Counter(t[i : i + n] for n in (1, 2, 3) for i in range(len(t) - n + 1))  # noqa: E731
    counted = [grams(f) for f in findings]
    df = Counter(g for c in counted for g in c)
    idf = {g: math.log(len(findings) / d) + 1 for g, d in df.items() if d >= 2}

    def vector(c: Counter) -> dict[str, float]:
        v = {g: (1 + math.log(n)) * idf[g] for g, n in c.items() if g in idf}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {g: x / norm for g, x in v.items()}

    q = vector(grams(query))
    return [sum(w * q.get(g, 0.0) for g, w in vector(c).items()) for c in counted]


def test_nearest_findings_are_the_tf_idf_cosine_nearest_first():
    memory = Memory(FINDINGS, TARGETS, neighbours=3)
    query = "肝脏见低密度灶，大小约1.2cm，无放射性摄取。"
    expected = _cosines(FINDINGS, query)
    near = memory.nearest(query, k=len(FINDINGS))
    assert [d for d, _ in near] == sorted((d for d, s in enumerate(expected) if s > 0), key=lambda d: (-expected[d], d))
    assert [s for _, s in near] == pytest.approx([expected[d] for d, _ in near])
    assert memory.nearest(query) == near[:3] and {d for d, _ in near[:2]} == {
        0,
        1,
    }  # `neighbours` by default; the livers first
    assert memory.nearest(FINDINGS[2])[0] == (2, pytest.approx(1.0))  # a training finding is nearest itself
    assert memory.nearest("ABC") == [] and memory.references("ABC") == []  # nothing in common: no vote


def test_references_weigh_by_similarity_squared_and_sum_to_the_weight():
    memory = Memory(FINDINGS, TARGETS, neighbours=2, weight=0.5)
    finding = "右肺上叶见结节，放射性摄取增高，SUVmax4.0。"
    (a, sa), (b, sb) = memory.nearest(finding)
    refs = memory.references(finding)
    assert [t for t, _ in refs] == [TARGETS[a], TARGETS[b]]
    assert sum(w for _, w in refs) == pytest.approx(0.5) and refs[0][1] / refs[1][1] == pytest.approx((sa / sb) ** 2)
    assert Memory(["肝脏见低密度灶。"], ["肝囊肿。"]).references("肝脏见低密度灶。") == []  # no gram of two findings


def test_a_memory_survives_json_and_bad_entries_say_what_is_wrong():
    memory = Memory(FINDINGS, TARGETS, neighbours=3, weight=0.7)
    again = Memory.from_json(json.loads(json.dumps(memory.to_json())))
    assert (again.findings, again.targets, again.neighbours, again.weight) == (FINDINGS, TARGETS, 3, 0.7)
    assert again.nearest(FINDINGS[0]) == memory.nearest(FINDINGS[0])
    stored = memory.to_json()
    with pytest.raises(ValueError, match="not a memory"):
        Memory.from_json({**stored, "kind": "pointer"})
    with pytest.raises(ValueError):
        Memory.from_json({**stored, "texts": "bm90IGd6aXA="})  # base64, but not gzip
    packed = bytearray(base64.b64decode(stored["texts"]))
    packed[12:20] = b"\xff" * 8  # a gzip header, damaged inside
    with pytest.raises(ValueError):
        Memory.from_json({**stored, "texts": base64.b64encode(bytes(packed)).decode()})
    dict_texts = base64.b64encode(gzip.compress(json.dumps({"ab": 1, "cd": 2}).encode())).decode()
    with pytest.raises(TypeError, match="two lists"):
        Memory.from_json({**stored, "texts": dict_texts})
    assert FINDINGS[0] not in repr(memory) and TARGETS[0] not in repr(memory)  # report text never in a repr
    with pytest.raises(ValueError, match="neighbours"):
        Memory.from_json({**stored, "neighbours": 0})
    with pytest.raises(ValueError, match="weight"):
        Memory.from_json({**stored, "weight": "inf"})
    with pytest.raises(ValueError, match="targets"):
        Memory(FINDINGS, TARGETS[:2])
    assert Memory([], []).nearest(FINDINGS[0]) == []  # an empty memory votes for nothing


def test_a_memory_holds_the_abnormal_instances_the_model_was_trained_on():
    from petsum.data.instances import report_instances
    from petsum.data.pairs import load_pairs

    reports = load_pairs(FIXTURES / "pet_toy.csv")
    for source in ("finding", "region"):
        memory = build(reports, source)
        pairs = [(ex.question, ex.target) for r in reports for ex in report_instances(r, source=source)[0]]
        assert list(zip(memory.findings, memory.targets)) == pairs and pairs


@pytest.mark.slow
def test_petsum_memory_votes_in_consensus_and_can_be_dropped(pet_run: Path, tmp_path: Path):
    from petsum.summarize.summarizer import Summarizer

    run = tmp_path / "direct"
    args = [
        "train",
        "--data",
        str(FIXTURES / "pet_toy.csv"),
        "--out",
        str(run),
        "--method",
        "direct",
        "--source",
        "finding",
        *tiny_sets(**{"train.max_steps": 2}),
    ]
    assert (res := CliRunner().invoke(petsum, args)).exit_code == 0, res.output
    res = CliRunner().invoke(
        petsum, ["memory", "--data", str(FIXTURES / "pet_toy.csv"), "--model", str(run), "--neighbours", "3"]
    )
    assert res.exit_code == 0 and "holds report text" in res.output, res.output
    res = CliRunner().invoke(petsum, ["memory", "--data", str(tmp_path / "missing.csv"), "--model", str(run)])
    assert res.exit_code != 0 and res.output.startswith("error: ") and "missing.csv" in res.output, res.output
    summarizer = Summarizer(run)
    assert summarizer.memory is not None and summarizer.memory.neighbours == 3
    summarizer.tune(consensus_samples=0)  # greedy decoding never votes, so it never builds the index
    example = (REPO / "examples" / "report.txt").read_text(encoding="utf-8")
    greedy = summarizer.summarize([example])[0].impression
    assert summarizer.memory._index is None
    finding = summarizer.memory.findings[0]  # votes in the metrics' units, as the draws do
    assert (
        summarizer.references(finding)
        == [(" ".join(chars(t)), w) for t, w in summarizer.memory.references(finding)]
        != []
    )
    assert summarizer.memory._index is not None  # built at the first vote
    report = str(REPO / "examples" / "report.txt")
    res = res_first = CliRunner().invoke(
        petsum, ["summarize", report, "--model", str(run), "--consensus", "2", "--json"]
    )
    assert res.exit_code == 0 and json.loads(res.stdout)["impression"], res.output
    if importlib.util.find_spec("onnxruntime"):  # the memory travels into an export, which says nothing of its text
        exported = CliRunner().invoke(petsum, ["export", "--model", str(run), "--out", str(tmp_path / "onnx")])
        assert exported.exit_code == 0 and not any(
            t in exported.output for t in summarizer.memory.findings + summarizer.memory.targets
        ), exported.output
        onnx = CliRunner().invoke(
            petsum, ["summarize", report, "--model", str(tmp_path / "onnx"), "--consensus", "2", "--json"]
        )
        assert onnx.exit_code == 0 and json.loads(onnx.stdout)["impression"] == json.loads(res.stdout)["impression"], (
            onnx.output
        )
    # the memory is memory.json beside the manifest, never inside it
    manifest = json.loads((run / "ases.json").read_text(encoding="utf-8"))
    stored = json.loads((run / "memory.json").read_text(encoding="utf-8"))
    assert "memory" not in manifest and stored["neighbours"] == 3
    # a corrupt memory is one line, not a traceback
    (run / "memory.json").write_text(json.dumps({**stored, "texts": "not base64!"}), encoding="utf-8")
    res = CliRunner().invoke(petsum, ["summarize", report, "--model", str(run)])
    assert (
        res.exit_code != 0
        and "unreadable memory" in res.output
        and "petsum memory" in res.output
        and "Traceback" not in res.output
    )
    # an older folder keeps its memory inside ases.json: it still loads, the same, and --drop takes it out there too
    (run / "memory.json").unlink()
    (run / "ases.json").write_text(json.dumps({**manifest, "memory": stored}), encoding="utf-8")
    legacy = Summarizer(run).memory
    assert (legacy.findings, legacy.targets, legacy.neighbours) == (
        summarizer.memory.findings,
        summarizer.memory.targets,
        3,
    )
    again = CliRunner().invoke(petsum, ["summarize", report, "--model", str(run), "--consensus", "2", "--json"])
    assert (
        again.exit_code == 0 and json.loads(again.stdout)["impression"] == json.loads(res_first.stdout)["impression"]
    ), again.output
    res = CliRunner().invoke(petsum, ["memory", "--model", str(run), "--drop"])
    assert res.exit_code == 0 and "memory" not in json.loads((run / "ases.json").read_text(encoding="utf-8")), (
        res.output
    )
    assert not (run / "memory.json").exists() and Summarizer(run).memory is None
    forgot = Summarizer(run)
    forgot.tune(consensus_samples=0)
    assert forgot.summarize([example])[0].impression == greedy  # the memory never touched greedy decoding


@pytest.mark.slow
def test_petsum_memory_refuses_in_one_line(pet_run: Path, tmp_path: Path):
    for args, said in [
        (
            ["--model", str(DEFAULT_MODEL), "--data", str(FIXTURES / "pet_toy.csv")],
            "shipped default",
        ),  # it stays free of report text
        (
            ["--model", str(pet_run), "--data", str(FIXTURES / "pet_toy.csv")],
            "direct models",
        ),  # a USM run has no consensus decoding
        (["--model", str(pet_run)], "--data is required"),
        (["--model", str(pet_run), "--data", str(FIXTURES / "pet_toy.csv"), "--weight", "inf"], "finite"),
    ]:
        res = CliRunner().invoke(petsum, ["memory", *args])
        assert (
            res.exit_code != 0
            and res.output.startswith("error: ")
            and said in res.output
            and "Traceback" not in res.output
        ), res.output
    assert "memory" not in json.loads((DEFAULT_MODEL / "ases.json").read_text(encoding="utf-8"))
    assert not (DEFAULT_MODEL / "memory.json").exists()
