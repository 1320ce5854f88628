"""Training one seq2seq model on AS-ES (or direct) rows.

Plain functions: `train_model` runs the loop, `evaluate_loss` / `evaluate_bleu` validate,
`save_state` / `load_state` make it resumable. Checkpoints, as in the paper:
  best_train  lowest mean training loss over an eval interval
  best_loss   lowest validation loss
  best_bleu   highest validation BLEU of generated text
  last        the newest state, with optimizer and RNG, for resuming after an interruption
Batches are deterministic per (seed, epoch), so a resumed run sees exactly the batches an
uninterrupted one would have seen from that step on.

Several processes (torchrun, `shared.distributed`) train with DistributedDataParallel on the
single-process batches: each global batch is split across ranks, each rank's summed loss is
scaled by world / (the global batch's target tokens), and DDP's mean over ranks then gives
exactly the gradient of the global token-mean loss. Only rank 0 evaluates, writes checkpoints
and logs; the others wait at a barrier.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.batching import BucketBatches, Encoded, collate, encode_samples, model_inputs, padded_size
from shared.config import GenerateConfig, RunConfig
from shared.device import StepPrecision, precision_for, resolve_device
from shared.distributed import SINGLE, Dist
from shared.modeling import is_causal, load_model, recover_checkpoint, save_checkpoint

if TYPE_CHECKING:
    import torch
    from rich.console import Console
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from shared.schema import Sample


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    tokens: int = 0  # real (non-pad) source + target tokens trained on
    padded_tokens: int = 0  # tokens the model actually computed, padding included
    train_s: float = 0.0  # seconds in training steps: the budget that max_time_s limits
    best_train: float = math.inf
    best_loss: float = math.inf
    best_bleu: float = -1.0
    best_bleu_loss: float = math.inf  # validation loss of the best_bleu checkpoint, to break BLEU ties


@dataclass(frozen=True)
class Budget:
    max_steps: int | None
    max_time_s: float | None
    max_tokens: int | None = None
    schedule_steps: int | None = (
        None  # the LR schedule's length: max_steps, or the steps max_tokens is expected to take
    )

    def fraction(self, st: TrainState) -> float:
        """How much of the budget is spent, 0 to 1: the unit nearest its end decides."""
        parts = [
            st.step / self.max_steps if self.max_steps else 0.0,
            st.train_s / self.max_time_s if self.max_time_s else 0.0,
            st.tokens / self.max_tokens if self.max_tokens else 0.0,
        ]
        return min(1.0, max(parts))

    def spent(self, st: TrainState) -> bool:
        return (
            (self.max_steps is not None and st.step >= self.max_steps)
            or (self.max_time_s is not None and st.train_s >= self.max_time_s)
            or (self.max_tokens is not None and st.tokens >= self.max_tokens)
        )


def make_budget(cfg: RunConfig, scale: float, lengths: list[int], sampler: BucketBatches) -> Budget:
    """The run's budget, scaled (DSM's models share one). A token budget also fixes the LR
    schedule's length: the steps it takes at epoch 0's mean real tokens per batch."""
    tc = cfg.train
    steps = math.ceil(tc.max_steps * scale) if tc.max_steps else None
    tokens = math.ceil(tc.max_train_tokens * scale) if tc.max_train_tokens else None
    schedule = steps
    if tokens is not None:
        batches = sampler.epoch(0)
        per_batch = sum(lengths[i] for b in batches for i in b) / max(len(batches), 1)
        expected = math.ceil(tokens / max(per_batch, 1.0))
        schedule = min(steps, expected) if steps else expected
    return Budget(steps, tc.max_time_s * scale if tc.max_time_s else None, tokens, schedule)


class Schedule:
    """The learning-rate factor: linear warmup, then linear decay to a tenth over the budget. The
    budget's end is known in steps (a step or token budget) and in seconds (a time budget); the
    decay follows whichever is nearer its end, so a run stopped by its time limit has decayed too.
    `train_s` is the trainer's clock, set before each step."""

    def __init__(self, warm: int, total_steps: int | None, total_s: float | None) -> None:
        self.warm, self.total_steps, self.total_s = warm, total_steps, total_s
        self.train_s = 0.0

    def __call__(self, step: int) -> float:
        if self.warm and step < self.warm:
            return (step + 1) / self.warm
        done = []
        if self.total_steps is not None and self.total_steps > self.warm:
            done.append((step - self.warm) / (self.total_steps - self.warm))
        if self.total_s:
            done.append(self.train_s / self.total_s)
        if not done:
            return 1.0  # no known end: hold the rate after warmup
        return max(0.1, 1.0 - 0.9 * min(1.0, max(done)))


