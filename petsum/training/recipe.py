"""`petsum train`'s default: the shipped default's recipe as one resumable pipeline.

Stages, each with a fixed share of the budget (`recipe.yaml`):
  tokenizer      BPE on the training findings and impressions (with --init: that model's tokenizer)
  warmup         copy warm-up on each region's salient sentences (skipped with --init)
  finding        direct training on finding instances
  continue-K     continuations of the finding stage at other rates (long budgets only), then
  average        the mean of their weights
  model          the servable folder (DIR itself) and its house style: item order, closing and opening lines

The run folder:
  recipe.json             what the folder was started with: recipe, budget, data fingerprint, --init
  tokenizer/
  stages/NAME/            a run folder per training stage (its model/last resumes it), done.json when finished
  stages/model/done.json  the last stage; DIR then holds the model: ases.json, fitted.json, weights, tokenizer

A stage that has its done.json is never run again; one without it resumes from its own last
checkpoint, so a kill -9 at any moment loses at most one validation interval of one stage.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from petsum.adapter import PetAdapter
from petsum.summarize.folder import input_kind
from petsum.text.inputs import InputKind
from petsum.training.budget import Budget
from petsum.training.config import PetRunConfig
from petsum.training.prepare import prepare
from petsum.training.recipe_config import RECIPE, RecipeConfig, Settings
from shared.config import load_config
from shared.modeling import CHECKPOINT_FACTS, MANIFEST, is_checkpoint, load_tokenizer, read_manifest
from shared.schema import Example
from shared.textio import InputError

if TYPE_CHECKING:
    from rich.console import Console

STATE = "recipe.json"
TRAINING_ONLY = frozenset({"optimizer.pt", "trainer_state.json", MANIFEST})  # the manifest is rewritten


@dataclass(frozen=True)
class Stage:
    """One step of the plan. `kind`: tokenizer, train, average or model. A train stage reads `source`
    and writes `target`, starts from `start` (a stage name, `init`, or None: fresh weights) and gets
    `budget`; an average stage means the weights of `of`."""

    name: str
    kind: str
    budget: Budget | None = None
    settings: Settings | None = None
    lr: float = 0.0
    source: str = InputKind.FINDING.value
    target: str = "impression"
    start: str | None = None
    of: tuple[str, ...] = field(default_factory=tuple)


def plan(recipe: RecipeConfig, budget: Budget, init: bool) -> list[Stage]:
    """The stages this budget runs, with their shares; a pure function of the settings."""
    cont = recipe.continuation
    continues = budget.at_least(cont.min_tokens, cont.min_seconds)
    finding_share = recipe.finding.share + (0.0 if continues else cont.share) + (recipe.warmup.share if init else 0.0)
    stages = [Stage("tokenizer", "tokenizer")]
    if not init:
        w = recipe.warmup
        stages.append(Stage("warmup", "train", budget.share(w.share), w, w.lr, InputKind.SALIENT.value, "copy"))
    f = recipe.init if init else recipe.finding
    stages.append(Stage("finding", "train", budget.share(finding_share), f, f.lr, start="init" if init else "warmup"))
    last = "finding"
    if continues:
        names = tuple(f"continue-{k}" for k in range(1, len(cont.runs) + 1))
        each = budget.share(cont.share / len(cont.runs))
        for k, (name, lr) in enumerate(zip(names, cont.runs)):
            seeded = cont.model_copy(update={"seed": cont.seed + k})
            stages.append(Stage(name, "train", each, seeded, lr, start="finding"))
        if len(names) > 1:
            stages.append(Stage("average", "average", of=names))
            last = "average"
        else:
            last = names[0]
    stages.append(Stage("model", "model", of=(last,)))
    return stages


def fingerprint(*paths: str | None) -> str:
    """SHA-256 of the data files' bytes: a folder resumes only on the data it was started with."""
    h = hashlib.sha256()
    for p in paths:
        h.update(b"\0" if p is None else Path(p).read_bytes())
    return h.hexdigest()[:16]


RECIPE_KEYS = frozenset({"tokens", "warmup", "finding", "init", "continuation", "fit"})


def is_recipe_file(path: str) -> bool:
    """Whether a `--config` file is a recipe (it names a stage) rather than one research run's config."""
    from shared.config import read_config_file

    return bool(RECIPE_KEYS & set(read_config_file(Path(path))))


def load_recipe(config_path: str | None, sets: tuple[str, ...]) -> RecipeConfig:
    from shared.config import parse_override

    return load_config(config_path or RECIPE, dict(parse_override(s) for s in sets), RecipeConfig)


