"""Load on `petsum serve`, on loopback: throughput and latency of single-report requests from 1, 8,
32 concurrent clients, checked for loss, duplication and mix-ups, against `petsum batch` on the
same reports (what the service costs over an offline run) and, optionally, against a server that
does not batch (what dynamic batching buys).

    python benchmarks/serve_load.py [--data ../shared/data/cpet/pet.csv] [--reports 300] [--model DIR]
        [--consensus 0] [--clients 1,8,32] [--seconds 20] [--max-batch 32] [--max-wait-ms 10]
        [--compare-max-batch 1] [--no-batch-compare] [--threads N] [--json FILE]

Starts `petsum serve` as a subprocess on a free 127.0.0.1 port and waits for /readyz. For each
concurrency, that many threads send `{"reports": [{"id": <unique>, "text": ...}]}` requests,
cycling through the first `--reports` reports, until `--seconds` have passed (requests in flight
then finish). Every request must get back exactly its own id: a request answered without its id is
lost, an id answered more than once is duplicated, an answer carrying another id is mismatched.
Non-200 answers and transport failures are errors. `petsum batch INPUT --consensus ...` on the same
reports, one process with its start-up included, gives the offline reports/s each row is
compared with. Prints the command line, then a markdown table; `--json` writes every number.
`--threads N` sets OMP_NUM_THREADS for the server and `petsum batch` (default: torch's own, one a
core): on a machine whose cores other work also uses, torch's threads wait on each other.

Loopback only; everything stops by itself (a request timeout, a bounded run per concurrency).
Report text is never printed or logged: the reports are identified by their position.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
DATA_CANDIDATES = (
    ROOT.parent / "shared" / "data" / "cpet" / "pet.csv",
    ROOT / "runs" / "split" / "test.csv",
    ROOT / "tests" / "fixtures" / "pet_toy.csv",
)
READY_TIMEOUT_S = 180  # the model loads in a few seconds; a busy machine is slower
REQUEST_TIMEOUT_S = 120  # the server's own default request timeout
STOP_TIMEOUT_S = 90  # the server drains for up to 60 s on SIGTERM


@dataclass
class Outcome:
    """One request as the client saw it."""

    latency_s: float
    status: int  # 0: a transport failure (refused, reset, timeout)
    sent: str
    got: list[str] = field(default_factory=list)  # the result ids of a 200 answer
    report_errors: int = 0  # results carrying an `error` (a report the model refused)


@dataclass
class Row:
    """One concurrency against one server: the markdown table's row."""

    clients: int
    max_batch: int
    requests: int
    reports: int
    seconds: float
    reports_per_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    errors: int
    lost: int
    duplicated: int
    mismatched: int
    report_errors: int
    ratio_vs_batch: float | None = None
    statuses: dict[str, int] = field(default_factory=dict)


def child_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment of the server and of `petsum batch`: ours, with --threads if given."""
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    return env


def free_port() -> int:
    """A port free on loopback now (bound to 0, then released for the server to take)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def load_reports(path: Path, n: int) -> list[str]:
    """The first `n` readable reports of `path` (the `question` column or field), read as `petsum
    batch` reads them; error records (undecodable, empty) are skipped."""
    from shared.records import Input, records

    out = []
    for rec in records(path, Input(column="question", id_column="qid")):
        if rec.text is not None and rec.text.strip():
            out.append(rec.text)
            if len(out) == n:
                break
    if not out:
        raise SystemExit(f"{path}: no reports in the question column")
    return out


