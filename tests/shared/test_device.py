"""Device and precision choice (shared.device), the budget's LR schedule and its progress (shared.trainer):
the rules that decide GPU training, tested on the CPU."""

from __future__ import annotations

import pytest

from shared.device import autocast_dtype, precision_for, resolve_device
from shared.textio import InputError
from shared.trainer import Budget, Schedule, TrainState


def test_auto_is_cuda_only_where_there_is_one():
    assert resolve_device("auto", has_cuda=True) == "cuda"
    assert resolve_device("auto", has_cuda=False) == "cpu"
    assert resolve_device("cpu", has_cuda=True) == "cpu"
    assert resolve_device("cuda", has_cuda=True) == "cuda"


def test_cuda_without_cuda_is_one_line_input_error():
    with pytest.raises(InputError) as info:
        resolve_device("cuda", has_cuda=False)
    msg = str(info.value)
    assert "no CUDA device" in msg and "\n" not in msg


@pytest.mark.parametrize(
    ("device", "precision", "bf16", "expected"),
    [
        ("cpu", "auto", False, None),  # the CPU's fast kernels are fp32
        ("cpu", "auto", True, None),
        ("cuda", "auto", True, "bfloat16"),
        ("cuda:0", "auto", True, "bfloat16"),
        ("cuda", "auto", False, "float16"),  # no bf16 (pre-Ampere): fp16 with a scaler
        ("cuda", "fp32", True, None),
        ("cuda", "bf16", True, "bfloat16"),
        ("cuda", "fp16", True, "float16"),
    ],
)
def test_autocast_dtype(device, precision, bf16, expected):
    assert autocast_dtype(device, precision, bf16) == expected


def test_mixed_precision_asked_where_it_cannot_run():
    with pytest.raises(InputError, match="needs --device cuda"):
        autocast_dtype("cpu", "bf16", False)
    with pytest.raises(InputError, match="no bf16"):
        autocast_dtype("cuda", "bf16", False)


def test_cpu_precision_is_plain_fp32_without_scaler():
    p = precision_for("cpu", "auto")
    assert p.dtype is None and not p.scaled and p.scaler() is None
    assert p.describe() == "cpu, fp32"
    with p.autocast():  # a no-op context on the CPU
        pass


def test_fp16_precision_has_a_scaler_and_bf16_none():
    from shared.device import StepPrecision

    assert StepPrecision("cuda", "float16").scaled
    assert not StepPrecision("cuda", "bfloat16").scaled
    assert StepPrecision("cuda", "bfloat16").describe() == "cuda, bf16"


def test_schedule_decays_over_steps():
    s = Schedule(warm=10, total_steps=110, total_s=None)
    assert s(0) == pytest.approx(0.1) and s(9) == pytest.approx(1.0)
    assert s(60) == pytest.approx(1 - 0.9 * 0.5)
    assert s(110) == pytest.approx(0.1) and s(500) == pytest.approx(0.1)


def test_schedule_decays_over_a_time_budget():
    """A time budget's stage has no step count: its rate decays with the seconds spent."""
    s = Schedule(warm=0, total_steps=None, total_s=100.0)
    s.train_s = 0.0
    assert s(50) == pytest.approx(1.0)
    s.train_s = 50.0
    assert s(51) == pytest.approx(0.55)
    s.train_s = 100.0
    assert s(52) == pytest.approx(0.1)


def test_schedule_follows_the_budget_nearer_its_end():
    s = Schedule(warm=0, total_steps=1000, total_s=100.0)
    s.train_s = 80.0  # 80% of the time, 10% of the steps
    assert s(100) == pytest.approx(1 - 0.9 * 0.8)
    assert Schedule(warm=0, total_steps=None, total_s=None)(10**6) == 1.0  # no known end: held


def test_budget_fraction_for_each_unit():
    st = TrainState(step=5, tokens=300, train_s=10.0)
    assert Budget(10, None).fraction(st) == pytest.approx(0.5)
    assert Budget(None, 40.0).fraction(st) == pytest.approx(0.25)
    assert Budget(None, None, 1000).fraction(st) == pytest.approx(0.3)
    assert Budget(100, 20.0, 1000).fraction(st) == pytest.approx(0.5)
    assert Budget(1, None).fraction(st) == 1.0


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_mixed_precision_step_runs_on_the_cpu(dtype):
    """The GPU's step (autocast, and fp16's gradient scaler) exercised on the CPU, whose autocast takes
    both dtypes: the loss is finite and the weights move."""
    import torch
    from tinymodels import tiny_model, tiny_tokenizer

    from shared.device import StepPrecision
    from shared.trainer import train_step

    tok, model = tiny_tokenizer(), tiny_model()
    enc = tok(["胰头部见软组织肿块"], return_tensors="pt")
    labels = tok(["胰头占位"], return_tensors="pt").input_ids
    batch = {"input_ids": enc.input_ids, "attention_mask": enc.attention_mask, "labels": labels}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    precision = StepPrecision("cpu", dtype)
    scaler = precision.scaler()
    assert (scaler is not None) == (dtype == "float16")
    before = [p.detach().clone() for p in model.parameters()]
    loss = train_step(model, batch, opt, sched, 0.0, 1.0, 1.0 / labels.numel(), precision, scaler)
    assert torch.isfinite(loss) and loss.dtype == torch.float32
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
