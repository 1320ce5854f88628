"""The review page at `/` in a real headless Chromium, against the real `petsum serve` (the shipped model,
greedy): what a radiologist does with it (paste, summarize, follow an item to its words and back, edit,
reorder, delete, download, read an error) must work in a browser, not only in the API.

Needs selenium and Debian's chromium + chromium-driver. Without them the module is skipped, unless
PETSUM_REQUIRE_BROWSER=1 (CI sets it), where their absence fails the run instead of hiding the tests.
PETSUM_SCREENSHOT=1 also rewrites docs/images/review-page.png (1366x768) from the test of the marks
(install fonts-noto-cjk first, or the Chinese shows as empty boxes).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the shipped model

REPO = Path(__file__).parents[3]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
REPORT = (REPO / "examples" / "report.txt").read_text(encoding="utf-8")
PARAGRAPH = (REPO / "examples" / "report_paragraph.txt").read_text(encoding="utf-8")
NEWLINES = (REPO / "examples" / "report_newlines.txt").read_text(encoding="utf-8")
SCREENSHOT = REPO / "docs" / "images" / "review-page.png"
WAIT_S = 30  # one report, greedy, on 2 shared cores: a few seconds; the margin is for a loaded CI machine


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        return "the serve extra (fastapi, uvicorn) is not installed"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


if (_why := _missing()) is not None:
    if os.environ.get("PETSUM_REQUIRE_BROWSER") == "1":
        pytest.fail(f"PETSUM_REQUIRE_BROWSER=1 but {_why}", pytrace=False)
    pytest.skip(_why, allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


KEY = "petsum-test-key-0123456789"  # for the service behind --api-key-file


@contextlib.contextmanager
def serving(folder: Path, *args: str) -> Iterator[str]:
    """The real service in a subprocess, as a hospital runs it; its base URL once the model is loaded."""
    port = _free_port()
    log = folder / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "petsum.cli", "serve", "--port", str(port), "--consensus", "0", *args],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(base: str, folder: Path) -> None:
    """Poll /readyz until the model is loaded (60 s at most), failing with the service's log."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as res:
                if res.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet, or 503 while the model loads
        if time.monotonic() > deadline:
            pytest.fail(f"petsum serve was not ready in 60 s:\n{(folder / 'serve.log').read_text(errors='replace')}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Two services started at once, the model loading in both side by side (a second load after the
    first would add its whole time to the run): the default one, and one behind --api-key-file."""
    plain, keyed = tmp_path_factory.mktemp("serve"), tmp_path_factory.mktemp("serve-keyed")
    (keyed / "key.txt").write_text(KEY + "\n", encoding="utf-8")
    with serving(plain) as base, serving(keyed, "--api-key-file", str(keyed / "key.txt")) as keyed_base:
        wait_ready(base, plain)
        wait_ready(keyed_base, keyed)
        yield base, keyed_base


@pytest.fixture(scope="module")
def server(servers: tuple[str, str]) -> str:
    return servers[0]


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory, downloads: Path) -> Iterator[WebDriver]:
    """One headless Chromium for the module (a start costs about a second); each test reloads the page.
    Binary and driver are given explicitly so that selenium-manager never tries the network."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1366,768",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    browser = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        # Headless Chromium ignores the download preference unless told through DevTools.
        browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        # The page's viewport itself at 1366x768 (the window size includes no browser chrome in
        # headless mode, but this makes the screenshot's size exact either way).
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1366, "height": 768, "deviceScaleFactor": 1, "mobile": False},
        )
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def page(driver: WebDriver, server: str, downloads: Path) -> WebDriver:
    """The review page freshly loaded, its script run (the model's name fetched into the header)."""
    for f in downloads.iterdir():
        f.unlink()
    driver.get(server + "/")
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_element(By.ID, "model-name").text == "模型：default")
    return driver


@functools.cache
def api_result(server: str, text: str) -> dict:
    """The API's own answer for one report, to hold the page's rendering against (greedy decoding:
    the same for the same text, so each text is asked once per run)."""
    body = json.dumps({"reports": [{"id": "r1", "text": text}], "consensus": None}).encode()
    req = urllib.request.Request(
        server + "/v1/summarize", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=WAIT_S) as res:
        assert res.status == 200
        data = json.load(res)
    assert data["model"] == "default"
    return data["results"][0]