def percentile(values: list[float], q: float) -> float:
    """The `q`-quantile (0..1) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


class Server:
    """`petsum serve` as a subprocess on a free loopback port, its log in `log_path`."""

    def __init__(self, args: argparse.Namespace, max_batch: int, log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        cmd = [sys.executable, "-m", "petsum.cli", "serve", "--host", HOST, "--port", str(self.port)]
        cmd += ["--consensus", str(args.consensus), "--max-batch", str(max_batch)]
        cmd += ["--max-wait-ms", str(args.max_wait_ms), "--max-queue", str(args.max_queue)]
        if args.model:
            cmd += ["--model", str(args.model)]
        self.cmd = cmd
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=child_env(args))

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> float:
        """Seconds until /readyz answered 200; SystemExit if the process died or took too long."""
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"petsum serve exited with {self.proc.returncode} (log: {self.log_path})")
            try:
                status, _ = request(self.port, "GET", "/readyz", None, timeout=5)
                if status == 200:
                    return time.perf_counter() - start
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"petsum serve was not ready within {timeout:g} s (log: {self.log_path})")

    def stop(self) -> int | None:
        """SIGTERM (the server drains), then SIGKILL past STOP_TIMEOUT_S; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def request(port: int, method: str, path: str, body: bytes | None, timeout: float) -> tuple[int, bytes]:
    """One HTTP request on a fresh connection: (status, body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        res = conn.getresponse()
        return res.status, res.read()
    finally:
        conn.close()


def summarize_once(port: int, rid: str, text: str) -> Outcome:
    """Send one single-report request and record what came back (never the text)."""
    body = json.dumps({"reports": [{"id": rid, "text": text}]}, ensure_ascii=False).encode("utf-8")
    start = time.perf_counter()
    try:
        status, raw = request(port, "POST", "/v1/summarize", body, timeout=REQUEST_TIMEOUT_S)
    except (OSError, http.client.HTTPException):
        return Outcome(time.perf_counter() - start, 0, rid)
    latency = time.perf_counter() - start
    out = Outcome(latency, status, rid)
    if status == 200:
        try:
            results = json.loads(raw)["results"]
            out.got = [str(r.get("id")) for r in results]
            out.report_errors = sum(1 for r in results if "error" in r)
        except (ValueError, KeyError, TypeError, AttributeError):
            out.status = -1  # a 200 whose body is not the contract's: counted as an error
    return out


def run_load(port: int, reports: list[str], clients: int, seconds: float, max_batch: int, tag: str) -> Row:
    """`clients` threads sending single-report requests for `seconds`; the checked row."""
    counter = itertools.count()
    lock = threading.Lock()
    outcomes: list[Outcome] = []
    deadline = time.perf_counter() + seconds

    def client() -> None:
        mine = []
        while time.perf_counter() < deadline:
            with lock:
                k = next(counter)
            mine.append(summarize_once(port, f"{tag}-c{clients}-{k}", reports[k % len(reports)]))
        with lock:
            outcomes.extend(mine)

    start = time.perf_counter()
    threads = [threading.Thread(target=client, name=f"client-{i}", daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + REQUEST_TIMEOUT_S + 10)
    elapsed = time.perf_counter() - start
    return check(outcomes, clients, max_batch, elapsed)


def check(outcomes: list[Outcome], clients: int, max_batch: int, elapsed: float) -> Row:
    """The row for `outcomes`: every 200 answer must carry exactly its request's id, once."""
    seen: dict[str, int] = {}
    errors = lost = mismatched = report_errors = 0
    statuses: dict[str, int] = {}
    ok_latencies = []
    for o in outcomes:
        statuses[str(o.status)] = statuses.get(str(o.status), 0) + 1
        if o.status != 200:
            errors += 1
            continue
        ok_latencies.append(o.latency_s)
        report_errors += o.report_errors
        if o.sent not in o.got:
            lost += 1
        if any(g != o.sent for g in o.got):
            mismatched += 1
        for g in o.got:
            seen[g] = seen.get(g, 0) + 1
    duplicated = sum(1 for n in seen.values() if n > 1)
    answered = sum(1 for o in outcomes if o.status == 200)
    return Row(
        clients=clients,
        max_batch=max_batch,
        requests=len(outcomes),
        reports=answered,
        seconds=round(elapsed, 3),
        reports_per_s=answered / elapsed if elapsed > 0 else 0.0,
        p50_ms=percentile(ok_latencies, 0.5) * 1000,
        p99_ms=percentile(ok_latencies, 0.99) * 1000,
        mean_ms=statistics.fmean(ok_latencies) * 1000 if ok_latencies else 0.0,
        errors=errors,
        lost=lost,
        duplicated=duplicated,
        mismatched=mismatched,
        report_errors=report_errors,
        statuses=statuses,
    )


