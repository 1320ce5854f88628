"""experiments/item_order.py: the oracle and learned item orders the README's "What ROUGE-L
misses" measures (numbered items move, the closing line stays last)."""

import pytest
from conftest import load_benchmark

IMPRESSION = "1、肝囊肿。\n2、胆囊结石。\n3、左肺上叶结节，考虑肺癌。\n余躯干PET/CT检查未见明显异常代谢征象。"


@pytest.fixture(scope="module")
def order():
    return load_benchmark("item_order")


def test_the_oracle_puts_items_in_the_reference_order(order):
    ref = "1、左肺上叶结节，肺癌可能。 2、肝囊肿。"
    assert order.reorder(IMPRESSION, order.oracle_order(ref)).split("\n") == [
        "1、左肺上叶结节，考虑肺癌。",
        "2、肝囊肿。",
        "3、胆囊结石。",  # 胆囊结石 is not in the reference: last
        "余躯干PET/CT检查未见明显异常代谢征象。",
    ]


@pytest.mark.slow  # fits an item order: seconds to a minute on a busy 2-core machine
def test_the_learned_order_reorders_and_keeps_a_single_item(order):
    from petsum.assemble.order import fit, reference_items

    learned, _ = fit(
        [reference_items("1、左肺上叶结节，考虑肺癌。  2、肝囊肿。  3、胆囊结石。")] * 5,
        n_grams=200,
        rank=4,
        epochs=30,
        lr=0.05,
    )
    key = learned.arrange
    assert order.reorder(IMPRESSION, key).split("\n")[:3] == [
        "1、左肺上叶结节，考虑肺癌。",
        "2、肝囊肿。",
        "3、胆囊结石。",
    ]
    assert order.reorder("1、肝囊肿。\n余躯干PET/CT检查未见明显异常代谢征象。", key).startswith("1、肝囊肿。")


def test_the_noisy_oracle_swaps_neighbours_only_as_often_as_asked(order):
    ref = "1、左肺上叶结节，肺癌可能。 2、肝囊肿。 3、胆囊结石。"
    exact = order.reorder(IMPRESSION, order.oracle_order(ref))
    assert order.reorder(IMPRESSION, order.noisy_order(ref, 0.0, seed=1)) == exact
    swapped = order.reorder(IMPRESSION, order.noisy_order(ref, 1.0, seed=1)).split("\n")
    # p=1: the first pair swaps, then the item now second swaps with the third
    assert swapped[:3] == ["1、肝囊肿。", "2、胆囊结石。", "3、左肺上叶结节，考虑肺癌。"]


def test_reorder_keeps_an_opening_line_first(order):
    impression = (
        "与前次PET/CT检查比较：\n1、肝囊肿。\n2、左肺上叶结节，较前增大。\n余躯干PET/CT检查未见明显异常代谢征象。"
    )
    assert order.reorder(impression, lambda items: items[::-1]).split("\n") == [
        "与前次PET/CT检查比较：",
        "1、左肺上叶结节，较前增大。",
        "2、肝囊肿。",
        "余躯干PET/CT检查未见明显异常代谢征象。",
    ]
