"""The recipe's budget and plan (petsum.training.budget, petsum.training.recipe.plan): pure rules."""

from __future__ import annotations

import pytest
from conftest import REPO

from petsum.training.budget import Budget, parse_duration
from petsum.training.recipe import load_recipe, plan
from shared.config import ConfigError, load_config
from shared.textio import InputError

TOY = str(REPO / "configs" / "recipes" / "toy.yaml")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("4h", 14400), ("1h30m", 5400), ("2d", 172800), ("45", 45)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "30 minutes", "-5m", "0s", "m", "31d", "1.5.2h"])
def test_bad_duration_is_one_line_error(text):
    with pytest.raises(InputError) as info:
        parse_duration(text)
    assert "\n" not in str(info.value) and "--time-budget" in str(info.value)


def test_budget_is_one_unit():
    with pytest.raises(InputError):
        Budget()
    with pytest.raises(InputError):
        Budget(tokens=10, seconds=1.0)
    assert Budget(tokens=1000).share(0.25) == Budget(tokens=250)
    assert Budget(seconds=1800).share(0.5) == Budget(seconds=900)
    assert Budget(tokens=3).share(0.01) == Budget(tokens=1)  # never a stage with nothing to train on


def shares(stages, budget_total: float) -> dict[str, float]:
    return {
        s.name: (s.budget.tokens if s.budget.tokens is not None else s.budget.seconds) / budget_total
        for s in stages
        if s.budget is not None
    }


def test_shipped_recipe_at_the_full_budget_has_every_stage():
    recipe = load_recipe(None, ())
    stages = plan(recipe, Budget(tokens=recipe.tokens), init=False)
    assert [s.name for s in stages] == [
        "tokenizer",
        "warmup",
        "finding",
        "continue-1",
        "continue-2",
        "average",
        "model",
    ]
    got = shares(stages, recipe.tokens)
    assert sum(got.values()) == pytest.approx(1.0, abs=1e-6)  # every token of the budget is given out
    assert got["warmup"] == pytest.approx(recipe.warmup.share, abs=1e-6)
    warmup = stages[1]
    assert (warmup.source, warmup.target, warmup.start) == ("salient", "copy", None)
    assert stages[2].start == "warmup" and stages[3].start == stages[4].start == "finding"
    assert stages[3].settings.seed != stages[4].settings.seed  # two continuations, two seeds
    assert stages[-1].of == ("average",)


def test_short_budgets_give_the_continuations_share_to_the_finding_stage():
    recipe = load_recipe(None, ())
    stages = plan(recipe, Budget(seconds=1800), init=False)
    assert [s.name for s in stages] == ["tokenizer", "warmup", "finding", "model"]
    got = shares(stages, 1800)
    assert got["finding"] == pytest.approx(1 - recipe.warmup.share)
    assert stages[-1].of == ("finding",)


def test_init_skips_the_warmup_and_starts_from_the_model():
    recipe = load_recipe(None, ())
    stages = plan(recipe, Budget(seconds=600), init=True)
    assert [s.name for s in stages] == ["tokenizer", "finding", "model"]
    assert stages[1].start == "init" and stages[1].lr == recipe.init.lr
    assert shares(stages, 600)["finding"] == pytest.approx(1.0)


def test_time_and_token_thresholds_of_the_continuations():
    recipe = load_recipe(None, ())
    c = recipe.continuation
    assert "continue-1" in [s.name for s in plan(recipe, Budget(tokens=c.min_tokens), False)]
    assert "continue-1" not in [s.name for s in plan(recipe, Budget(tokens=c.min_tokens - 1), False)]
    assert "continue-1" in [s.name for s in plan(recipe, Budget(seconds=c.min_seconds), False)]


def test_overrides_and_bad_recipes():
    assert load_recipe(TOY, ("finding.lr=0.01",)).finding.lr == 0.01
    with pytest.raises(ConfigError, match="unknown field"):
        load_recipe(None, ("finding.learning_rate=0.01",))
    with pytest.raises(ConfigError, match="add up to 1"):
        load_recipe(None, ("warmup.share=0.5",))
    from petsum.training.recipe_config import RecipeConfig

    with pytest.raises(ConfigError):
        load_config(REPO / "configs" / "pet" / "compare.yaml", schema=RecipeConfig)  # a run config is no recipe
