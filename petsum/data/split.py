"""The fixed train/validation/test split of a report collection, by report id.

A report's side depends only on its id and the seed (a hash), never on file order or on the
other rows, so the same qid lands on the same side in every copy of the data. Sides are
exactly 80/10/10 (rounded) of the rows: ids are ranked by hash and cut at those counts.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

from shared.textio import InputError, open_text

SIDES = ("train", "val", "test")
FRACTIONS = (0.8, 0.1, 0.1)


def rank_key(seed: int, qid: str) -> bytes:
    return hashlib.sha256(f"{seed}:{qid}".encode()).digest()


def assign(ids: list[str], seed: int = 42, fractions: tuple[float, float, float] = FRACTIONS) -> dict[str, str]:
    """id → side. Duplicate ids are refused: they would straddle sides."""
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"id {dup!r} occurs more than once: a split by id needs unique ids")
    order = sorted(ids, key=lambda i: rank_key(seed, i))
    n_train = round(fractions[0] * len(ids))
    n_val = round(fractions[1] * len(ids))
    return {i: ("train" if k < n_train else "val" if k < n_train + n_val else "test") for k, i in enumerate(order)}


def split_csv(path: str | Path, out: str | Path, seed: int = 42, id_column: str = "qid") -> dict:
    """Write OUT/{train,val,test}.csv (rows unchanged, in input order) and OUT/split.json."""
    with open_text(path) as f:
        reader = csv.DictReader(f)
        fields = list(reader.fieldnames or [])
        if id_column not in fields:
            raise InputError(f"{path}: no column {id_column}: the split is by report id")
        try:
            rows = list(reader)
        except csv.Error as e:
            raise InputError(f"{path}: malformed CSV at line {reader.line_num}: {e}") from None
    ids = [(row.get(id_column) or "").strip() for row in rows]
    if not all(ids):
        raise InputError(f"{path}: a row has an empty {id_column}")
    side = assign(ids, seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name in SIDES:
        chosen = [row for row, i in zip(rows, ids) if side[i] == name]
        with (out / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(chosen)
        counts[name] = len(chosen)
    ids_digest = {
        name: hashlib.sha256("\n".join(sorted(i for i in ids if side[i] == name)).encode()).hexdigest()[:16]
        for name in SIDES
    }
    facts = {
        "source": str(path),
        "seed": seed,
        "fractions": dict(zip(SIDES, FRACTIONS)),
        "id_column": id_column,
        "counts": counts,
        "ids_sha256": ids_digest,
    }
    (out / "split.json").write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    return facts
