"""`petsum serve` as a real process, as a hospital system meets it: HTTP over loopback, the shipped
model decoding greedily. What the in-process tests (test_app.py) cannot show lives here: ids under
concurrent load, clients that hang up, draining on SIGTERM, the log as written to disk, the API
key. Two server processes serve the module (one shared, one that is stopped), to stay well under
a minute on 2 busy cores.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import FIXTURES, GOOD, LIVER, NORMAL_HEAD, PANCREAS, REPO, load_benchmark

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")

pytestmark = pytest.mark.slow  # runs the shipped model in a subprocess

HOST = "127.0.0.1"
REPORT = (REPO / "examples" / "report.txt").read_text(encoding="utf-8")
PARAGRAPH = (REPO / "examples" / "report_paragraph.txt").read_text(encoding="utf-8")
NEWLINES = (REPO / "examples" / "report_newlines.txt").read_text(encoding="utf-8")
# Short reports for the load test (a few sections each): the point is ids under concurrency, not decoding time.
SHORT_REPORTS = [GOOD, LIVER, PANCREAS + "      " + NORMAL_HEAD, NORMAL_HEAD + "      " + LIVER]
BAD = "No abnormal FDG uptake in the liver."  # not Chinese: an error entry, never a failed request
KEY = "0123456789abcdef" * 2  # 32 characters
AUTH = {"Authorization": f"Bearer {KEY}"}
READY_S = 90  # the model loads in about 5 s; a busy machine is slower
MAX_REPORT_CHARS = 20_000  # petsum.serve.settings.MAX_REPORT_CHARS, the default limit


# --- the server process ---------------------------------------------------------------------


def free_port() -> int:
    """A loopback port free now: bound to 0, released for the server to take."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A `petsum serve` subprocess, its stdout and stderr in `log`."""

    proc: subprocess.Popen
    port: int
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and the exit code (SIGKILL, and a failed test, past `timeout`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"petsum serve did not exit within {timeout:g} s of SIGTERM") from None


def launch_server(folder: Path, *options: str) -> Server:
    """Start `petsum serve --consensus 0 OPTIONS` on a free port, its output in a file of `folder`."""
    port = free_port()
    log = folder / f"serve-{port}.log"
    cmd = [sys.executable, "-m", "petsum.cli", "serve", "--host", HOST, "--port", str(port), "--consensus", "0"]
    # One torch thread: these tests check behaviour, and on 2 shared cores torch's hand-offs cost more than they give.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen([*cmd, *options], cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)
    return Server(proc, port, log)


