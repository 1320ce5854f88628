"""The settings of `petsum train`'s recipe (`recipe.yaml` beside this module): one section per stage.

A stage's `share` is its fixed part of the whole budget, in tokens or in seconds alike; the
continuations run only from `continuation.min_tokens` / `min_seconds` up (below, their share goes to
the finding stage), because they paid only on long runs. Validated like a run config: unknown
fields are errors, every number is bounded.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from petsum.training.config import PetSection
from shared.config import GenerateConfig, ModelConfig, Strict

RECIPE = Path(__file__).with_name("recipe.yaml")


class Settings(Strict):
    warmup_steps: int = Field(200, ge=0)
    batch_size: int = Field(64, ge=1, le=4096)
    max_tokens: int = Field(4096, ge=16, description="most padded tokens in a batch")
    max_source_len: int = Field(128, ge=8, le=8192)
    max_target_len: int = Field(64, ge=4, le=8192)
    eval_every: int = Field(500, ge=1, description="steps between validations; each also saves the resumable state")
    seed: int = 42


class StageSection(Settings):
    share: float = Field(gt=0, le=1, description="the stage's part of the budget")
    lr: float = Field(gt=0, le=1)


class InitSection(Settings):
    lr: float = Field(gt=0, le=1)


class ContinuationSection(Settings):
    share: float = Field(gt=0, le=1, description="all the continuations' part of the budget, split evenly")
    runs: list[float] = Field(
        [2e-4, 3e-4], min_length=1, max_length=8, description="one continuation per learning rate, then averaged"
    )
    min_tokens: int = Field(20_000_000, ge=0, description="smallest token budget with continuations")
    min_seconds: float = Field(8000.0, ge=0, le=30 * 24 * 3600, description="smallest time budget with continuations")


class FitSection(Strict):
    kind: str = Field("pointer", pattern="^(pointer|pairs)$")
    epochs: int | None = Field(None, ge=1, le=1000)
    grams: int = Field(3000, ge=1, le=100_000)


class TrainSection(Strict):
    eval_samples: int = Field(512, ge=1)
    eval_gen_samples: int = Field(32, ge=0)
    log_every: int = Field(10, ge=1)
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: torch's choice)")


class RecipeConfig(Strict):
    tokens: int = Field(
        81_900_000, ge=1, description="the budget when neither --time-budget nor --token-budget is given"
    )
    vocab_size: int = Field(4000, ge=64, le=1_000_000)
    model: ModelConfig = ModelConfig()
    pet: PetSection = PetSection()
    train: TrainSection = TrainSection()
    generate: GenerateConfig = GenerateConfig()
    warmup: StageSection
    finding: StageSection
    init: InitSection = Field(description="the finding stage's settings when --init starts from a trained model")
    continuation: ContinuationSection
    fit: FitSection = FitSection()

    @model_validator(mode="after")
    def _shares(self) -> "RecipeConfig":
        total = self.warmup.share + self.finding.share + self.continuation.share
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"warmup, finding and continuation shares must add up to 1 (they add up to {total:g})")
        return self
