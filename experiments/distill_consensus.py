"""Can greedy decoding give the consensus decoding's quality, if the model learns the consensus?
(Issue 38, "consensus at greedy cost": distill the consensus answers into the weights.)

1. teach: the shipped decoding (24 draws per finding, the guard's vote) answers every finding the
   summarizer asks of the training reports. One shard of the reports per process:

       python experiments/distill_consensus.py teach --model runs/exp32 --data runs/split/train.csv \\
           --shard 0/2 --out runs/distill/teach0.jsonl

   Each line: the finding, the greedy answer and the consensus answer (never printed: patient text
   stays in the file). A rerun continues where a shard's file ends.
2. train: fine-tune the model on (finding → consensus answer), from its own weights, with the
   finding stage's settings (`configs/pet/finding.yaml`) and `--set` overrides:

       python experiments/distill_consensus.py train --teach runs/distill/teach*.jsonl \\
           --init petsum/models/default --out runs/distill/run --set train.max_train_tokens=3000000

   The run folder keeps the initial model's fitted entries (item order, closing and opening lines)
   and decoding settings, so that `petsum evaluate --model runs/distill/run` scores it as a summarizer.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from pathlib import Path

CHUNK = 100  # reports per generate call: a rerun loses at most one chunk


def teach(model: Path, data: Path, shard: str, out: Path) -> None:
    from petsum.data.pairs import load_pairs
    from petsum.summarize.summarizer import Summarizer, bounded_inputs, read_sections
    from shared.generate import generate
    from shared.textio import InputError

    k, n = (int(x) for x in shard.split("/"))
    reports = [(i, p.question) for i, p in enumerate(load_pairs(data)) if i % n == k]
    done = set()
    if out.exists():
        done = {json.loads(line)["report"] for line in out.read_text(encoding="utf-8").splitlines() if line}
    s = Summarizer(model, "auto", None, "cpu", threads=1)
    greedy_cfg = s.models.generate.model_copy(update={"consensus_samples": 0})
    todo = [(i, t) for i, t in reports if i not in done]
    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", encoding="utf-8") as f:
        for c in range(0, len(todo), CHUNK):
            asked: list[tuple[int, str]] = []
            for i, text in todo[c : c + CHUNK]:
                try:
                    sections, warnings, _ = read_sections(text)
                except InputError:
                    continue
                asked += [(i, q) for _, _, qs in bounded_inputs(i, sections, s.source, warnings) for q in qs]
            questions = [q for _, q in asked]
            greedy = generate(s.models, questions, s.adapter, greedy_cfg)
            chosen = generate(s.models, questions, s.adapter, s.models.generate, s.vote, s.references)
            for (i, q), g, r in zip(asked, greedy, chosen):
                g_text = s.adapter.join([x.text for x in g.segments])
                r_text = s.adapter.join([x.text for x in r.segments])
                row = {"report": i, "finding": q, "greedy": g_text, "consensus": r_text}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            rate = (c + CHUNK) / (time.perf_counter() - start)
            print(f"shard {shard}: {min(c + CHUNK, len(todo))}/{len(todo)} reports, {rate:.1f} reports/s", flush=True)


def train(
    teach_files: list[Path], init: Path, out: Path, sets: list[str], config: Path, gold: Path | None = None
) -> None:
    from petsum.adapter import PetAdapter
    from petsum.data.instances import build_instances
    from petsum.data.pairs import load_pairs
    from petsum.training.config import PetRunConfig
    from shared.cli import run_training
    from shared.schema import Example

    rows = [json.loads(line) for f in teach_files for line in f.read_text(encoding="utf-8").splitlines() if line]
    seen: set[tuple[str, str]] = set()
    examples = []
    for r in rows:
        key = (r["finding"], r["consensus"])
        if not r["consensus"] or key in seen:
            continue
        seen.add(key)
        digest = hashlib.sha256(f"{r['report']}:{r['finding']}".encode()).hexdigest()[:16]
        examples.append(Example(digest, r["finding"], r["consensus"], group=str(r["report"])))
    changed = sum(r["greedy"] != r["consensus"] for r in rows)
    print(f"{len(rows)} findings, {len(examples)} distinct pairs, consensus differs from greedy on {changed}")
    if gold is not None:  # the radiologists' own answers beside the teacher's (γ = 1, as the default was trained)
        instances, _ = build_instances(load_pairs(gold), 1.0, source="finding")
        examples += [ex for ex in instances if (ex.question, ex.target) not in seen]
        print(f"{len(instances)} gold finding instances from {gold}; {len(examples)} training pairs in all")

    def prepare(instances, cfg):
        return instances, {"instances": "finding", "source": "finding", "distilled_from": str(init)}

    run_training(
        examples,
        PetAdapter(),
        str(out),
        "direct",
        None,
        None,
        str(config),
        (f"model.pretrained={init}", *sets),
        None,
        prepare,
        None,
        PetRunConfig,
    )
    # The run folder serves as a summarizer with the initial model's fitted entries and decoding.
    if (init / "fitted.json").is_file():
        shutil.copy(init / "fitted.json", out / "fitted.json")
    manifest = json.loads((out / "ases.json").read_text(encoding="utf-8"))
    manifest["generate"] = json.loads((init / "ases.json").read_text(encoding="utf-8"))["generate"]
    # The last weights, fully decayed: the run's own pick scores a few dozen held-out answers.
    manifest["roles"] = {"model": "model/last"}
    (out / "ases.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("teach")
    t.add_argument("--model", type=Path, required=True)
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--shard", default="0/1")
    t.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("train")
    r.add_argument("--teach", type=Path, nargs="+", required=True)
    r.add_argument("--init", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--config", type=Path, default=Path("configs/pet/finding.yaml"))
    r.add_argument("--set", dest="sets", action="append", default=[])
    r.add_argument("--gold", type=Path, help="also train on this file's own impressions (finding instances)")
    args = ap.parse_args()
    if args.cmd == "teach":
        teach(args.model, args.data, args.shard, args.out)
    else:
        train(args.teach, args.init, args.out, args.sets, args.config, args.gold)


if __name__ == "__main__":
    main()
