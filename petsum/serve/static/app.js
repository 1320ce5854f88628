// petsum review page: paste a report's findings, get the model's draft impression, check each item
// against the words it came from, edit, and copy or download the result.
//
// Plain script, no framework and no external URL: hospital networks are often offline, and the page
// must work from the service alone. Report text and model output are untrusted: every piece of it
// goes into the DOM through textContent (never innerHTML), so a report cannot inject markup.
"use strict";

(function () {
  // Items whose confidence (the agreement of the model's answers) is below this are flagged
  // 低置信度. 0.5: fewer than half of the draws agree with the answer given, so the reader should
  // check it against the report with particular care. `confidence` is null when the words are not
  // the model's (origin "copy"), which is flagged on its own.
  const LOW_CONFIDENCE = 0.5;

  // The service's warnings are English sentences (they also reach logs and the CLI); the page says the
  // known ones in Chinese, keeping their counts, and shows any other as it came.
  const WARNINGS = [
    [/^(\d+) finding\(s\) in the report's own words: the model wrote about another organ/, (m) =>
      m[1] + " 条所见改用报告原句：模型答案涉及其他器官，或含所见未给出的数字或侧别"],
    [/^(\d+) finding\(s\) in the report's own words: the model's answer contradicted/, (m) =>
      m[1] + " 条所见改用报告原句：模型答案与所见矛盾（摄取、器官状态或变化方向）"],
    [/^(\d+) finding\(s\) with clauses about another organ/, (m) =>
      m[1] + " 条所见删去了分句：涉及其他器官，或含所见未给出的数字或侧别"],
    [/^(\S+): (\d+) of (\d+) findings not summarized/, (m) =>
      REGION_LABELS_TEXT(m[1]) + "：" + m[3] + " 条所见中有 " + m[2] + " 条未生成印象（超出单次上限）"],
    [/^(\S+) section truncated/, (m) => REGION_LABELS_TEXT(m[1]) + "部分过长，已截断"],
    [/^report truncated/, () => "报告过长，已截断"],
  ];

  function warningText(w) {
    for (const [re, say] of WARNINGS) {
      const m = re.exec(w);
      if (m) return say(m);
    }
    return w;
  }

  function REGION_LABELS_TEXT(key) {
    return REGION_LABELS[key] || key;
  }

  // Labels for the API's region keys, shown as small tags on each item.
  const REGION_LABELS = {
    brain: "脑部",
    head_neck: "头颈部",
    chest: "胸部",
    abdomen: "腹部",
    pelvis: "盆腔",
    musculoskeletal: "骨骼肌肉",
    lymph: "淋巴结",
    soft_tissue: "软组织",
  };

  // The key lives in sessionStorage only: it is gone when the tab closes, and never written to disk
  // by the page (localStorage would keep it on a shared reading-room workstation).
  const KEY_STORAGE = "petsum.apiKey";

  const $ = (id) => document.getElementById(id);
  const el = {
    modelName: $("model-name"),
    auth: $("auth"),
    apiKey: $("api-key"),
    saveKey: $("save-key"),
    error: $("error"),
    input: $("report-input"),
    file: $("report-file"),
    editInput: $("edit-input"),
    summarize: $("summarize"),
    view: $("report-view"),
    status: $("status"),
    reset: $("reset"),
    copy: $("copy"),
    download: $("download"),
    placeholder: $("placeholder"),
    warnings: $("warnings"),
    warningList: $("warning-list"),
    openingRow: $("opening-row"),
    opening: $("opening"),
    items: $("items"),
    closingRow: $("closing-row"),
    closing: $("closing"),
    legend: $("legend"),
    lowThreshold: $("low-threshold"),
  };

  const state = {
    model: null, // the response's model name
    result: null, // the result object exactly as received: the `draft` of the download
    items: [], // working copy: {text, source_n, sources, origin, confidence, regions}
    pinned: new Set(), // original item numbers the reader clicked; hover shows others transiently
    pending: null, // a summarize call waiting for an API key (after a 401)
  };

  el.lowThreshold.textContent = Math.round(LOW_CONFIDENCE * 100) + "%";

  // ---- API ---------------------------------------------------------------------------------

  function apiKey() {
    try {
      return sessionStorage.getItem(KEY_STORAGE) || "";
    } catch (e) {
      return ""; // storage disabled by policy: the reader re-enters the key after each 401
    }
  }

  async function api(path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const key = apiKey();
    if (key) headers.Authorization = "Bearer " + key;
    const res = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null; // a proxy's HTML error page: reported by status below
    }
    return { res, data };
  }

  // A Chinese message for a non-200 answer; the server's own message is appended for the details.
  function failure(res, data) {
    const message = data && data.error && data.error.message ? data.error.message : res.statusText;
    const retry = res.headers.get("Retry-After");
    const lead = {
      400: "请求格式错误",
      401: "需要有效的 API 密钥",
      413: "报告过长",
      422: "请求内容无效",
      503: retry ? `服务繁忙或模型正在加载，请 ${retry} 秒后重试` : "服务暂不可用，请稍后重试",
      504: "生成超时，请稍后重试",
    }[res.status] || `请求失败（HTTP ${res.status}）`;
    return `${lead}：${message}`;
  }

  async function loadModel() {
    try {
      const { res, data } = await api("/v1/model");
      if (res.ok && data) {
        el.modelName.textContent = "模型：" + data.name;
        const m = data.metrics || {};
        const parts = [data.method && "方法 " + data.method, m.bleu != null && "BLEU " + m.bleu,
          m.rouge_l != null && "ROUGE-L " + m.rouge_l].filter(Boolean);
        el.modelName.title = parts.join(" · ");
      } else if (res.status === 401) {
        el.modelName.textContent = "模型：需要密钥";
        showAuth();
      } else if (res.status === 503) {
        // The model loads on a thread after the server starts: ask again shortly.
        el.modelName.textContent = "模型：加载中…";
        setTimeout(loadModel, 3000);
      } else {
        el.modelName.textContent = "模型：未知";
      }
    } catch (e) {
      el.modelName.textContent = "模型：无法连接服务";
    }
  }

  // ---- messages ----------------------------------------------------------------------------

  function showError(message) {
    el.error.textContent = message;
    el.error.hidden = false;
  }

  function clearError() {
    el.error.textContent = "";
    el.error.hidden = true;
  }

  function say(message) {
    el.status.textContent = message;
  }

  function showAuth() {
    el.auth.hidden = false;
    el.apiKey.focus();
  }

  // ---- summarize ---------------------------------------------------------------------------

  async function summarize() {
    const text = el.input.value;
    clearError();
    if (!text.trim()) {
      showError("请先粘贴或上传报告所见。");
      el.input.focus();
      return;
    }
    clearDraft(); // a draft left beside another report's text would be read as that report's
    el.summarize.disabled = true;
    el.summarize.setAttribute("aria-busy", "true");
    el.summarize.textContent = "生成中…";
    say("正在生成印象草稿…");
    try {
      const { res, data } = await api("/v1/summarize", { reports: [{ id: "r1", text }], consensus: null });
      if (res.status === 401) {
        state.pending = summarize;
        showAuth();
        showError(failure(res, data));
        say("");
        return;
      }
      if (!res.ok || !data || !Array.isArray(data.results)) {
        showError(data ? failure(res, data) : `请求失败（HTTP ${res.status}）`);
        say("");
        return;
      }
      const result = data.results[0];
      if (result.error) {
        showError("无法生成：" + result.error);
        say("");
        return;
      }
      state.model = data.model;
      showResult(result);
      say(`已生成 ${result.items.length} 条印象。请逐条核对出处后再使用。`);
    } catch (e) {
      showError("无法连接服务：" + e.message);
      say("");
    } finally {
      el.summarize.disabled = false;
      el.summarize.removeAttribute("aria-busy");
      el.summarize.textContent = "生成印象";
    }
  }

  function showResult(result) {
    // A deep copy: the reader's edits change state.items, never the draft that is downloaded.
    state.result = JSON.parse(JSON.stringify(result));
    state.pinned.clear();
    renderReport(result.text, result.items);
    el.input.hidden = true;
    el.view.hidden = false;
    el.editInput.hidden = false;
    el.summarize.hidden = true;
    loadDraft();
  }

  function clearDraft() {
    state.result = null;
    state.items = [];
    state.pinned.clear();
    el.items.replaceChildren();
    el.warningList.replaceChildren();
    for (const node of [el.warnings, el.openingRow, el.closingRow, el.legend]) node.hidden = true;
    el.placeholder.hidden = false;
    for (const b of [el.reset, el.copy, el.download]) b.disabled = true;
  }

  // The working copy from the received draft (also what 恢复草稿 goes back to).
  function loadDraft() {
    const r = state.result;
    state.items = r.items.map((it) => ({
      text: it.text,
      source_n: it.n,
      sources: it.sources,
      origin: it.origin,
      confidence: it.confidence,
      regions: it.regions || [],
    }));
    el.opening.value = r.opening || "";
    el.openingRow.hidden = !r.opening;
    el.closing.value = r.closing || "";
    el.closingRow.hidden = !r.closing;
    el.warningList.replaceChildren(...(r.warnings || []).map((w) => li(warningText(w))));
    el.warnings.hidden = !(r.warnings && r.warnings.length);
    el.placeholder.hidden = true;
    el.legend.hidden = false;
    for (const b of [el.reset, el.copy, el.download]) b.disabled = false;
    renderItems();
    fitAll();
  }

  function li(text) {
    const node = document.createElement("li");
    node.textContent = text;
    return node;
  }

  // ---- the report with its source spans ----------------------------------------------------

  // Cut the text at every span boundary; each piece covered by some item's sources becomes a
  // <span class="src"> naming every item that cites it (spans of different items may overlap).
  function renderReport(text, items) {
    const cuts = new Set([0, text.length]);
    const spans = [];
    for (const it of items) {
      for (const [s, e] of it.sources || []) {
        const a = Math.max(0, Math.min(s, text.length));
        const b = Math.max(0, Math.min(e, text.length));
        if (b <= a) continue;
        spans.push([a, b, it.n]);
        cuts.add(a);
        cuts.add(b);
      }
    }
    const points = [...cuts].sort((x, y) => x - y);
    const frag = document.createDocumentFragment();
    for (let k = 0; k + 1 < points.length; k++) {
      const a = points[k];
      const b = points[k + 1];
      const piece = text.slice(a, b);
      const ns = [...new Set(spans.filter(([s, e]) => s <= a && b <= e).map((x) => x[2]))];
      if (!ns.length) {
        frag.appendChild(document.createTextNode(piece));
        continue;
      }
      const span = document.createElement("span");
      span.className = "src";
      span.textContent = piece;
      span.dataset.item = ns.join(" ");
      span.dataset.start = String(a);
      span.dataset.end = String(b);
      span.title = "出处：第 " + ns.join("、") + " 条（原编号）";
      frag.appendChild(span);
    }
    el.view.replaceChildren(frag);
  }

  function spanItems(span) {
    return span.dataset.item.split(" ").map(Number);
  }

  // ---- the draft items ---------------------------------------------------------------------

  function badge(cls, label, title) {
    const b = document.createElement("span");
    b.className = "badge " + cls;
    b.textContent = label;
    if (title) b.title = title;
    return b;
  }

  function button(label, action, title, disabled) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.dataset.action = action;
    b.title = title;
    b.disabled = !!disabled;
    return b;
  }

  function renderItems() {
    const n = state.items.length;
    const nodes = state.items.map((it, i) => {
      const row = document.createElement("li");
      row.dataset.n = String(i + 1);
      row.dataset.sourceN = it.source_n == null ? "" : String(it.source_n);
      row.dataset.index = String(i);

      const head = document.createElement("div");
      head.className = "item-head";
      const num = document.createElement("span");
      num.className = "num";
      num.textContent = i + 1 + "、";
      head.appendChild(num);

      const flags = [];
      if (it.origin === "copy") flags.push(badge("badge-copy", "原文", "模型答案未通过校验，改用报告原句"));
      if (it.origin === "trimmed") flags.push(badge("badge-trimmed", "已删减", "删去了与所见不符的分句"));
      if (it.confidence != null && it.confidence < LOW_CONFIDENCE) {
        flags.push(badge("badge-low", "低置信度", "置信度 " + Math.round(it.confidence * 100) + "%"));
      }
      head.append(...flags);
      row.classList.toggle("flagged", flags.length > 0);
      for (const r of it.regions) {
        const tag = document.createElement("span");
        tag.className = "region";
        tag.textContent = REGION_LABELS[r] || r;
        head.appendChild(tag);
      }
      if (it.confidence != null) {
        const c = document.createElement("span");
        c.className = "confidence";
        c.textContent = "置信度 " + Math.round(it.confidence * 100) + "%";
        head.appendChild(c);
      }
      const tools = document.createElement("span");
      tools.className = "item-tools";
      tools.append(
        button("上移", "up", "上移一条", i === 0),
        button("下移", "down", "下移一条", i === n - 1),
        button("删除", "delete", "删除这条印象"),
      );
      head.appendChild(tools);

      const text = document.createElement("textarea");
      text.className = "item-text";
      text.rows = 1;
      text.value = it.text;
      text.setAttribute("aria-label", "第 " + (i + 1) + " 条印象");
      row.append(head, text);
      return row;
    });
    el.items.replaceChildren(...nodes);
    fitAll();
    paint(state.pinned);
  }

  // Textareas grow with their text, so the whole draft reads like the impression it becomes.
  function fit(area) {
    area.style.height = "auto";
    area.style.height = area.scrollHeight + 2 + "px";
  }

  function fitAll() {
    for (const a of document.querySelectorAll("#draft textarea")) fit(a);
  }

  function move(i, delta) {
    const j = i + delta;
    if (j < 0 || j >= state.items.length) return;
    const [it] = state.items.splice(i, 1);
    state.items.splice(j, 0, it);
    renderItems();
    // Keep the keyboard where the reader was: on the same button of the moved item, if it exists.
    const target = el.items.children[j].querySelector(`button[data-action="${delta < 0 ? "up" : "down"}"]`);
    (target && !target.disabled ? target : el.items.children[j].querySelector("textarea")).focus();
  }

  function remove(i) {
    const [gone] = state.items.splice(i, 1);
    if (gone.source_n != null) state.pinned.delete(gone.source_n);
    renderItems();
    say(`已删除 1 条印象，剩 ${state.items.length} 条。`);
  }

  // ---- highlighting (item <-> report spans) ------------------------------------------------

  // Show the items with these original numbers and their spans; the first span is scrolled into
  // view (only when out of sight: "nearest" does not jump the page while the reader hovers).
  function paint(ns, scroll) {
    let first = null;
    for (const span of el.view.querySelectorAll(".src")) {
      const on = spanItems(span).some((n) => ns.has(n));
      span.classList.toggle("hl", on);
      if (on && !first) first = span;
    }
    for (const row of el.items.children) {
      row.classList.toggle("hl", row.dataset.sourceN !== "" && ns.has(Number(row.dataset.sourceN)));
    }
    if (scroll && first) first.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  function rowSource(row) {
    return row && row.dataset.sourceN !== "" ? Number(row.dataset.sourceN) : null;
  }

  el.items.addEventListener("mouseover", (ev) => {
    const n = rowSource(ev.target.closest("li"));
    if (n != null) paint(new Set([n]), true);
  });
  el.items.addEventListener("mouseleave", () => paint(state.pinned));

  // A click, or keyboard focus on an item's text, pins its spans until the next pin.
  function pinRow(row) {
    const n = rowSource(row);
    state.pinned = new Set(n == null ? [] : [n]);
    paint(state.pinned, true);
  }

  el.items.addEventListener("focusin", (ev) => {
    if (ev.target.classList.contains("item-text")) pinRow(ev.target.closest("li"));
  });

  el.items.addEventListener("click", (ev) => {
    const row = ev.target.closest("li");
    if (!row) return;
    const i = Number(row.dataset.index);
    const action = ev.target.dataset && ev.target.dataset.action;
    if (action === "up") move(i, -1);
    else if (action === "down") move(i, +1);
    else if (action === "delete") remove(i);
    else pinRow(row);
  });

  el.items.addEventListener("input", (ev) => {
    if (!ev.target.classList.contains("item-text")) return;
    state.items[Number(ev.target.closest("li").dataset.index)].text = ev.target.value;
    fit(ev.target);
  });

  el.view.addEventListener("mouseover", (ev) => {
    const span = ev.target.closest(".src");
    if (span) paint(new Set(spanItems(span)));
  });
  el.view.addEventListener("mouseleave", () => paint(state.pinned));
  el.view.addEventListener("click", (ev) => {
    const span = ev.target.closest(".src");
    state.pinned = new Set(span ? spanItems(span) : []);
    paint(state.pinned);
    // Bring the item into view on the right as well: with a long draft it may be below the fold.
    const row = span && [...el.items.children].find((r) => state.pinned.has(rowSource(r)));
    if (row) row.scrollIntoView({ block: "nearest" });
  });

  for (const area of [el.opening, el.closing]) area.addEventListener("input", () => fit(area));

  // ---- the edited impression, copy, download -------------------------------------------------

  // Same format as the API's `impression`: opening line, "1、…" lines renumbered, closing line.
  function impression() {
    const lines = [];
    const opening = el.openingRow.hidden ? "" : el.opening.value.trim();
    if (opening) lines.push(opening);
    state.items.forEach((it, i) => lines.push(i + 1 + "、" + it.text.trim()));
    const closing = el.closingRow.hidden ? "" : el.closing.value.trim();
    if (closing) lines.push(closing);
    return lines.join("\n");
  }

  function review() {
    return {
      model: state.model,
      id: state.result.id,
      report: state.result.text,
      draft: state.result,
      edited: {
        impression: impression(),
        opening: el.openingRow.hidden ? null : el.opening.value.trim(),
        items: state.items.map((it, i) => ({
          n: i + 1,
          text: it.text.trim(),
          source_n: it.source_n,
          sources: it.sources,
          origin: it.origin,
        })),
        closing: el.closingRow.hidden ? null : el.closing.value.trim(),
      },
      saved_at: new Date().toISOString(),
    };
  }

  async function copy() {
    const text = impression();
    try {
      // The Clipboard API exists only in a secure context (https or localhost); a service on a
      // ward's plain-http address falls back to the older execCommand path.
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
      } else {
        const area = document.createElement("textarea");
        area.value = text;
        area.setAttribute("readonly", "");
        area.className = "offscreen";
        document.body.appendChild(area);
        area.select();
        const ok = document.execCommand("copy");
        area.remove();
        if (!ok) throw new Error("execCommand");
      }
      say("已复制印象（" + state.items.length + " 条）到剪贴板。");
    } catch (e) {
      showError("复制失败，请手动选择文字复制。");
    }
  }

  function download() {
    const blob = new Blob([JSON.stringify(review(), null, 2)], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url;
    a.download = "petsum-review.json";
    document.body.appendChild(a);
    a.click();
    a.remove();
    // Revoke later, not at once: the browser may still be reading the blob for the download.
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    say("已下载 petsum-review.json。");
  }

  // ---- input -------------------------------------------------------------------------------

  el.file.addEventListener("change", () => {
    const file = el.file.files && el.file.files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => {
      // A BOM from Windows Notepad is not part of the findings.
      el.input.value = String(reader.result).replace(/^\uFEFF/, "");
      editInput();
      say("已读取文件 " + file.name + "。");
      el.file.value = ""; // choosing the same file again fires change again
    };
    reader.onerror = () => showError("无法读取文件 " + file.name + "。");
    reader.readAsText(file, "utf-8");
  });

  function editInput() {
    el.input.hidden = false;
    el.view.hidden = true;
    el.editInput.hidden = true;
    el.summarize.hidden = false;
    el.input.focus();
  }

  el.editInput.addEventListener("click", editInput);
  el.summarize.addEventListener("click", summarize);
  el.input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      summarize();
    }
  });
  el.reset.addEventListener("click", () => {
    if (state.result) {
      state.pinned.clear();
      loadDraft();
      say("已恢复模型草稿。");
    }
  });
  el.copy.addEventListener("click", copy);
  el.download.addEventListener("click", download);

  el.saveKey.addEventListener("click", () => {
    try {
      sessionStorage.setItem(KEY_STORAGE, el.apiKey.value.trim());
    } catch (e) {
      showError("无法保存密钥（浏览器禁用了会话存储）。");
      return;
    }
    el.apiKey.value = "";
    el.auth.hidden = true;
    clearError();
    loadModel();
    const retry = state.pending;
    state.pending = null;
    if (retry) retry();
  });
  el.apiKey.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") el.saveKey.click();
  });

  window.addEventListener("resize", fitAll);

  // For the browser tests and for a reader's console: the impression the 复制 button copies.
  window.petsumReview = { impression, review, LOW_CONFIDENCE };

  loadModel();
})();
