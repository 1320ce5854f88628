"""The service's contract in process (docs/serve.md): the shipped model, greedy, through the real app,
batcher and summarizer. The subprocess behaviours (load, SIGTERM, logs) are in test_service_process.py."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

fastapi = pytest.importorskip("fastapi", reason="the serve extra is not installed")

from fastapi.testclient import TestClient  # noqa: E402

from petsum.cli import main as petsum  # noqa: E402
from petsum.serve.app import create_app  # noqa: E402
from petsum.serve.run import load_model  # noqa: E402
from petsum.serve.settings import ServeSettings  # noqa: E402

pytestmark = pytest.mark.slow  # runs the shipped model

REPO = Path(__file__).parents[3]
REPORT = (REPO / "examples" / "report.txt").read_text(encoding="utf-8")
PARAGRAPH = (REPO / "examples" / "report_paragraph.txt").read_text(encoding="utf-8")
NEWLINES = (REPO / "examples" / "report_newlines.txt").read_text(encoding="utf-8")


_LOADED: dict[str, object] = {}


def load_once(settings: ServeSettings):
    """The shipped model, loaded by the service's own loader once for the module: each app here
    differs in its limits, not its model (an app's batcher decodes with the settings it is given)."""
    if "model" not in _LOADED:
        _LOADED["model"] = load_model(settings)
    return _LOADED["model"]


def client_for(**settings) -> TestClient:
    return TestClient(create_app(ServeSettings(consensus=0, **settings), load_once), raise_server_exceptions=False)


def wait_ready(client: TestClient) -> None:
    import time

    for _ in range(600):
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError("the model did not load in 30 s")


@pytest.fixture(scope="module")
def client():
    with client_for(max_wait_ms=5) as c:
        wait_ready(c)
        yield c


def summarize(client: TestClient, *texts: str, **extra) -> dict:
    res = client.post(
        "/v1/summarize", json={"reports": [{"id": f"r{k}", "text": t} for k, t in enumerate(texts)], **extra}
    )
    assert res.status_code == 200, res.text
    return res.json()


def check_item_contract(result: dict) -> None:
    """Every field of every item, and every span pointing at text of the report that its item was written from."""
    text = result["text"]
    assert result["impression"].endswith(result["closing"])
    for n, item in enumerate(result["items"], 1):
        assert item["n"] == n
        assert f"{n}、{item['text']}" in result["impression"].split("\n")
        assert item["origin"] in ("model", "copy", "trimmed")
        assert item["confidence"] is None or 0 <= item["confidence"] <= 1
        assert item["regions"] and item["sources"]
        for start, end in item["sources"]:
            assert 0 <= start < end <= len(text)
            assert text[start:end].strip()


def test_summarize_answers_in_request_order_with_items_and_an_error_entry(client):
    got = summarize(client, REPORT, "hello world", NEWLINES, PARAGRAPH)
    assert got["model"] == "default"
    assert [r["id"] for r in got["results"]] == ["r0", "r1", "r2", "r3"]
    assert "error" in got["results"][1] and "Chinese" in got["results"][1]["error"]
    for result in (got["results"][k] for k in (0, 2, 3)):
        assert set(result) == {"id", "impression", "text", "opening", "items", "closing", "warnings"}
        check_item_contract(result)
    first = got["results"][0]
    assert first["items"], "the example report has abnormal findings"
    # the pancreas item points at the pancreas finding
    pancreas = next(i for i in first["items"] if "胰" in i["text"])
    assert any("胰" in first["text"][s:e] for s, e in pancreas["sources"])


def test_service_impression_equals_the_cli_summarize(client, tmp_path):
    """Same model, same settings (greedy): the service batches reports together, the CLI does one."""
    got = summarize(client, REPORT, NEWLINES, PARAGRAPH)["results"]
    for k, text in enumerate((REPORT, NEWLINES, PARAGRAPH)):
        path = tmp_path / f"{k}.txt"
        path.write_text(text, encoding="utf-8")
        res = CliRunner().invoke(petsum, ["summarize", str(path), "--consensus", "0", "--json"])
        assert res.exit_code == 0, res.output
        cli = json.loads(res.stdout)
        assert cli["impression"] == got[k]["impression"]
        assert cli["items"] == got[k]["items"]
        check_item_contract(cli)


def test_consensus_per_request_reports_agreement(client):
    """A request may ask for draws: confidence is then the chosen answer's agreement with them."""
    got = summarize(client, REPORT, consensus=2)["results"][0]
    check_item_contract(got)
    assert any(i["confidence"] is not None for i in got["items"] if i["origin"] != "copy")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "bad_json"),
        (b"\xff\xfe", 400, "bad_json"),
        (b"[]", 422, "invalid_request"),
        (b'{"reports": []}', 422, "invalid_request"),
        (b'{"reports": [{"id": "a"}]}', 422, "invalid_request"),
        (b'{"reports": [{"id": "a", "text": 5}]}', 422, "invalid_request"),
        (b'{"reports": [{"id": "a", "text": "x", "extra": 1}]}', 422, "invalid_request"),
        (b'{"reports": [{"id": "a", "text": "x"}, {"id": "a", "text": "y"}]}', 422, "invalid_request"),
        (b'{"reports": [{"id": "a", "text": "x"}], "consensus": -1}', 422, "invalid_request"),
        (b'{"reports": [{"id": "a", "text": "x"}], "consensus": 10000}', 422, "invalid_request"),
        (b'{"reports": [{"id": "a", "text": "x"}], "consensus": "3"}', 422, "invalid_request"),
        (b'{"reports": [{"id": "a", "text": "x"}], "consensus": true}', 422, "invalid_request"),
        (b'{"reports": [{"id": "\\ud800", "text": "x"}]}', 422, "invalid_request"),
        (b"[" * 100_000, 400, "bad_json"),
    ],
)
def test_bad_requests_get_a_json_error_never_a_500(client, body, status, code):
    res = client.post("/v1/summarize", content=body, headers={"Content-Type": "application/json"})
    assert res.status_code == status
    assert res.json()["error"]["code"] == code
    assert "Traceback" not in res.text