def make_optimizer(model: "PreTrainedModel", cfg: RunConfig, budget: Budget):
    """AdamW and its `LambdaLR` over a `Schedule`, reachable as `scheduler.clock` to set its time."""
    import torch

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.train.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.train.lr,
    )
    clock = Schedule(cfg.train.warmup_steps, budget.schedule_steps or budget.max_steps, budget.max_time_s)
    # A closure, not the object: LambdaLR saves callable objects in its state, and a resume with a
    # larger budget must decay over the new one, not the saved one.
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: clock(step))
    sched.clock = clock  # type: ignore[attr-defined]
    return opt, sched


def loss_sum(model: "PreTrainedModel", batch: dict, label_smoothing: float) -> "torch.Tensor":
    """Cross-entropy summed (not averaged) over the batch's target tokens: a rank holds part of
    a batch, and only the caller knows the whole batch's token count to divide by."""
    import torch.nn.functional as F

    logits = model(**model_inputs(batch)).logits
    labels, weights = batch["labels"], batch.get("weights")
    if is_causal(model):  # a decoder-only model's logits at t predict the token at t + 1
        logits, labels = logits[:, :-1], labels[:, 1:]
        weights = None if weights is None else weights[:, 1:]
    losses = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)),
        labels.reshape(-1),
        ignore_index=-100,
        label_smoothing=label_smoothing,
        reduction="none" if weights is not None else "sum",
    )
    return losses if weights is None else (losses * weights.reshape(-1).to(losses.dtype)).sum()


FP32 = StepPrecision("cpu", None)


def train_step(
    model: "PreTrainedModel",
    batch: dict,
    opt,
    sched,
    label_smoothing: float,
    grad_clip: float,
    scale: float,
    precision: StepPrecision = FP32,
    scaler=None,
) -> "torch.Tensor":
    """One optimizer step on `loss_sum × scale`; returns the (detached) summed loss. `scale` is
    1 / the batch's target tokens in one process; see `train_model` for several. Under fp16 the
    loss is scaled by `scaler` and the gradients unscaled before clipping."""
    import torch

    with precision.autocast():
        total = loss_sum(model, batch, label_smoothing)
    loss = total.float() * scale
    if scaler is None:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)  # after DDP's all-reduce: the same on every rank
        opt.step()
    else:
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(opt)  # skipped when the gradients overflowed
        scaler.update()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return total.detach().float()


def evaluate_loss(model: "PreTrainedModel", rows: list[Encoded], pad_id: int, batch_size: int) -> float:
    """Token-weighted mean validation loss."""
    import torch

    if not rows:
        return math.nan
    model.eval()
    total, count = 0.0, 0
    order = sorted(range(len(rows)), key=lambda i: rows[i].n_tokens)
    with torch.no_grad():
        for b in range(0, len(order), batch_size):
            batch = _to(
                collate([rows[i] for i in order[b : b + batch_size]], pad_id, causal=is_causal(model)), model.device
            )
            n = int((batch["labels"] != -100).sum())
            total += float(model(**model_inputs(batch)).loss) * n  # unweighted: comparable across runs
            count += n
    model.train()
    return total / count


def evaluate_bleu(
    model: "PreTrainedModel",
    tokenizer: "PreTrainedTokenizerBase",
    rows: list[Encoded],
    refs: list[str],
    cfg: RunConfig,
    bleu_tokenize: str,
) -> float:
    """BLEU of single-step greedy generations against the rows' targets."""
    from shared.generate import generate_batch
    from shared.metrics import corpus_bleu

    if not rows:
        return math.nan
    model.eval()
    gen_cfg = GenerateConfig(
        num_beams=1,
        max_new_tokens=cfg.data.max_target_len,
        batch_size=cfg.generate.batch_size,
        no_repeat_ngram_size=cfg.generate.no_repeat_ngram_size,
        first_token_bias=cfg.generate.first_token_bias,
    )  # score as the run will decode
    hyps, _, _ = generate_batch(model, tokenizer, [r.source for r in rows], gen_cfg)
    model.train()
    return corpus_bleu(hyps, refs, bleu_tokenize)