def paste(driver: WebDriver, text: str) -> None:
    """Put `text` in the findings box as a paste would (one input event), not key by key: typing 400
    characters through the driver is slow and a textarea's value is what the page sends either way."""
    box = driver.find_element(By.ID, "report-input")
    driver.execute_script(
        "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
        box,
        text,
    )


def summarize(driver: WebDriver, text: str) -> list[WebElement]:
    """Paste `text`, click 生成印象, and wait for the draft's items."""
    paste(driver, text)
    driver.find_element(By.ID, "summarize").click()
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#items li[data-n]") or d.find_element(By.ID, "error").is_displayed()
    )
    assert not driver.find_element(By.ID, "error").is_displayed(), driver.find_element(By.ID, "error").text
    return driver.find_elements(By.CSS_SELECTOR, "#items li[data-n]")


def item_texts(driver: WebDriver) -> list[str]:
    return [a.get_attribute("value") for a in driver.find_elements(By.CSS_SELECTOR, "#items li[data-n] textarea")]


def highlighted(driver: WebDriver) -> list[tuple[int, int, str]]:
    """The report's highlighted pieces: (start, end, text shown), in reading order."""
    return [
        (int(s.get_attribute("data-start")), int(s.get_attribute("data-end")), s.text)
        for s in driver.find_elements(By.CSS_SELECTOR, "#report-view .src.hl")
    ]


def merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Adjacent or overlapping [start, end) spans joined: the page cuts a span where another begins."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def expected_impression(result: dict, items: list[str]) -> str:
    """The impression format of the API: opening, "1、…" lines, closing, joined by newlines."""
    lines = [result["opening"]] if result["opening"] else []
    lines += [f"{k}、{t}" for k, t in enumerate(items, 1)]
    if result["closing"]:
        lines.append(result["closing"])
    return "\n".join(lines)


def test_summarize_shows_the_draft(page: WebDriver, server: str) -> None:
    """Pasting the example and clicking 生成印象 shows the normalized report and the API's items,
    numbered 1..N, and the reviewer's notice; nothing scrolls sideways at 1366x768."""
    rows = summarize(page, REPORT)
    result = api_result(server, REPORT)
    assert [r.get_attribute("data-n") for r in rows] == [str(k) for k in range(1, len(result["items"]) + 1)]
    assert [r.find_element(By.CSS_SELECTOR, ".num").text for r in rows] == [f"{k}、" for k in range(1, len(rows) + 1)]
    assert item_texts(page) == [it["text"] for it in result["items"]]
    view = page.find_element(By.ID, "report-view")
    assert view.is_displayed() and not page.find_element(By.ID, "report-input").is_displayed()
    assert page.execute_script("return arguments[0].textContent", view) == result["text"]
    closing = page.find_element(By.ID, "closing")
    assert closing.get_attribute("value") == result["closing"]
    assert page.execute_script("return window.petsumReview.impression()") == result["impression"]
    assert "草稿，须经放射科医师审核" in page.find_element(By.ID, "notice").text
    assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


