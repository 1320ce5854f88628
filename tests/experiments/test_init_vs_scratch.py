"""experiments/init_vs_scratch.py: the hospital's reports (validation + test) split into a training
and a held-out share that never overlap, by id alone."""

import csv

from conftest import load_benchmark


def write(path, ids):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["question", "answer", "qid"])
        w.writeheader()
        w.writerows({"question": f"胸部：结节{i}。", "answer": f"1.结节{i}。", "qid": str(i)} for i in ids)


def read_ids(path):
    with open(path, encoding="utf-8", newline="") as f:
        return [row["qid"] for row in csv.DictReader(f)]


def test_hospital_split_is_disjoint_complete_and_by_id(tmp_path):
    driver = load_benchmark("init_vs_scratch")
    split = tmp_path / "split"
    split.mkdir()
    write(split / "val.csv", range(0, 300))
    write(split / "test.csv", range(300, 600))
    train, heldout = driver.hospital(split, tmp_path / "a", 0.2)
    a, b = read_ids(train), read_ids(heldout)
    assert not set(a) & set(b) and sorted(a + b, key=int) == [str(i) for i in range(600)]
    assert 80 <= len(b) <= 160  # about a fifth
    write(split / "val.csv", reversed(range(0, 300)))  # another file order: the same sides
    train2, heldout2 = driver.hospital(split, tmp_path / "b", 0.2)
    assert sorted(read_ids(heldout2)) == sorted(b)
