"""Shared test settings: fixture paths and a model small enough to train in seconds on 2 cores."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("PETSUM_SHARED_DATA", REPO.parent / "shared" / "data"))

# Hand-written region sections (never real reports), shared by the text and summarize tests.
LIVER = "肝脏形态可，轮廓光整，肝叶比例正常，肝实质密度弥漫性减低，CT值约40HU，无异常放射性摄取。肝内外胆管无扩张。"
PANCREAS = "胰头部明显肿大，形态欠规则并异常放射性摄取，SUVmax:12.4；胰管扩张。脾脏形态正常，放射性分布均匀。"
NORMAL_HEAD = "口咽部两侧腺体显影对称，鼻咽部无异常放射性浓聚。甲状腺两叶不大，腺实质内未见异常放射性增高灶。"
# A report sentence no output, log or error may ever quote (patient data).
SECRET = "患者张三右肺上叶见结节"
GOOD = "脑部未见异常放射性浓聚。      胰头部见软组织肿块，放射性摄取增高，SUVmax：6.1。      双肺未见结节。"


def reports_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / "a_good.txt").write_text(SECRET + "，放射性摄取增高。     " + GOOD, encoding="utf-8")
    (folder / "b_gbk.txt").write_bytes(GOOD.encode("gbk"))
    (folder / "c_empty.txt").write_text("  \n ", encoding="utf-8")
    (folder / "d_binary.txt").write_bytes(b"\x89PNG\x00\x00\x01" * 10)
    (folder / "e_english.txt").write_text("No abnormal FDG uptake in the liver.", encoding="utf-8")
    (folder / "f_huge.txt").write_text(
        "肝脏见多发低密度结节，放射性摄取增高。" * 400 + "     " + GOOD, encoding="utf-8"
    )
    (folder / "g_one_section.txt").write_text("肝右叶见低密度结节，SUVmax：5.6。", encoding="utf-8")
    (folder / "notes.md").write_text("not a report", encoding="utf-8")
    return folder


def load_benchmark(name: str) -> ModuleType:
    """`benchmarks/{name}.py` or `experiments/{name}.py` as a module (they are scripts, not a
    package), registered under `name` so that its dataclasses and pickles resolve."""
    folder = "benchmarks" if (REPO / "benchmarks" / f"{name}.py").is_file() else "experiments"
    spec = importlib.util.spec_from_file_location(name, REPO / folder / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


TINY = {
    "model.vocab_size": 400,
    "model.d_model": 32,
    "model.d_ff": 64,
    "model.num_layers": 2,
    "model.num_heads": 2,
    "model.dropout": 0.0,
    "train.batch_size": 8,
    "train.warmup_steps": 2,
    "train.eval_every": 4,
    "train.log_every": 2,
    "train.eval_gen_samples": 2,
    "data.max_source_len": 256,
    "data.max_target_len": 48,
    "generate.max_new_tokens": 12,
    "generate.max_iters": 4,
}


def tiny_sets(**extra) -> list[str]:
    """TINY (plus `extra`) as repeated `--set key=value` CLI arguments."""
    args = []
    for k, v in {**TINY, **extra}.items():
        args += ["--set", f"{k}={v}"]
    return args


@pytest.fixture(autouse=True)
def _quick_tests_use_one_torch_thread(request):
    """The quick loop (`-m "not slow"`) runs tiny models and small fits, for which torch's thread
    hand-offs cost more than the math, many times more on a busy 2-core machine. Slow tests (real
    training, ONNX) keep torch's threads."""
    if request.node.get_closest_marker("slow"):
        yield
        return
    from tinymodels import one_torch_thread

    with one_torch_thread():
        yield


@pytest.fixture
def pet_csv() -> Path:
    return FIXTURES / "pet_toy.csv"


@pytest.fixture
def math_jsonl() -> Path:
    return FIXTURES / "math_toy.jsonl"


@pytest.fixture(scope="session")
def pet_run(tmp_path_factory) -> Path:
    """A tiny region-level USM run trained once for every CLI test."""
    from click.testing import CliRunner

    from petsum.cli import main as petsum

    out = tmp_path_factory.mktemp("pet") / "run"
    args = [
        "train",
        "--data",
        str(FIXTURES / "pet_toy.csv"),
        "--out",
        str(out),
        "--method",
        "usm",
        *tiny_sets(**{"train.max_steps": 4}),
    ]
    res = CliRunner().invoke(petsum, args)
    assert res.exit_code == 0, res.output
    return out