def batch_rate(args: argparse.Namespace, reports: list[str], tmp: Path) -> dict:
    """`petsum batch` over the same reports, one process, start-up included: reports/s."""
    source = tmp / "reports.jsonl"
    with open(source, "w", encoding="utf-8") as f:
        for k, text in enumerate(reports):
            f.write(json.dumps({"qid": str(k), "question": text}, ensure_ascii=False) + "\n")
    out = tmp / "batch.jsonl"
    cmd = [sys.executable, "-m", "petsum.cli", "batch", str(source), "--out", str(out)]
    cmd += ["--consensus", str(args.consensus)]
    if args.model:
        cmd += ["--model", str(args.model)]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=3600, env=child_env(args)
    )
    seconds = time.perf_counter() - start
    source.unlink()  # the reports' text does not outlive the run
    written = failed = 0
    if out.exists():
        for line in out.read_text(encoding="utf-8").splitlines():
            written += 1
            failed += "error" in json.loads(line)
        out.unlink()
    if proc.returncode not in (0, 3):  # 3: some record failed, the rest were written
        raise SystemExit(f"petsum batch exited with {proc.returncode}")
    return {
        "reports": written,
        "failed": failed,
        "seconds": round(seconds, 3),
        "reports_per_s": written / seconds,
        "exit_code": proc.returncode,
    }