def wait_ready(server: Server) -> Server:
    """`server` once its /readyz says 200 (the model is loaded); a failed test if it exits or takes too long."""
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"petsum serve exited with {server.proc.returncode}:\n{server.text()[-2000:]}")
        try:
            if call(server, "GET", "/readyz")[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise AssertionError(f"petsum serve was not ready within {READY_S} s")


def call(
    server: Server,
    method: str,
    path: str,
    body: dict | bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> tuple[int, dict | None]:
    """One request on a fresh connection: (status, the JSON body or None)."""
    if isinstance(body, dict):
        body = json.dumps(body, ensure_ascii=False).encode("utf-8")
    conn = http.client.HTTPConnection(HOST, server.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        res = conn.getresponse()
        raw = res.read()
    finally:
        conn.close()
    try:
        return res.status, json.loads(raw)
    except ValueError:
        return res.status, None


def reports_body(ids: list[str], texts: list[str]) -> dict:
    return {"reports": [{"id": i, "text": t} for i, t in zip(ids, texts)]}


def raw_post(server: Server, body: bytes, headers: dict[str, str], declared: int | None = None) -> socket.socket:
    """A POST /v1/summarize written on a raw socket (for a client that hangs up), left open."""
    head = [
        "POST /v1/summarize HTTP/1.1",
        f"Host: {HOST}:{server.port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body) if declared is None else declared}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    sock = socket.create_connection((HOST, server.port), timeout=10)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body)
    return sock


def wait_for_log(server: Server, needle: str, count: int = 1, timeout: float = 5) -> bool:
    """Whether the log holds `needle` at least `count` times within `timeout` (lines are flushed
    as written, so a running server's log can be read)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.text().count(needle) >= count:
            return True
        time.sleep(0.1)
    return server.text().count(needle) >= count


@pytest.fixture(scope="module")
def drain_server(tmp_path_factory) -> Server:
    """The server the `drained` fixture stops, launched along with `server` (the two models load
    at once: a few seconds less on 2 cores); its batch waits 1.5 s. Stopped here if no test used it."""
    srv = launch_server(tmp_path_factory.mktemp("drain"), "--max-wait-ms", "1500")
    yield srv
    if srv.proc.poll() is None:
        srv.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, drain_server) -> Server:
    """One server for the tests that leave it running: an API key on /v1; a wait of 800 ms for
    a batch (so that a request waits in the batcher long enough for its client to hang up) that
    fills at 8 reports (so that concurrent load does not wait that long)."""
    folder = tmp_path_factory.mktemp("serve")
    key_file = folder / "key.txt"
    key_file.write_text(KEY + "\n", encoding="utf-8")
    srv = launch_server(folder, "--api-key-file", str(key_file), "--max-wait-ms", "800", "--max-batch", "8")
    try:
        yield wait_ready(srv)
    finally:
        srv.stop()


# --- load -----------------------------------------------------------------------------------


def test_concurrent_requests_get_their_own_ids_in_order(server):
    """8 clients × 6 requests of 1 to 3 reports, some with a non-Chinese report: every request is
    answered 200 with exactly its ids in its order, the bad report an error entry in its place."""

    def client(t: int) -> list[tuple[list[str], int, dict | None, list[int]]]:
        answers = []
        for k in range(6):
            n = 1 + (t + k) % 3
            ids = [f"t{t}-q{k}-r{j}" for j in range(n)]
            texts = [SHORT_REPORTS[(t + k + j) % len(SHORT_REPORTS)] for j in range(n)]
            bad = [j for j in range(n) if (t * 6 + k + j) % 7 == 3]
            for j in bad:
                texts[j] = BAD
            status, got = call(server, "POST", "/v1/summarize", reports_body(ids, texts), AUTH)
            answers.append((ids, status, got, bad))
        return answers

    with ThreadPoolExecutor(8) as pool:
        answers = [a for part in pool.map(client, range(8)) for a in part]
    assert len(answers) == 48
    seen: list[str] = []
    bad_seen = 0
    for ids, status, got, bad in answers:
        assert status == 200, (ids, status, got)
        assert [r["id"] for r in got["results"]] == ids
        for j, result in enumerate(got["results"]):
            assert ("error" in result) == (j in bad), result.get("error")
            assert "impression" in result or j in bad
        seen += ids
        bad_seen += len(bad)
    assert len(seen) == len(set(seen)), "an id was answered twice"
    assert bad_seen >= 3, "the load did not mix in bad reports"


# --- clients that hang up -------------------------------------------------------------------


def test_a_client_that_hangs_up_does_not_stall_the_batcher(server):
    """A full POST whose client closes at once, then a normal request: answered within 5 s (the
    batch wait is 800 ms), and the server stays healthy."""
    body = json.dumps(reports_body(["gone"], [REPORT]), ensure_ascii=False).encode("utf-8")
    raw_post(server, body, AUTH).close()
    start = time.monotonic()
    status, got = call(server, "POST", "/v1/summarize", reports_body(["next"], [PARAGRAPH]), AUTH, timeout=30)
    assert status == 200 and [r["id"] for r in got["results"]] == ["next"]
    assert time.monotonic() - start < 5
    assert call(server, "GET", "/healthz")[0] == 200
    assert call(server, "GET", "/readyz")[0] == 200
    again = call(server, "POST", "/v1/summarize", reports_body(["after"], [GOOD]), AUTH, timeout=30)
    assert again[0] == 200 and again[1]["results"][0]["id"] == "after"


def test_a_request_whose_client_hung_up_is_cancelled_not_decoded(server):
    """The contract of app._answer and the batcher: a client gone while its request waits for a
    batch cancels it (the request is logged 499 and the batcher skips it), so that abandoned work
    never holds up the others. The request waits 800 ms: the app checks every 250 ms."""
    before = server.text().count("POST /v1/summarize 499")
    body = json.dumps(reports_body(["gone"], [REPORT]), ensure_ascii=False).encode("utf-8")
    sock = raw_post(server, body, AUTH)
    time.sleep(0.2)  # the request reaches the batcher
    sock.close()
    assert wait_for_log(server, "POST /v1/summarize 499", before + 1, timeout=3), (
        "the request of a client that hung up was not cancelled: "
        + [line for line in server.text().splitlines() if "/v1/summarize" in line][-1]
    )


def test_a_client_that_hangs_up_mid_body_is_not_an_internal_error(server):
    """A client that closes before sending all of its body is an ordinary event on a network: it
    must not be logged as an internal error (an ERROR line and a 500), which pages whoever
    watches the log."""
    before = len(summarize_lines(server))
    sock = raw_post(server, b'{"reports": [', AUTH, declared=1000)
    time.sleep(0.3)
    sock.close()
    wait_for_log(server, "POST /v1/summarize", before + 1, timeout=3)  # its line, if the app logs one
    new = summarize_lines(server)[before:]
    assert not [line for line in new if "POST /v1/summarize 500" in line], new
    assert "ClientDisconnect" not in server.text() and "internal error" not in server.text()
    assert call(server, "GET", "/healthz")[0] == 200


def summarize_lines(server: Server) -> list[str]:
    return [line for line in server.text().splitlines() if "POST /v1/summarize" in line]


# --- the API key ----------------------------------------------------------------------------


def test_the_api_key_guards_v1(server):
    """/v1 calls without the key or with a wrong one get a JSON 401; with it, 200. Health needs none."""
    body = reports_body(["a"], [GOOD])
    for headers in ({}, {"Authorization": "Bearer " + "x" * len(KEY)}, {"Authorization": KEY}):
        for method, path, payload in (("POST", "/v1/summarize", body), ("GET", "/v1/model", None)):
            status, got = call(server, method, path, payload, headers)
            assert status == 401, (path, headers)
            assert got["error"]["code"] == "unauthorized" and got["error"]["message"]
    status, got = call(server, "POST", "/v1/summarize", body, AUTH)
    assert status == 200 and got["results"][0]["id"] == "a" and got["results"][0]["impression"]
    status, got = call(server, "GET", "/v1/model", None, AUTH)
    assert status == 200 and got["name"] == "default"
    assert call(server, "GET", "/healthz") == (200, {"status": "ok"})
    assert KEY not in server.text()


# --- SIGTERM and the log --------------------------------------------------------------------


@dataclass
class Drained:
    """What a server stopped by SIGTERM with requests waiting in its batcher left behind."""

    answers: dict[str, tuple[int, dict | None]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)  # reports sent in each request
    exit_code: int | None = None
    marker: str = ""
    marker_statuses: dict[str, int] = field(default_factory=dict)
    log: str = ""


@pytest.fixture(scope="module")
def drained(drain_server) -> Drained:
    """A server whose batch waits 1.5 s: first the requests carrying a marker (valid, failing,
    malformed, schema-invalid, oversize), then 6 concurrent requests, SIGTERM 0.3 s after they
    were sent (they wait in the batcher), and the exit."""
    srv = wait_ready(drain_server)
    try:
        out = Drained(marker=uuid.uuid4().hex)
        m = out.marker
        valid = f"肝脏见结节{m}，放射性摄取增高，SUVmax：5.6。      " + GOOD
        bodies: dict[str, bytes] = {
            "malformed": f'{{"reports": [{{"id": "m", "text": "肝脏见结节{m}'.encode(),
            "schema": json.dumps({"reports": [{"id": "s", "text": valid, "note": m}], "x": m}).encode(),
            "oversize": json.dumps(reports_body(["o"], [valid + "肝" * MAX_REPORT_CHARS])).encode(),
        }
        for name, body in bodies.items():
            out.marker_statuses[name] = call(srv, "POST", "/v1/summarize", body)[0]

        sent = threading.Barrier(7)

        def ask(name: str, texts: list[str]) -> None:
            ids = [f"{name}-{j}" for j in range(len(texts))]
            conn = http.client.HTTPConnection(HOST, srv.port, timeout=60)
            try:
                payload = json.dumps(reports_body(ids, texts), ensure_ascii=False).encode("utf-8")
                conn.request("POST", "/v1/summarize", body=payload, headers={"Content-Type": "application/json"})
                sent.wait(10)
                res = conn.getresponse()
                out.answers[name] = (res.status, json.loads(res.read()))
            except Exception as e:  # noqa: BLE001 - recorded: the test names what went wrong
                out.answers[name] = (0, {"exception": repr(e)})
            finally:
                conn.close()

        requests = {
            "valid": [valid],
            "failing": [f"No abnormal uptake {m} in the liver."],
            "pair": [REPORT, PARAGRAPH],
            "one": [NEWLINES],
            "two": [GOOD],
            "mixed": [REPORT, BAD, GOOD],
        }
        out.sizes = {name: len(texts) for name, texts in requests.items()}
        threads = [threading.Thread(target=ask, args=item) for item in requests.items()]
        for t in threads:
            t.start()
        sent.wait(10)  # every request is on the wire
        time.sleep(0.3)
        srv.proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(60)
        out.exit_code = srv.stop(timeout=60)
        out.log = srv.text()
    finally:
        if srv.proc.poll() is None:  # the fixture failed half-way: never leave a server behind
            srv.stop()
    return out


def test_sigterm_drains_the_requests_waiting_in_the_batcher(drained):
    """Every request waiting for its batch when SIGTERM came is answered 200 with its results, and
    the process exits 0."""
    assert set(drained.answers) == set(drained.sizes) == {"valid", "failing", "pair", "one", "two", "mixed"}
    for name, (status, got) in drained.answers.items():
        assert status == 200, (name, got)
        assert [r["id"] for r in got["results"]] == [f"{name}-{j}" for j in range(drained.sizes[name])]
    assert "error" in drained.answers["mixed"][1]["results"][1]
    assert "error" in drained.answers["failing"][1]["results"][0]
    assert drained.answers["valid"][1]["results"][0]["impression"]
    assert drained.exit_code == 0
    assert "Finished server process" in drained.log


def test_the_log_never_holds_report_text(drained):
    """A marker sent in a valid report, a failing one, malformed JSON, a schema-invalid body and an
    oversize report appears nowhere in the log, which does hold a line for each of those requests."""
    assert drained.marker_statuses == {"malformed": 400, "schema": 422, "oversize": 413}
    assert drained.marker not in drained.log
    assert drained.marker[:12] not in drained.log  # nor a piece of it
    for status in (200, 400, 413, 422):
        assert f"POST /v1/summarize {status}" in drained.log
    assert drained.log.count("POST /v1/summarize 200") == 6


# --- the load benchmark ---------------------------------------------------------------------


def test_the_load_benchmark_runs_and_checks_ids(tmp_path):
    """benchmarks/serve_load.py, tiny: two concurrencies for a second each, no `petsum batch`; one
    torch thread in its server, as in launch_server."""
    bench = load_benchmark("serve_load")
    out = tmp_path / "load.json"
    doc = bench.main(
        ["--data", str(FIXTURES / "pet_toy.csv"), "--reports", "5", "--clients", "1,2", "--seconds", "1"]
        + ["--no-batch-compare", "--threads", "1", "--json", str(out)]
    )
    assert json.loads(out.read_text(encoding="utf-8")) == doc
    assert doc["reports"] == 5 and doc["threads"] == 1 and "batch" not in doc
    assert [(r["clients"], r["max_batch"]) for r in doc["rows"]] == [(1, 32), (2, 32)]
    for row in doc["rows"]:
        assert row["requests"] > 0 and row["reports_per_s"] > 0
        assert row["errors"] == row["lost"] == row["duplicated"] == row["mismatched"] == 0
        assert 0 < row["p50_ms"] <= row["p99_ms"]
    assert list(doc["server_exit_codes"]) == ["32"] and doc["server_exit_codes"]["32"] is not None  # stopped
