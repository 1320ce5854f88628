"""`petsum evaluate --data CSV`: summarize reports with known impressions and score them."""

from __future__ import annotations

import click

from petsum.cli.options import (
    consensus_option,
    data_option,
    json_option,
    load_summarizer,
    predictions_option,
    print_metrics,
)
from petsum.evaluation.scoring import evaluate_file
from shared.cli import console, decoding_overrides, friendly_errors, serving_options


@click.command(name="evaluate")
@data_option("CSV with question (findings) and answer (impression).")
@serving_options
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate the first N reports only.")
@click.option("--heldout", is_flag=True, help="Only the reports the model's training run held out for validation.")
@click.option("--words", is_flag=True, help="Also word-level ROUGE (jieba, with the organ lexicon).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@consensus_option
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="generate.FIELD=VALUE",
    help="Try another decoding setting than the model's, e.g. generate.no_repeat_ngram_size=0 (repeatable).",
)
@click.option(
    "--normal-penalty",
    type=click.FloatRange(min=0),
    metavar="LOGITS",
    help="Try another penalty on the 'no anomaly' answer than the model's (generate.first_token_bias; 0: none).",
)
@click.option(
    "--no-repeat-ngram", type=click.IntRange(min=0), hidden=True
)  # older spelling of --set generate.no_repeat_ngram_size
@click.option("--eos-bias", type=float, hidden=True)  # older spelling of --set generate.eos_bias
@click.option(
    "--no-guard",
    is_flag=True,
    help="Research: keep outputs about organs their finding does not name (the model alone).",
)
@click.option(
    "--no-trim", is_flag=True, help="Research: keep the clauses of an output about organs its finding does not name."
)
@predictions_option
@json_option
@friendly_errors
def command(
    data: str,
    model_dir: str | None,
    backend: str,
    device: str,
    limit: int | None,
    heldout: bool,
    words: bool,
    batch_size: int,
    consensus: int | None,
    sets: tuple[str, ...],
    normal_penalty: float | None,
    no_repeat_ngram: int | None,
    eos_bias: float | None,
    no_guard: bool,
    no_trim: bool,
    pred_path: str | None,
    as_json: bool,
) -> None:
    """Summarize reports with known impressions; print BLEU, ROUGE-1/2/L, the missing and extra ratios, the
    contradiction rates of the generated and reference items, and ROUGE-L, MR and those rates on follow-up and
    first exams apart."""
    summarizer = load_summarizer(model_dir, backend, device, batch_size, consensus)
    older = {"no_repeat_ngram_size": no_repeat_ngram, "eos_bias": eos_bias}
    summarizer.tune(normal_penalty, **{**older, **decoding_overrides(sets)})
    summarizer.guard, summarizer.trim = not no_guard, not no_trim
    metrics = evaluate_file(summarizer, data, console(), limit, heldout, words, batch_size, pred_path)
    print_metrics(metrics, as_json, str(summarizer.path))
