"""experiments/region_calls.py: per-region 'no anomaly' answers against the reference, the count
behind the README's analysis of where missed organs come from."""

import pytest
from conftest import load_benchmark


def _module():
    return load_benchmark("region_calls")


@pytest.mark.slow
def test_counts_add_up_and_follow_the_normal_bias(pet_run, pet_csv):
    from petsum.data.instances import NORMAL
    from petsum.data.pairs import load_pairs
    from petsum.summarize.summarizer import Summarizer

    region_calls = _module().region_calls
    reports = load_pairs(pet_csv)[:6]
    summarizer = Summarizer(pet_run)
    counts = region_calls(summarizer, reports)
    assert sum(c["abnormal"] + c["normal"] for c in counts.values()) > 0
    for c in counts.values():
        assert c["called_normal"] + c["reported"] == c["abnormal"] and c["named"] <= c["reported"]
        assert c["false_call"] <= c["normal"]
    summarizer.models.generate = summarizer.models.generate.model_copy(update={"first_token_bias": {NORMAL: 1e4}})
    always_normal = region_calls(summarizer, reports)
    assert all(c["called_normal"] == c["abnormal"] and c["false_call"] == 0 for c in always_normal.values())