def test_limits_answer_413(client):
    over = client.post("/v1/summarize", json={"reports": [{"id": "a", "text": "肝" * 20_001}]})
    assert over.status_code == 413 and over.json()["error"]["code"] == "too_large"
    many = client.post("/v1/summarize", json={"reports": [{"id": str(k), "text": "肝"} for k in range(65)]})
    assert many.status_code == 413
    huge = client.post("/v1/summarize", content=b"{" + b" " * (5 * 1024 * 1024) + b"}")
    assert huge.status_code == 413


def test_other_routes(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    model = client.get("/v1/model").json()
    assert model["name"] == "default" and model["method"] == "direct"
    assert model["decoding"]["consensus_samples"] == 0  # this service's greedy setting
    assert model["metrics"]["rouge_l"] > 50
    schema = client.get("/openapi.json").json()
    assert "/v1/summarize" in schema["paths"]
    assert "requestBody" in schema["paths"]["/v1/summarize"]["post"]
    assert client.get("/nowhere").json()["error"]["code"] == "http_error"
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "access-control-allow-origin" not in client.get("/healthz", headers={"Origin": "http://x"}).headers


def test_the_api_key_guards_v1_only(tmp_path):
    key = "k" * 32
    with client_for(api_key=key) as c:
        wait_ready(c)
        body = {"reports": [{"id": "a", "text": REPORT}]}
        assert c.post("/v1/summarize", json=body).status_code == 401
        wrong = c.post("/v1/summarize", json=body, headers={"Authorization": "Bearer " + "x" * 32})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
        assert c.get("/v1/model").status_code == 401
        assert c.post("/v1/summarize", json=body, headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert c.get("/healthz").status_code == 200


def test_concurrent_requests_are_decoded_together():
    """Eight requests within the wait window: fewer batches than requests, every id answered once."""
    with client_for(max_wait_ms=400, max_batch=64) as c:
        wait_ready(c)
        answers: dict[int, list[str]] = {}

        def ask(k: int) -> None:
            res = c.post("/v1/summarize", json={"reports": [{"id": f"{k}-{j}", "text": REPORT} for j in range(2)]})
            answers[k] = [r["id"] for r in res.json()["results"]]

        threads = [threading.Thread(target=ask, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert answers == {k: [f"{k}-0", f"{k}-1"] for k in range(8)}
        stats = c.app.state.service.batcher.stats
        assert stats.requests == 8 and stats.reports == 16
        assert stats.batches < 8


def test_a_full_queue_answers_503_with_retry_after():
    with client_for(max_wait_ms=3000, max_queue=1, max_batch=64) as c:
        wait_ready(c)
        first = threading.Thread(
            target=lambda: c.post("/v1/summarize", json={"reports": [{"id": "a", "text": REPORT}]})
        )
        first.start()
        batcher = c.app.state.service.batcher
        for _ in range(200):  # until the first request waits in the queue
            if batcher.waiting:
                break
            threading.Event().wait(0.01)
        busy = c.post("/v1/summarize", json={"reports": [{"id": "b", "text": REPORT}]})
        assert busy.status_code == 503 and busy.headers["Retry-After"]
        first.join()


def test_a_request_past_its_timeout_answers_504():
    with client_for(max_wait_ms=2000, timeout_s=0.2) as c:
        wait_ready(c)
        res = c.post("/v1/summarize", json={"reports": [{"id": "a", "text": REPORT}]})
        assert res.status_code == 504 and res.json()["error"]["code"] == "timeout"


def test_a_lone_surrogate_in_a_report_is_dropped_like_any_invisible_character(client):
    """Valid JSON can carry `\\ud800`, which no UTF-8 answer can: normalizing removes it, and the report
    next to it is answered as usual."""
    body = json.dumps(
        {"reports": [{"id": "a", "text": REPORT.replace("胰体部", "胰\ud800体部")}, {"id": "b", "text": REPORT}]}
    )
    res = client.post("/v1/summarize", content=body.encode("utf-8", "surrogatepass"))
    assert res.status_code == 200, res.text
    a, b = res.json()["results"]
    assert "\ud800" not in a["text"] and a["impression"] == b["impression"]


def test_a_body_that_stops_arriving_answers_408():
    import asyncio

    import httpx

    from petsum.serve.app import create_app

    app = create_app(ServeSettings(consensus=0, body_timeout_s=0.3), load_once)

    async def trickle():
        yield b'{"reports": ['
        await asyncio.sleep(2)
        yield b"]}"

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://petsum") as c:
            return await c.post("/v1/summarize", content=trickle())

    res = asyncio.run(ask())
    assert res.status_code == 408 and res.json()["error"]["code"] == "body_timeout"


def test_the_log_names_only_our_paths_and_standard_methods():
    from petsum.serve.app import logged_method, logged_path

    assert logged_path("/v1/summarize") == "/v1/summarize" and logged_path("/static/app.js") == "/static/app.js"
    assert logged_path("/static/张三") == "(other)" and logged_path("/patient/张三") == "(other)"
    assert logged_method("POST") == "POST" and logged_method("ZHANGSAN") == "(other)"