def save_state(model, tokenizer, opt, sched, st: TrainState, out: Path, manifest: dict, scaler=None) -> None:
    """`out/last`: weights, optimizer, scheduler, RNGs (and the fp16 scaler) and the trainer state,
    swapped in whole (`save_checkpoint`), so a kill at any moment leaves a `last` that resumes."""
    import torch

    extra = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": torch.get_rng_state()}
    if torch.cuda.is_available() and next(model.parameters()).is_cuda:
        extra["cuda_rng"] = torch.cuda.get_rng_state_all()
    if scaler is not None:
        extra["scaler"] = scaler.state_dict()

    def write(folder: Path) -> None:
        torch.save(extra, folder / "optimizer.pt")
        (folder / "trainer_state.json").write_text(json.dumps(asdict(st), indent=2) + "\n")

    save_checkpoint(model, tokenizer, out / "last", manifest, write)


def load_state(out: Path, cfg: RunConfig, budget: Budget, device: str = "cpu", scaler=None):
    """(model, optimizer, scheduler, state) from `out/last`. The model moves to `device` before
    the optimizer loads its state, which follows the parameters' device."""
    import torch

    model = load_model(out / "last").to(device)
    model.train()
    opt, sched = make_optimizer(model, cfg, budget)
    extra = torch.load(out / "last" / "optimizer.pt", weights_only=False, map_location="cpu")
    opt.load_state_dict(extra["optimizer"])
    sched.load_state_dict(extra["scheduler"])
    torch.set_rng_state(extra["rng"])
    if "cuda_rng" in extra and device.startswith("cuda"):
        torch.cuda.set_rng_state_all(extra["cuda_rng"])
    if scaler is not None and "scaler" in extra:
        scaler.load_state_dict(extra["scaler"])
    st = TrainState(**json.loads((out / "last" / "trainer_state.json").read_text()))
    sched.clock.train_s = st.train_s
    return model, opt, sched, st


