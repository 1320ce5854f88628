"""petsum.assemble.pointer: the item order that reads all the list's items at once."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from petsum.assemble.impression import assemble
from petsum.assemble.order import ItemOrder, Source
from petsum.assemble.order import fit as fit_pairs
from petsum.assemble.pointer import KIND, PointerOrder, _bags, _batch, _names, _Net, fit, read_item_order

# A house that writes the node before the cyst, unless the list has a tumour: then the cyst, the
# node and the tumour. Which of two items comes first depends on a third.
HOUSE = [["纵隔淋巴结。", "肝囊肿。"], ["肝囊肿。", "纵隔淋巴结。", "胰头癌。"]] * 30


def _as_order(net, features: dict[str, int], heads: int) -> PointerOrder:
    state = {k: v.detach().double().numpy() for k, v in net.state_dict().items()}
    pad, d = len(features), state["start"].shape[0]
    return PointerOrder(
        features,
        state["words.weight"][:pad],
        state["said.weight"][:pad],
        {n: state[n] for n in _names(d, len(net.enc.layers))},
        heads,
    )


def test_the_numpy_order_computes_what_the_torch_network_trained():
    # `fit` trains a torch module; `PointerOrder` runs its weights in numpy (no torch where a
    # model is deployed). Their next-item losses over one written order must agree.
    torch.manual_seed(3)
    features = {
        f: i
        for i, f in enumerate(
            [*"肝肺癌囊肿淋巴结", "<suspicion 0>", "<suspicion 2>", "<region chest>", "<place 0>", "<place 1>"]
        )
    }
    net = _Net(len(features), 8, 2, 2).eval()
    order = _as_order(net, features, 2)
    items = ["肝囊肿。", "肺癌。", "淋巴结肿。"]
    sources = [
        Source("abdomen", "肝脏见低密度灶。", 2),
        Source("chest", "右肺结节，SUVmax:6.0。", 0),
        Source("chest", "淋巴结。", 1),
    ]
    words, extra = _bags(features, items, sources)
    with torch.no_grad():
        loss, steps = net.loss(*_batch([(words, extra, [1, 2, 0])], len(features)))
    h = order.encode(items, sources)
    first = (h @ order.weights["first.weight"].T)[:, 0] + order.weights["first.bias"][0]
    prev, state, placed, total = order.weights["start"][None], np.zeros((1, 8)), [], 0.0
    for item in [1, 2]:
        scores, state = order._step(prev, state, h, first)
        left = [j for j in range(3) if j not in placed]
        row = scores[0, left]
        total -= row[left.index(item)] - row.max() - np.log(np.exp(row - row.max()).sum())
        placed.append(item)
        prev = h[item][None]
    assert steps == 2 and total == pytest.approx(float(loss), abs=1e-5)


@pytest.mark.slow  # fits an item order: seconds to a minute on a busy 2-core machine
def test_which_comes_first_can_depend_on_what_else_the_list_holds():
    pointer, n = fit(HOUSE, n_grams=50, d=16, heads=2, epochs=60, lr=0.01)
    assert n == 150
    assert pointer.arrange(["肝囊肿。", "纵隔淋巴结。"]) == HOUSE[0]
    assert pointer.arrange(["纵隔淋巴结。", "肝囊肿。", "胰头癌。"]) == HOUSE[1]
    pairs, _ = fit_pairs(HOUSE, n_grams=50, rank=4, epochs=60, lr=0.05)
    # the pair model scores the first item from the item alone: it cannot write both lists
    assert [pairs.arrange(list(reversed(h))) for h in HOUSE[:2]] != HOUSE[:2]
    assert pointer.arrange(["肝囊肿。"]) == ["肝囊肿。"] and pointer.arrange([]) == []
    with pytest.raises(ValueError, match="two or more items"):
        fit([["肝囊肿。"]])


@pytest.mark.slow  # fits an item order: seconds to a minute on a busy 2-core machine
def test_context_reaches_the_pointer_order_through_the_assembler():
    # the house writes first whichever finding has the hotter lesion: only the SUVmax rank tells
    def source(region: str, suv: float, k: int) -> Source:
        return Source(region, f"见结节，SUVmax:{suv}。", k)

    lists = [
        (["肝结节。", "肺结节。"], [source("abdomen", 9.0, 1), source("chest", 3.0, 0)]),
        (["肺结节。", "肝结节。"], [source("chest", 8.0, 0), source("abdomen", 2.0, 1)]),
    ] * 30
    order, _ = fit([i for i, _ in lists], [s for _, s in lists], n_grams=20, d=16, heads=2, epochs=40, lr=0.01)
    assert "<suv rank 0>" in order.features
    outputs = [("chest", "肺结节。"), ("abdomen", "未见明显异常。"), ("abdomen", "肝结节。")]
    hot_liver = [
        Source("chest", "SUVmax:2.0。", 0),
        Source("abdomen", "脾脏未见异常。", 1),
        Source("abdomen", "SUVmax:6.0。", 2),
    ]
    hot_lung = [Source("chest", "SUVmax:6.0。", 0), hot_liver[1], Source("abdomen", "SUVmax:2.0。", 2)]
    assert assemble(outputs, {"chest", "abdomen"}, order, None, hot_liver).split("\n")[:2] == [
        "1、肝结节。",
        "2、肺结节。",
    ]
    assert assemble(outputs, {"chest", "abdomen"}, order, None, hot_lung).split("\n")[:2] == [
        "1、肺结节。",
        "2、肝结节。",
    ]
    with pytest.raises(ValueError, match="2 items but 1 sources"):
        order.arrange(["肺结节。", "肝结节。"], hot_liver[:1])
    with pytest.raises(ValueError, match="one Source per item"):
        fit([i for i, _ in lists], [s for _, s in lists][:-1])


def test_a_pointer_order_survives_json_and_bad_entries_say_what_is_wrong():
    order, _ = fit(HOUSE, n_grams=50, d=16, heads=2, epochs=5)
    stored = json.loads(json.dumps(order.to_json(), ensure_ascii=False))
    again = read_item_order(stored)
    assert (
        isinstance(again, PointerOrder)
        and stored["kind"] == KIND
        and (again.beam, again.temperature, again.layers) == (16, 2.0, 2)
    )
    items = ["纵隔淋巴结。", "肝囊肿。", "胰头癌。"]
    assert again.arrange(items) == order.arrange(items)
    assert np.abs(again.encode(items) - order.encode(items)).max() < 1e-5  # float32 kept
    assert again.to_json() == stored
    assert isinstance(
        read_item_order(fit_pairs(HOUSE, n_grams=50, epochs=1)[0].to_json()), ItemOrder
    )  # the pair model still reads
    with pytest.raises(ValueError, match="numbers in its tables"):
        PointerOrder.from_json({**stored, "d": 8})
    with pytest.raises(ValueError, match="multiple of heads"):
        PointerOrder.from_json({**stored, "heads": 3})
    with pytest.raises(ValueError, match="beam 0"):
        PointerOrder.from_json({**stored, "beam": 0})
    with pytest.raises(ValueError, match="layers 0"):
        PointerOrder.from_json({**stored, "layers": 0})
    with pytest.raises(ValueError, match="kind"):
        PointerOrder.from_json({**stored, "kind": "pairs"})
    with pytest.raises(ValueError, match="multiple of heads"):
        fit(HOUSE, d=16, heads=3)
    top = replace(again, temperature=0.0)  # no vote: the most probable order
    assert sorted(top.permutation(items)) == [0, 1, 2]