def test_flagged_items_and_warnings_are_marked(page: WebDriver, server: str) -> None:
    """Each item carries the badge its origin and confidence call for (a word, not colour alone), and
    the result's warnings are shown. This example gives an item with clauses trimmed, and a warning."""
    rows = summarize(page, NEWLINES)
    result = api_result(server, NEWLINES)
    low = page.execute_script("return window.petsumReview.LOW_CONFIDENCE")
    assert low == 0.5
    for row, item in zip(rows, result["items"]):
        badges = [b.text for b in row.find_elements(By.CSS_SELECTOR, ".badge")]
        want = {"copy": ["原文"], "trimmed": ["已删减"]}.get(item["origin"], [])
        if item["confidence"] is not None and item["confidence"] < low:
            want.append("低置信度")
        assert badges == want
        assert ("flagged" in row.get_attribute("class").split()) == bool(want)
    assert any(it["origin"] == "trimmed" for it in result["items"]) and result["warnings"]
    warnings = page.find_element(By.ID, "warnings")
    assert warnings.is_displayed()
    shown = [w.text for w in warnings.find_elements(By.CSS_SELECTOR, "li")]
    assert len(shown) == len(result["warnings"])
    for said, warning in zip(shown, result["warnings"]):  # said in Chinese, with the warning's count
        assert re.search(r"[\u4e00-\u9fff]", said) and not re.search(r"[a-z]{3}", said), said
        assert said.startswith(warning.split(" ")[0]), (said, warning)
    assert page.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    if os.environ.get("PETSUM_SCREENSHOT") == "1":
        rows[0].find_element(By.CSS_SELECTOR, ".num").click()  # show an item with its words highlighted
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert page.save_screenshot(str(SCREENSHOT))


def test_items_and_their_words_highlight_each_other(page: WebDriver, server: str) -> None:
    """Hovering an item highlights exactly its source spans (whose text is the report's text at
    those offsets); clicking a highlighted span in the report highlights the item it came from."""
    rows = summarize(page, PARAGRAPH)
    result = api_result(server, PARAGRAPH)
    assert len(rows) >= 2, "the example must give several items for this test to mean anything"
    text = result["text"]
    for row, item in zip(rows, result["items"]):
        ActionChains(page).move_to_element(row.find_element(By.CSS_SELECTOR, ".num")).perform()
        shown = highlighted(page)
        assert all(piece == text[s:e] for s, e, piece in shown)
        assert merged([(s, e) for s, e, _ in shown]) == merged([tuple(x) for x in item["sources"]])
        assert [r.get_attribute("data-n") for r in page.find_elements(By.CSS_SELECTOR, "#items li.hl")] == [
            row.get_attribute("data-n")
        ]
    ActionChains(page).move_to_element(page.find_element(By.ID, "notice")).perform()
    assert highlighted(page) == []  # hover alone pins nothing

    last = result["items"][-1]
    span = next(
        s
        for s in page.find_elements(By.CSS_SELECTOR, "#report-view .src")
        if s.get_attribute("data-item") == str(last["n"])
    )
    span.click()
    ActionChains(page).move_to_element(page.find_element(By.ID, "notice")).perform()
    assert [r.get_attribute("data-n") for r in page.find_elements(By.CSS_SELECTOR, "#items li.hl")] == [str(last["n"])]
    assert merged([(s, e) for s, e, _ in highlighted(page)]) == merged([tuple(x) for x in last["sources"]])

    rows[0].click()  # clicking an item pins its spans in place of the others
    ActionChains(page).move_to_element(page.find_element(By.ID, "notice")).perform()
    first = result["items"][0]
    assert merged([(s, e) for s, e, _ in highlighted(page)]) == merged([tuple(x) for x in first["sources"]])