@dataclass
class Run:
    """One recipe run: where, on what, and with what; `stages` is its plan."""

    out: Path
    recipe: RecipeConfig
    budget: Budget
    reports: list[Example]
    val: list[Example] | None
    init: Path | None
    device: str
    console: "Console"
    stages: list[Stage] = field(default_factory=list)
    _instances: dict = field(default_factory=dict)

    def folder(self, stage: str) -> Path:
        return self.out / "stages" / stage

    def done(self, stage: str) -> dict | None:
        f = self.folder(stage) / "done.json"
        return json.loads(f.read_text(encoding="utf-8")) if f.is_file() else None

    def mark_done(self, stage: str, facts: dict) -> None:
        f = self.folder(stage) / "done.json"
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(".tmp")
        tmp.write_text(json.dumps({**facts, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2) + "\n")
        tmp.replace(f)

    def weights_of(self, stage: str) -> Path:
        """The checkpoint a later stage starts from: a train stage's last state, an average's folder."""
        if stage == "init":
            return self.init  # type: ignore[return-value]
        if stage == "average":
            return self.folder(stage) / "soup"
        return self.folder(stage) / "model" / "last"

    def instances(self, source: str, target: str, cfg: PetRunConfig) -> tuple[list, list | None, dict]:
        key = (source, target)
        if key not in self._instances:
            train, facts = prepare(self.reports, cfg, source, target)
            val = prepare(self.val, cfg, source, target)[0] if self.val else None
            self._instances[key] = (train, val, facts)
        return self._instances[key]


def stage_config(run: Run, stage: Stage) -> PetRunConfig:
    """The run config of one training stage: the recipe's model and decoding, the stage's rates and budget."""
    s, r = stage.settings, run.recipe
    assert s is not None and stage.budget is not None
    start = run.weights_of(stage.start) if stage.start else None
    generate = r.generate.model_dump()
    max_source = s.max_source_len
    if run.init is not None:  # the model keeps its decoding and the input length it was trained on
        from shared.pipeline import decoding_settings

        generate = decoding_settings(run.init).model_dump()
        max_source = int(read_manifest(run.init).get("max_source_len", max_source))
    tree = {
        "model": {
            **r.model.model_dump(),
            "vocab_size": r.vocab_size,
            "pretrained": str(start) if start else None,
            "tokenizer": None if start else str(run.out / "tokenizer"),
        },
        "data": {"max_source_len": max_source, "max_target_len": s.max_target_len},
        "train": {
            "method": "direct",
            "lr": stage.lr,
            "warmup_steps": s.warmup_steps,
            "batch_size": s.batch_size,
            "max_tokens": s.max_tokens,
            "max_steps": None,
            "max_train_tokens": stage.budget.tokens,
            "max_time_s": stage.budget.seconds,
            "eval_every": s.eval_every,
            "eval_samples": r.train.eval_samples,
            "eval_gen_samples": r.train.eval_gen_samples,
            "log_every": r.train.log_every,
            "seed": s.seed,
            "threads": r.train.threads,
            "device": run.device,
        },
        "generate": generate,
        "pet": r.pet.model_dump(),
    }
    return PetRunConfig.model_validate(tree)


def start_run(
    out: str,
    reports: list[Example],
    val: list[Example] | None,
    budget: Budget,
    recipe: RecipeConfig,
    init: str | None,
    device: str,
    data_print: str,
    console: "Console",
) -> Run:
    """The run in `out`: a new folder, or the one a previous call started with these very settings."""
    folder = Path(out)
    init_path = Path(init) if init else None
    if init_path is not None:
        check_init(init_path)
    state = {
        "recipe": recipe.model_dump(mode="json"),
        "budget": budget.to_json(),
        "data": data_print,
        "init": str(init_path) if init_path else None,
    }
    saved = folder / STATE
    if saved.is_file():
        before = json.loads(saved.read_text(encoding="utf-8"))
        changed = [k for k in state if before.get(k) != state[k]]
        if changed:
            raise InputError(
                f"{folder} holds a run started with another {' and '.join(changed)}: "
                "run the same command to resume it, or choose a new --out"
            )
        console.log(f"resuming the run in {folder}")
    elif folder.exists() and any(folder.iterdir()):
        raise InputError(f"{folder} exists and holds no recipe run: choose a new --out")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(state, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    run = Run(folder, recipe, budget, reports, val, init_path, device, console)
    run.stages = plan(recipe, budget, init_path is not None)
    return run


def check_init(path: Path) -> None:
    """`--init` must be a model folder that reads findings (the recipe trains finding instances)."""
    if not is_checkpoint(path):
        raise InputError(f"--init {path}: not a model folder (needs config.json and model.safetensors)")
    kind = input_kind(path, read_manifest(path))
    if kind != InputKind.FINDING:
        raise InputError(
            f"--init {path}: the model reads {kind.value} inputs; the recipe trains one that reads findings"
        )


def run_recipe(run: Run, fit: Callable[[list[Example], Path], str]) -> Path:
    """Every stage not yet done, in order; returns the servable folder. `fit(reports, folder)` learns
    the house style into the folder (`petsum.training.house_style`)."""
    n = len(run.stages)
    t0 = time.perf_counter()
    for i, stage in enumerate(run.stages, 1):
        label = f"stage {i}/{n} {stage.name}"
        if (facts := run.done(stage.name)) is not None:
            run.console.log(f"{label}: done before ({_said(facts)})")
            continue
        run.console.log(f"{label}: {stage.budget.describe() if stage.budget else stage.kind} {_eta(run, i)}".rstrip())
        if stage.kind == "tokenizer":
            facts = _tokenizer(run)
        elif stage.kind == "train":
            facts = _train(run, stage, label)
        elif stage.kind == "average":
            facts = _average(run, stage)
        else:
            facts = _serve(run, stage, fit)
        run.mark_done(stage.name, facts)
        run.console.log(f"{label}: done ({_said(facts)})")
    run.console.log(f"recipe finished in {time.perf_counter() - t0:,.0f} s (this call)")
    return run.out


def _said(facts: dict) -> str:
    if "tokens" in facts:
        tps = facts["tokens"] / max(facts["train_s"], 1e-9)
        return f"{facts['tokens']:,} tokens in {facts['train_s']:,.0f} s, {tps:,.0f} tokens/s"
    return ", ".join(f"{k} {v}" for k, v in facts.items() if k != "finished")


def _eta(run: Run, i: int) -> str:
    """The recipe's time left, from the training stages still to run: exact for a time budget; for a
    token budget, at the speed of the training stages done so far (none yet: unknown)."""
    left = [s for s in run.stages[i - 1 :] if s.kind == "train" and run.done(s.name) is None]
    if run.budget.seconds is not None:
        return f"(about {sum(s.budget.seconds for s in left) / 60:.0f} min of training left)"  # type: ignore[union-attr]
    done = [f for s in run.stages if s.kind == "train" and (f := run.done(s.name)) is not None]
    if not done:
        return ""
    tps = sum(f["tokens"] for f in done) / max(sum(f["train_s"] for f in done), 1e-9)
    return f"(about {sum(s.budget.tokens for s in left) / tps / 60:.0f} min of training left)"  # type: ignore[union-attr]


def _tokenizer(run: Run) -> dict:
    from shared.modeling import add_missing_tokens, train_tokenizer

    adapter = PetAdapter()
    if run.init is not None:
        tok = load_tokenizer(run.init)
        add_missing_tokens(tok, adapter.extra_tokens)
    else:
        texts = [t for ex in run.reports for t in (ex.question, ex.target)]
        tok = train_tokenizer(texts, run.recipe.vocab_size, adapter.extra_tokens)
    path = run.out / "tokenizer"
    shutil.rmtree(path, ignore_errors=True)
    tok.save_pretrained(str(path))
    return {"vocab": len(tok), "from": str(run.init) if run.init else "the training reports"}


def _train(run: Run, stage: Stage, label: str) -> dict:
    from shared.pipeline import train_run

    cfg = stage_config(run, stage)
    train, val, facts = run.instances(stage.source, stage.target, cfg)
    manifest = train_run(train, PetAdapter(), cfg, run.folder(stage.name), run.console, facts, val, label=label)
    st = manifest["train"]["model"]
    return {"tokens": st["tokens"], "train_s": st["train_s"], "steps": st["steps"]}


def _average(run: Run, stage: Stage) -> dict:
    from shared.average import average_checkpoints

    soup = run.weights_of("average")
    shutil.rmtree(soup, ignore_errors=True)  # a kill inside the mean left part of it
    average_checkpoints([run.weights_of(name) for name in stage.of], soup)
    return {"averaged": list(stage.of)}


def _serve(run: Run, stage: Stage, fit: Callable[[list[Example], Path], str]) -> dict:
    """DIR becomes the model folder: the chosen weights and tokenizer, a manifest without one
    checkpoint's step and loss, then the house style fitted on the training reports."""
    src = run.weights_of(stage.of[0])
    for f in src.iterdir():
        if f.is_file() and f.name not in TRAINING_ONLY:
            shutil.copyfile(f, run.out / f.name)
    manifest = {k: v for k, v in read_manifest(src).items() if k not in CHECKPOINT_FACTS and k != "averaged"}
    trained = {s.name: run.done(s.name) for s in run.stages if s.kind == "train"}
    manifest.update(
        checkpoint="recipe",
        recipe={"budget": run.budget.to_json(), "init": str(run.init) if run.init else None, "stages": trained},
    )
    (run.out / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    said = fit(run.reports, run.out)
    return {"from": stage.of[0], "fit": said.split(";")[0]}