def train_model(
    model: "PreTrainedModel",
    tokenizer: "PreTrainedTokenizerBase",
    train_rows: list["Sample"],
    val_rows: list["Sample"],
    cfg: RunConfig,
    out: Path,
    manifest: dict,
    bleu_tokenize: str = "13a",
    budget_scale: float = 1.0,
    console: "Console | None" = None,
    dist: Dist = SINGLE,
    label: str | None = None,
) -> tuple["PreTrainedModel", TrainState]:
    """Train until the budget is spent; resumes from `out/last` when it exists. With several
    processes every rank calls this with the same rows; rank 0 alone writes."""
    import torch
    from rich.console import Console

    console = console or Console(stderr=True, quiet=not dist.main)
    tc = cfg.train
    if tc.threads:
        torch.set_num_threads(tc.threads)
    device = dist.device if dist.active else resolve_device(tc.device)
    precision = precision_for(device, tc.precision)
    scaler = precision.scaler()
    out.mkdir(parents=True, exist_ok=True)
    if not train_rows:
        raise ValueError(f"no training rows for {out.name}")
    enc = encode_samples(tokenizer, train_rows, cfg.data.max_source_len, cfg.data.max_target_len, cfg.train.key_weight)
    bucket = tc.batching == "bucket"
    sampler = BucketBatches(
        [e.n_tokens for e in enc],
        tc.batch_size,
        tc.max_tokens if bucket else None,
        tc.seed,
        bucket=bucket,
        rank=dist.rank,
        world=dist.world,
    )
    budget = make_budget(cfg, budget_scale, [e.n_tokens for e in enc], sampler)

    if dist.main:
        for name in ("last", "best_train", "best_loss", "best_bleu"):
            recover_checkpoint(out / name)
    if dist.broadcast((out / "last" / "trainer_state.json").is_file()):  # rank 0's view: every rank resumes, or none
        model, opt, sched, st = load_state(out, cfg, budget, device, scaler)
        console.log(f"[{out.name}] resuming at step {st.step}", markup=False)
    else:
        torch.manual_seed(tc.seed)
        model = model.to(device)
        model.train()
        opt, sched = make_optimizer(model, cfg, budget)
        st = TrainState()
    trained = _ddp(model, dist)  # steps go through DDP; evaluation and checkpoints use the plain model

    val = val_rows[: tc.eval_samples]
    val_enc = encode_samples(tokenizer, val, cfg.data.max_source_len, cfg.data.max_target_len)
    gen_n = min(tc.eval_gen_samples, len(val))
    pad_to = (cfg.data.max_source_len, cfg.data.max_target_len) if not bucket else None
    pad_id = tokenizer.pad_token_id
    metrics = None
    if dist.main:
        _truncate_metrics(out / "metrics.jsonl", st.step)  # steps after the restored state are re-run
        metrics = (out / "metrics.jsonl").open("a", encoding="utf-8")
    interval_loss, interval_steps, interval_tokens, interval_time = 0.0, 0, 0, 0.0

    def log(record: dict) -> None:
        if metrics is None:
            return
        clean = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in record.items()}
        metrics.write(json.dumps(clean) + "\n")
        metrics.flush()

    def evaluate() -> None:
        nonlocal interval_loss, interval_steps
        if dist.main:
            _evaluate_and_save(
                model,
                tokenizer,
                opt,
                sched,
                st,
                out,
                manifest,
                cfg,
                val,
                val_enc,
                gen_n,
                pad_id,
                bleu_tokenize,
                interval_loss / max(interval_steps, 1),
                bool(interval_steps),
                log,
                console,
                scaler,
                _where(budget, st),
            )
        interval_loss, interval_steps = 0.0, 0
        dist.barrier()  # the other ranks wait for rank 0's checkpoints

    progress = _progress(console, dist)
    task = progress.add_task(label or out.name, total=1000, loss=math.nan, tps=0.0, tokens=st.tokens)
    progress.update(task, completed=1000 * budget.fraction(st))
    try:
        with progress:
            while not budget.spent(st):
                batches = sampler.epoch(st.epoch)
                if not batches:
                    raise ValueError(f"{out.name}: an epoch has no batches ({len(enc)} rows)")
                while st.batch_in_epoch < len(batches) and not budget.spent(st):
                    t0 = time.perf_counter()
                    ids = batches[st.batch_in_epoch]
                    sched.clock.train_s = st.train_s
                    loss = _distributed_step(
                        trained, enc, ids, sampler, dist, device, pad_id, pad_to, opt, sched, tc, precision, scaler
                    )
                    # The slowest rank's time, so a time budget ends on the same step everywhere.
                    dt = dist.max(time.perf_counter() - t0)
                    # Counted from the global batch, not this rank's share: every rank agrees.
                    real = sum(enc[i].n_tokens for i in ids)
                    st.step += 1
                    st.batch_in_epoch += 1
                    st.tokens += real
                    st.padded_tokens += sum(
                        padded_size([enc[i] for i in sampler.shard(ids, r)], pad_to) for r in range(dist.world)
                    )
                    st.train_s += dt
                    interval_loss += loss
                    interval_steps += 1
                    interval_tokens += real
                    interval_time += dt
                    if st.step % tc.log_every == 0:
                        tps = interval_tokens / max(interval_time, 1e-9)
                        log(
                            {
                                "step": st.step,
                                "loss": loss,
                                "lr": sched.get_last_lr()[0],
                                "tokens": st.tokens,
                                "tokens_per_s": round(tps, 1),
                                "train_s": round(st.train_s, 2),
                            }
                        )
                        progress.update(task, loss=loss, tps=tps, tokens=st.tokens)
                        interval_tokens, interval_time = 0, 0.0
                    progress.update(task, completed=1000 * budget.fraction(st))
                    if st.step % tc.eval_every == 0:
                        evaluate()
                if st.batch_in_epoch >= len(batches):
                    st.epoch += 1
                    st.batch_in_epoch = 0
            if dist.broadcast(interval_steps > 0 or not (out / "best_loss").exists()):
                evaluate()
    finally:
        if metrics is not None:
            metrics.close()
    return model, st