def test_edit_delete_move_then_download(page: WebDriver, server: str, downloads: Path) -> None:
    """The reader's changes reach the downloaded review, renumbered, beside the untouched draft."""
    rows = summarize(page, PARAGRAPH)
    result = api_result(server, PARAGRAPH)
    assert len(rows) >= 3, "the example must give three items for this test"
    texts = [it["text"] for it in result["items"]]

    box = rows[0].find_element(By.CSS_SELECTOR, "textarea")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("肠系膜小淋巴结，考虑转移可能。")
    page.find_element(By.CSS_SELECTOR, '#items li[data-n="2"] button[data-action="delete"]').click()
    page.find_element(By.CSS_SELECTOR, '#items li[data-n="2"] button[data-action="up"]').click()

    edited = [texts[2], "肠系膜小淋巴结，考虑转移可能。", *texts[3:]]
    assert item_texts(page) == edited
    rows = page.find_elements(By.CSS_SELECTOR, "#items li[data-n]")
    assert [r.get_attribute("data-n") for r in rows] == [str(k) for k in range(1, len(edited) + 1)]
    assert [r.find_element(By.CSS_SELECTOR, ".num").text for r in rows] == [f"{k}、" for k in range(1, len(rows) + 1)]

    # 复制 puts the same impression on the clipboard (Chromium lets a page read it back once granted).
    origin = server + "/"
    page.execute_cdp_cmd(
        "Browser.grantPermissions", {"origin": origin, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]}
    )
    page.find_element(By.ID, "copy").click()
    WebDriverWait(page, 10).until(lambda d: "已复制" in d.find_element(By.ID, "status").text)
    clipboard = page.execute_async_script(
        "navigator.clipboard.readText().then(arguments[0], e => arguments[0](String(e)))"
    )
    assert clipboard == expected_impression(result, edited)

    page.find_element(By.ID, "download").click()
    target = downloads / "petsum-review.json"
    WebDriverWait(page, 10).until(lambda _: target.exists() and not list(downloads.glob("*.crdownload")))
    saved = json.loads(target.read_text(encoding="utf-8"))
    assert saved["model"] == "default" and saved["id"] == "r1"
    assert saved["report"] == result["text"]
    assert saved["draft"] == result
    assert saved["edited"]["impression"] == expected_impression(result, edited)
    assert [it["n"] for it in saved["edited"]["items"]] == list(range(1, len(edited) + 1))
    assert [it["text"] for it in saved["edited"]["items"]] == edited
    assert [it["source_n"] for it in saved["edited"]["items"]] == [3, 1, *range(4, len(texts) + 1)]
    assert saved["edited"]["items"][0]["sources"] == result["items"][2]["sources"]
    assert saved["saved_at"].endswith("Z")  # toISOString: UTC


def test_text_without_chinese_shows_the_error(page: WebDriver, server: str) -> None:
    """The API's per-report error (a 200 answer) is shown in the alert box, and the draft of the report
    before it goes (left beside the new text, it would read as that text's)."""
    message = api_result(server, "hello world")["error"]
    assert summarize(page, PARAGRAPH)
    page.find_element(By.ID, "edit-input").click()
    paste(page, "hello world")
    page.find_element(By.ID, "summarize").click()
    error = page.find_element(By.ID, "error")
    WebDriverWait(page, WAIT_S).until(lambda _: error.is_displayed())
    assert error.get_attribute("role") == "alert"
    assert error.text == f"无法生成：{message}"
    assert page.find_elements(By.CSS_SELECTOR, "#items li") == []


def test_upload_a_text_file(page: WebDriver, tmp_path: Path) -> None:
    """A UTF-8 .txt file (here with a Notepad BOM) fills the findings box."""
    path = tmp_path / "findings.txt"
    path.write_text("\ufeff" + REPORT, encoding="utf-8")
    page.find_element(By.ID, "report-file").send_keys(str(path))
    box = page.find_element(By.ID, "report-input")
    WebDriverWait(page, 10).until(lambda _: box.get_attribute("value") == REPORT)


def test_api_key_asked_for_on_401(driver: WebDriver, servers: tuple[str, str]) -> None:
    """Behind --api-key-file, the page asks for the key when the service answers 401, retries with it
    as a Bearer, and keeps it in sessionStorage only (gone with the tab, never on disk via localStorage)."""
    driver.get(servers[1] + "/")
    auth = driver.find_element(By.ID, "auth")
    WebDriverWait(driver, WAIT_S).until(lambda _: auth.is_displayed())  # /v1/model answered 401
    paste(driver, REPORT)
    driver.find_element(By.ID, "summarize").click()
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_element(By.ID, "error").is_displayed())
    assert driver.find_elements(By.CSS_SELECTOR, "#items li") == []
    driver.find_element(By.ID, "api-key").send_keys(KEY)
    driver.find_element(By.ID, "save-key").click()  # saves the key and retries the summary
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#items li[data-n]"))
    assert not auth.is_displayed() and not driver.find_element(By.ID, "error").is_displayed()
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_element(By.ID, "model-name").text == "模型：default")
    assert driver.execute_script("return sessionStorage.getItem('petsum.apiKey')") == KEY
    assert driver.execute_script("return localStorage.length") == 0
    driver.execute_script("sessionStorage.clear()")  # the module's browser is shared