def markdown(rows: list[Row]) -> str:
    head = (
        "| clients | max_batch | requests | reports/s | p50 ms | p99 ms | errors | lost | duplicated | ratio vs batch |"
    )
    lines = [head, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = f"{r.ratio_vs_batch:.2f}" if r.ratio_vs_batch is not None else "–"
        lines.append(
            f"| {r.clients} | {r.max_batch} | {r.requests} | {r.reports_per_s:.1f} | {r.p50_ms:.0f} | {r.p99_ms:.0f} "
            f"| {r.errors} | {r.lost} | {r.duplicated} | {ratio} |"
        )
    return "\n".join(lines)


def parse_clients(value: str) -> list[int]:
    try:
        clients = [int(c) for c in value.split(",") if c.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected numbers separated by commas, e.g. 1,8,32") from None
    if not clients or min(clients) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: every concurrency must be at least 1")
    return clients


def default_data() -> Path:
    return next((p for p in DATA_CANDIDATES if p.is_file()), DATA_CANDIDATES[-1])


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; the JSON document it writes with --json."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=default_data(), help="CSV or JSONL with a question column")
    ap.add_argument("--reports", type=int, default=300, help="the first N reports, cycled through")
    ap.add_argument("--model", type=Path, help="model folder (default: the shipped model)")
    ap.add_argument("--consensus", type=int, default=0, help="draws per finding (0: greedy)")
    ap.add_argument("--clients", type=parse_clients, default=[1, 8, 32], help="concurrencies, e.g. 1,8,32")
    ap.add_argument("--seconds", type=float, default=20, help="load time per concurrency")
    ap.add_argument("--max-batch", type=int, default=32)
    ap.add_argument("--max-wait-ms", type=float, default=10)
    ap.add_argument("--max-queue", type=int, default=1024)
    ap.add_argument(
        "--compare-max-batch",
        type=int,
        help="also run the concurrencies above 1 against a server with this --max-batch (1: no batching)",
    )
    ap.add_argument("--no-batch-compare", action="store_true", help="skip the `petsum batch` run")
    ap.add_argument("--threads", type=int, help="OMP_NUM_THREADS for the server and petsum batch (default: inherited)")
    ap.add_argument("--json", type=Path, help="write every number here")
    args = ap.parse_args(argv)
    if args.reports < 1 or args.seconds <= 0:
        ap.error("--reports must be at least 1 and --seconds above 0")

    command = shlex.join([sys.executable, *(sys.argv if argv is None else [__file__, *argv])])
    print(f"`{command}`\n", flush=True)
    reports = load_reports(args.data, args.reports)
    load = os.getloadavg()
    print(
        f"{len(reports)} reports from {args.data.name}; {os.cpu_count()} CPUs, load average {load[0]:.2f}\n", flush=True
    )

    doc: dict = {
        "command": command,
        "data": str(args.data),
        "reports": len(reports),
        "model": str(args.model) if args.model else "default",
        "consensus": args.consensus,
        "max_wait_ms": args.max_wait_ms,
        "threads": args.threads or os.environ.get("OMP_NUM_THREADS") or "torch default",
        "seconds": args.seconds,
        "cpus": os.cpu_count(),
        "load_average_before": round(load[0], 2),
        "rows": [],
    }
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="serve_load-") as tmp_name:
        tmp = Path(tmp_name)
        runs = [(args.max_batch, args.clients)]
        if args.compare_max_batch is not None:
            runs.append((args.compare_max_batch, [c for c in args.clients if c > 1]))
        for max_batch, clients in runs:
            if not clients:
                continue
            server = Server(args, max_batch, tmp / f"server-{max_batch}.log")
            try:
                ready_s = server.wait_ready()
                print(f"server (max_batch {max_batch}) ready in {ready_s:.1f} s", flush=True)
                for k in range(min(2, len(reports))):  # warm-up, not measured
                    summarize_once(server.port, f"warmup-{max_batch}-{k}", reports[k])
                for n in clients:
                    row = run_load(server.port, reports, n, args.seconds, max_batch, tag=f"mb{max_batch}")
                    rows.append(row)
                    print(
                        f"  {n} clients: {row.reports_per_s:.1f} reports/s, p50 {row.p50_ms:.0f} ms, "
                        f"errors {row.errors}, lost {row.lost}, duplicated {row.duplicated}",
                        flush=True,
                    )
            finally:
                doc.setdefault("server_exit_codes", {})[str(max_batch)] = server.stop()
        if not args.no_batch_compare:
            doc["batch"] = batch_rate(args, reports, tmp)
            print(f"petsum batch: {doc['batch']['reports_per_s']:.1f} reports/s, start-up included", flush=True)

    if "batch" in doc:
        for r in rows:
            r.ratio_vs_batch = r.reports_per_s / doc["batch"]["reports_per_s"]
    if args.compare_max_batch is not None:
        base = {r.clients: r for r in rows if r.max_batch == args.compare_max_batch}
        doc["batching_gain"] = {
            str(r.clients): r.reports_per_s / base[r.clients].reports_per_s
            for r in rows
            if r.max_batch == args.max_batch and r.clients in base and base[r.clients].reports_per_s > 0
        }
    doc["rows"] = [asdict(r) for r in rows]
    doc["load_average_after"] = round(os.getloadavg()[0], 2)  # the machine's noise: others' work counts here
    print()
    print(markdown(rows))
    print(f"\nload average (1 min): {doc['load_average_before']:.2f} before, {doc['load_average_after']:.2f} after")
    if "batch" in doc:
        b = doc["batch"]
        print(f"petsum batch: {b['reports']} reports in {b['seconds']:.1f} s = {b['reports_per_s']:.1f} reports/s")
    for clients, gain in doc.get("batching_gain", {}).items():
        print(
            f"batching gain at {clients} clients (max_batch {args.max_batch} / {args.compare_max_batch}): {gain:.2f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc


if __name__ == "__main__":
    doc = main()
    bad = any(r["errors"] or r["lost"] or r["duplicated"] or r["mismatched"] for r in doc["rows"])
    sys.exit(1 if bad else 0)