def _distributed_step(
    trained: "PreTrainedModel",
    enc: list[Encoded],
    ids: list[int],
    sampler: BucketBatches,
    dist: Dist,
    device: str,
    pad_id: int,
    pad_to: tuple[int, int] | None,
    opt,
    sched,
    tc,
    precision: StepPrecision,
    scaler,
) -> float:
    """One optimizer step on global batch `ids`; returns its token-mean loss. This rank trains
    on its shard with loss_sum × world / (the whole batch's target tokens): DDP averages the
    ranks' gradients, so the step equals one process's step on the whole batch."""
    mine = sampler.shard(ids)
    target_tokens = sum(len(enc[i].target) for i in ids)
    # A batch smaller than the world leaves this rank no rows; it still joins DDP's all-reduce,
    # with one row weighted 0.
    rows = [enc[i] for i in (mine or ids[:1])]
    batch = _to(collate(rows, pad_id, pad_to, is_causal(trained)), device)
    scale = dist.world / target_tokens if mine else 0.0
    total = train_step(trained, batch, opt, sched, tc.label_smoothing, tc.grad_clip, scale, precision, scaler)
    return dist.sum(float(total) if mine else 0.0) / target_tokens


def _evaluate_and_save(
    model,
    tokenizer,
    opt,
    sched,
    st: TrainState,
    out: Path,
    manifest: dict,
    cfg: RunConfig,
    val,
    val_enc,
    gen_n: int,
    pad_id: int,
    bleu_tokenize: str,
    mean_train: float,
    trained_since: bool,
    log,
    console: "Console",
    scaler=None,
    where: str = "",
) -> None:
    """Validation loss and BLEU, the best_* checkpoints they earn, and `last`; `where` says how far the budget is."""
    val_loss = evaluate_loss(model, val_enc, pad_id, cfg.train.batch_size)
    bleu = (
        evaluate_bleu(model, tokenizer, val_enc[:gen_n], [r.target for r in val[:gen_n]], cfg, bleu_tokenize)
        if gen_n
        else math.nan
    )
    log(
        {
            "step": st.step,
            "train_loss": mean_train,
            "val_loss": val_loss,
            "val_bleu": bleu,
            "tokens": st.tokens,
            "train_s": round(st.train_s, 2),
        }
    )
    console.log(
        f"[{out.name}] step {st.step}, {st.tokens:,} tokens, {st.train_s:,.0f} s: "
        f"train {mean_train:.3f}  val {val_loss:.3f}  bleu {bleu:.1f}{where}",
        markup=False,
    )

    meta = {**manifest, "step": st.step, "val_loss": val_loss, "val_bleu": bleu}
    if trained_since and mean_train < st.best_train:
        st.best_train = mean_train
        save_checkpoint(model, tokenizer, out / "best_train", {**meta, "checkpoint": "best_train"})
    if not math.isnan(val_loss) and val_loss < st.best_loss:
        st.best_loss = val_loss
        save_checkpoint(model, tokenizer, out / "best_loss", {**meta, "checkpoint": "best_loss"})
    # Equal BLEU (often 0 early on) keeps the better-loss model, not the oldest one.
    if not math.isnan(bleu) and (bleu > st.best_bleu or (bleu == st.best_bleu and val_loss < st.best_bleu_loss)):
        st.best_bleu, st.best_bleu_loss = bleu, val_loss
        save_checkpoint(model, tokenizer, out / "best_bleu", {**meta, "checkpoint": "best_bleu"})
    save_state(model, tokenizer, opt, sched, st, out, {**meta, "checkpoint": "last"}, scaler)


def _where(budget: Budget, st: TrainState) -> str:
    """`  (40%, 3,210 tokens/s, ETA 12 min)` for a log line, where no progress bar is drawn."""
    done = budget.fraction(st)
    if not st.train_s or not done:
        return ""
    eta = st.train_s * (1 - done) / done
    return f"  ({100 * done:.0f}%, {st.tokens / st.train_s:,.0f} tokens/s, ETA {eta / 60:.0f} min)"


def _ddp(model: "PreTrainedModel", dist: Dist):
    """The model wrapped for DistributedDataParallel (which also copies rank 0's weights to every
    rank); the plain model in one process."""
    if not dist.active:
        return model
    import torch
    from torch.nn.parallel import DistributedDataParallel

    device = torch.device(dist.device)
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop log lines past `step`: an interrupted run logged steps it will now repeat."""
    if not path.is_file():
        return
    keep = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line).get("step", 0) <= step
    ]
    path.write_text("".join(line + "\n" for line in keep), encoding="utf-8")


def _progress(console: "Console", dist: Dist = SINGLE):
    """A bar over the budget (permille, whatever its unit), with tokens, loss, tokens/s and the time left."""
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[tokens]:,} tokens"),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TextColumn("{task.fields[tps]:,.0f} tok/s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal or not dist.main,
    )
