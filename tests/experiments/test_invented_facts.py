"""experiments/invented_facts.py: numbers and sides an impression states that its report does not give."""

from conftest import load_benchmark

REPORT = "右肾见类圆形低密度影，无放射性摄取。胸11椎体骨质破坏，放射性摄取增高，SUVmax6.2。"


def test_counts_invented_numbers_and_sides_but_not_item_numbers():
    facts = load_benchmark("invented_facts")
    texts = [
        "1、右肾囊肿。\n2、胸11椎体骨质破坏，考虑转移。",  # all given: item numbers do not count
        "1、左肾囊肿。\n2、与2019-09-08 PET/CT检查比较，胸1111椎体骨质破坏。",
        "１、左肾囊肿；双肾小结石。",  # full-width item number, normalized like the report
    ]
    assert facts.count(texts, [REPORT] * 3) == {
        "impressions": 3,
        "with an invented number": 1,
        "with an invented side": 2,
        "invented sides": 2,
    }
