"""benchmarks/item_order.py: the oracle and learned item orders the README's "What ROUGE-L
misses" measures (numbered items move, the closing line stays last)."""

import importlib.util
import sys

import pytest

from conftest import REPO

IMPRESSION = "1、肝囊肿。\n2、胆囊结石。\n3、左肺上叶结节，考虑肺癌。\n余躯干PET/CT检查未见明显异常代谢征象。"


@pytest.fixture(scope="module")
def order():
    spec = importlib.util.spec_from_file_location("item_order", REPO / "benchmarks" / "item_order.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["item_order"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_the_oracle_puts_items_in_the_reference_order(order):
    ref = "1、左肺上叶结节，肺癌可能。 2、肝囊肿。"
    assert order.reorder(IMPRESSION, order.oracle_key(ref)).split("\n") == [
        "1、左肺上叶结节，考虑肺癌。", "2、肝囊肿。", "3、胆囊结石。",  # 胆囊结石 is not in the reference: last
        "余躯干PET/CT检查未见明显异常代谢征象。",
    ]


def test_the_learned_order_follows_the_training_references(order):
    refs = ["1、右肺癌伴纵隔淋巴结转移。 2、肝囊肿。 3、胆囊结石。"] * 5 + ["1. 肺癌。2. 胆囊结石。"] * 3
    learned = order.PositionRegressor(refs, n_grams=50, ridge=1.0)
    assert learned.n_items == 21
    assert order.reorder(IMPRESSION, learned).split("\n")[:3] == ["1、左肺上叶结节，考虑肺癌。", "2、肝囊肿。", "3、胆囊结石。"]
    assert order.reorder("1、肝囊肿。\n余躯干PET/CT检查未见明显异常代谢征象。", learned).startswith("1、肝囊肿。")  # one item: as is
