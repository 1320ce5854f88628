"""The shipped default PET model: a plain Hugging Face folder within the size limit, with its
model card, used by `petsum summarize` and `petsum batch` when no --model is given."""

import json

from click.testing import CliRunner
from conftest import REPO
from tinymodels import one_torch_thread

from petsum.cli import main as petsum
from petsum.summarize.folder import DEFAULT_MODEL

REPORT = REPO / "examples" / "report.txt"


def test_default_model_is_a_plain_hf_folder_under_40_mb():
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    files = {p.name for p in DEFAULT_MODEL.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "generation_config.json",
        "README.md",
        "ases.json",
        "fitted.json",
    } <= files
    assert "memory.json" not in files  # the shipped model holds no report text
    assert sum(p.stat().st_size for p in DEFAULT_MODEL.iterdir()) <= 40 * 2**20
    model = AutoModelForSeq2SeqLM.from_pretrained(DEFAULT_MODEL).eval()
    tok = AutoTokenizer.from_pretrained(DEFAULT_MODEL)
    pancreas, lung = (
        tok(t, return_tensors="pt").input_ids
        for t in ("胰头见软组织肿块，放射性摄取增高，SUVmax：6.1。", "右肺上叶见结节，放射性摄取增高，SUVmax：5.2。")
    )
    start = torch.tensor([[model.config.decoder_start_token_id]])
    with one_torch_thread(), torch.no_grad():
        first = [model(input_ids=ids, decoder_input_ids=start).logits[0, -1] for ids in (pancreas, lung)]
        assert first[0].argmax() != first[1].argmax()  # what it writes first depends on what it reads
        # plain transformers greedy decoding: the finding's organ, written and ended by the model itself
        for ids, organ in ((pancreas, "胰头"), (lung, "右肺上叶")):
            out = model.generate(ids, max_new_tokens=32)
            text = tok.decode(out[0], skip_special_tokens=True)
            assert text.startswith(organ) and text.endswith("。") and out[0, -1] == model.config.eos_token_id, text


def test_model_card_states_data_recipe_metrics_and_limits():
    card = (DEFAULT_MODEL / "README.md").read_text(encoding="utf-8").lower()
    for needed in (
        "cpet",
        "petsum split",
        "petsum train",
        "rouge-l",
        "bleu",
        "mr",
        "not validated for clinical use",
        "known failure modes",
    ):
        assert needed in card, needed


def test_greedy_impression_of_the_example_report():
    """examples/report.txt: a pancreatic mass and liver nodules, everything else normal."""
    from petsum import Summarizer

    summarizer = Summarizer.load(consensus=0)
    [summary] = summarizer.summarize([REPORT.read_text(encoding="utf-8")])
    *items, closing = summary.impression.split("\n")
    assert items and items[0].startswith("1、") and "胰" in items[0] and "考虑" in items[0], (
        summary.impression
    )  # the pancreas first
    assert any("肝" in item for item in items), summary.impression  # the liver nodules are reported too
    assert not any(organ in "".join(items) for organ in ("脑", "甲状腺", "肺", "膀胱")), (
        summary.impression
    )  # normal organs are not
    assert closing in summarizer.closing.lines and closing.startswith("余"), (
        summary.impression
    )  # the fitted closing line


def test_summarize_and_batch_use_the_default_model(tmp_path):
    res = CliRunner().invoke(petsum, ["summarize", str(REPORT), "--json", "--consensus", "0"])  # greedy: quick
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["model"] == str(DEFAULT_MODEL) and "胰" in out["impression"].split("\n")[0], out
    assert out["impression"].endswith("PET/CT检查未见明显异常代谢征象。"), out
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text(REPORT.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "b.txt").write_text("", encoding="utf-8")
    res = CliRunner().invoke(petsum, ["batch", str(folder), "--out", str(tmp_path / "out.jsonl"), "--consensus", "0"])
    assert res.exit_code == 3, res.output  # b.txt is empty: one error record, the run goes on
    rows = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"] and "empty" in rows[1]["error"]
    assert rows[0]["impression"] == out["impression"]  # the same model and decoding as summarize


def test_shipped_decoding_is_the_one_the_card_describes():
    """ases.json's input and decoding settings are part of the model: the card's metrics were measured with them."""
    from petsum.assemble.pointer import PointerOrder
    from petsum.summarize.summarizer import Summarizer, normal_bias

    summarizer = Summarizer(DEFAULT_MODEL)
    generate = summarizer.models.generate
    assert (
        summarizer.source == "finding" and summarizer.item_order is not None and summarizer.closing is not None
    )  # petsum order
    assert (
        summarizer.opening is not None and summarizer.opening.lines[1] == "与前次PET/CT检查比较"
    )  # and the opening line
    assert isinstance(summarizer.item_order, PointerOrder) and summarizer.item_order.layers == 2  # the pointer order
    assert (summarizer.item_order.beam, summarizer.item_order.temperature) == (16, 2.0)  # and its beams' vote
    assert {"<region chest>", "<place 0>", "<suv rank 0>"} <= set(
        summarizer.item_order.features
    )  # and its context features
    assert (
        generate.no_repeat_ngram_size == 4
        and generate.first_token_bias == normal_bias(1.0)
        and generate.eos_bias == 0.0
    )
    assert generate.consensus_samples == 24 and generate.sample_epsilon == 0.02
    card = (DEFAULT_MODEL / "README.md").read_text(encoding="utf-8")
    for setting in (
        '"source": "finding"',
        "no_repeat_ngram_size: 4",
        "penalized by 1 logit",
        "eos_bias: 0",
        "petsum order --data",
        "consensus_samples: 24",
        "beam 16, temperature 2",
        '"opening_line"',
        "--kind pointer",
    ):
        assert setting in card, setting
