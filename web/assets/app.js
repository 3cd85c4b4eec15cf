// cairn's upload-and-ask page: plain JavaScript over the REST API (/v1/...), no build step.
const $ = (id) => document.getElementById(id);
const KEY = "cairn.apiKey";

/// Headers for the API: the key from this tab's session, when one was given.
function headers(extra = {}) {
  const key = sessionStorage.getItem(KEY);
  return key ? { ...extra, authorization: `Bearer ${key}` } : extra;
}

/// The error message of a failed answer, in words.
async function problem(resp) {
  try {
    const body = await resp.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch (_) { /* not JSON */ }
  return `the server answered ${resp.status} ${resp.statusText}`;
}

async function api(path, init = {}) {
  let resp;
  try {
    resp = await fetch(path, { ...init, headers: headers(init.headers || {}) });
  } catch (e) {
    throw new Error("cannot reach the cairn server; is it running?");
  }
  if (!resp.ok) {
    const err = new Error(await problem(resp));
    err.status = resp.status;
    throw err;
  }
  return resp.json();
}

/// Who the key acts as (`/v1/me`), or null without a key the server accepts.
let me = null;

/// Asks the server who the key is, says it in words next to the key field, and shows the
/// controls that key may use: readers get no upload, re-index or delete.
async function whoami() {
  const status = $("key-status");
  const hasKey = !!sessionStorage.getItem(KEY);
  try {
    me = await api("/v1/me");
    const groups = me.groups.length ? `, groups ${me.groups.join(", ")}` : "";
    status.className = "hint";
    status.textContent = `Acting as ${me.role} of ${me.tenant}${groups}.`;
  } catch (err) {
    me = null;
    status.className = "error";
    if (err.status === 401 && !hasKey) {
      status.textContent = "This server needs an API key: paste one above (an admin makes keys with cairn keys create).";
    } else if (err.status === 401) {
      status.textContent = `The key was refused: ${err.message}`;
    } else {
      status.textContent = err.message;
    }
  }
  $("upload").hidden = !(me && me.role !== "reader");
}

const mayWrite = () => me && me.role !== "reader";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// ---- the passage panel -------------------------------------------------------------

const bytes = new TextEncoder();
const text = new TextDecoder();

/// Opens the side panel on `hit` (a passage), highlighting the byte range `span` of the
/// document (which lies inside the passage's own span).
function showPassage(hit, span, title) {
  $("panel-title").textContent = title || hit.title;
  const section = hit.heading_path && hit.heading_path.length ? ` · ${hit.heading_path.join(" › ")}` : "";
  $("panel-where").textContent = `page ${hit.page}${section} · ${hit.source}`;
  const body = $("panel-text");
  body.replaceChildren();
  const raw = bytes.encode(hit.text);
  const from = span ? Math.max(0, span.start - hit.span.start) : 0;
  const to = span ? Math.min(raw.length, span.end - hit.span.start) : 0;
  if (span && to > from) {
    body.append(text.decode(raw.slice(0, from)), el("mark", {}, text.decode(raw.slice(from, to))), text.decode(raw.slice(to)));
  } else {
    body.append(hit.text);
  }
  const graph = $("panel-graph");
  graph.replaceChildren();
  if (hit.chunk_id !== undefined) {
    graph.append(el("button", { class: "plain", type: "button", onclick: () => showConceptsOf(hit) }, "Concepts in this passage"));
  }
  $("panel").hidden = false;
  $("panel-close").focus();
}

// ---- the concept graph ---------------------------------------------------------------

const SVG_NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

/// The concepts a passage mentions (in the caller's graph), as buttons that open each one.
async function showConceptsOf(hit) {
  const box = $("panel-graph");
  box.replaceChildren(el("p", { class: "hint" }, "Finding concepts…"));
  try {
    const r = await api(`/v1/graph/concepts?chunk=${encodeURIComponent(hit.chunk_id)}&limit=12`);
    box.replaceChildren();
    if (!r.concepts.length) {
      box.append(el("p", { class: "hint" }, "No concept of this passage links it to another passage you may read."));
      return;
    }
    const chips = el("p", { class: "chips" }, "Concepts: ");
    for (const c of r.concepts) {
      chips.append(el("button", { class: "chip", type: "button", onclick: () => showConcept(c.key) }, c.key));
    }
    box.append(chips);
  } catch (err) {
    box.replaceChildren(el("p", { class: "error" }, err.message));
  }
}

/// A concept's neighbourhood drawn as SVG: the concept in the middle, its strongest
/// neighbours around it, each edge as thick as the sentences that name both. A neighbour
/// opens its own neighbourhood; an edge opens its evidence passage. The list below says the
/// same in words, for keyboards and screen readers.
async function showConcept(key) {
  const box = $("panel-graph");
  let d;
  try {
    d = await api(`/v1/graph/concepts/${encodeURIComponent(key)}?limit=8`);
  } catch (err) {
    box.replaceChildren(el("p", { class: "error" }, err.message));
    return;
  }
  const passage = (id) => d.passages.find((p) => p.chunk_id === id);
  $("panel-title").textContent = d.concept.key;
  $("panel-where").textContent = `${d.concept.kind} · in ${d.concept.chunks} passages you may read · ${d.neighbours.length} neighbours shown`;
  $("panel-text").replaceChildren();
  const W = 480, H = 340, cx = W / 2, cy = H / 2, R = 125;
  const drawing = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "graph", role: "img", "aria-label": `${d.concept.key} and its neighbours` });
  const nodes = [];
  const list = el("ul", { class: "neighbours" });
  d.neighbours.forEach((n, i) => {
    const a = (2 * Math.PI * i) / d.neighbours.length - Math.PI / 2;
    const x = cx + R * Math.cos(a), y = cy + R * Math.sin(a);
    const evidence = n.evidence.map(passage).filter(Boolean);
    const open = () => evidence.length && showPassage(evidence[0]);
    const line = svg("line", { x1: cx, y1: cy, x2: x, y2: y, class: "edge", "stroke-width": Math.min(6, 1 + n.sentences) });
    const hitArea = svg("line", { x1: cx, y1: cy, x2: x, y2: y, class: "hit", "data-edge": n.concept.key },
      svg("title", {}, `${n.sentences} sentences name ${d.concept.key} and ${n.concept.key}: open the evidence`));
    hitArea.addEventListener("click", open);
    drawing.append(line, hitArea);
    const node = svg("g", { class: "node", "data-concept": n.concept.key },
      svg("circle", { cx: x, cy: y, r: 6 }),
      svg("text", { x, y: y - 10, "text-anchor": "middle" }, n.concept.key));
    node.addEventListener("click", () => showConcept(n.concept.key));
    nodes.push(node);
    const item = el("li", {},
      el("button", { class: "chip", type: "button", onclick: () => showConcept(n.concept.key) }, n.concept.key),
      ` ${n.sentences} sentences `);
    for (const p of evidence) {
      item.append(el("button", { class: "plain", type: "button", onclick: () => showPassage(p) }, `${p.title} p.${p.page}`), " ");
    }
    list.append(item);
  });
  drawing.append(...nodes, svg("g", { class: "node centre" },
    svg("circle", { cx, cy, r: 9 }),
    svg("text", { x: cx, y: cy - 14, "text-anchor": "middle" }, d.concept.key)));
  const mentions = el("p", { class: "meta" }, "Mentioned in: ");
  for (const id of d.chunks) {
    const p = passage(id);
    if (p) mentions.append(el("button", { class: "plain", type: "button", onclick: () => showPassage(p) }, `${p.title} p.${p.page}`), " ");
  }
  box.replaceChildren(drawing, list, mentions);
  $("panel").hidden = false;
}

$("panel-close").addEventListener("click", () => { $("panel").hidden = true; });
document.addEventListener("keydown", (e) => { if (e.key === "Escape") $("panel").hidden = true; });

// ---- ask and search ----------------------------------------------------------------

function showAnswer(a) {
  const box = $("answer");
  box.replaceChildren();
  box.className = a.abstained ? "abstained" : "";
  const passageOf = (c) => a.passages.find((h) => h.chunk_id === c.chunk_id);
  if (a.abstained) {
    box.append(el("p", {}, a.answer));
    const list = el("ol");
    for (const h of a.passages) {
      list.append(el("li", {}, el("button", { class: "plain", type: "button", onclick: () => showPassage(h) },
        `${h.title} — p.${h.page}`)));
    }
    box.append(list);
  } else {
    if (a.needs_review) {
      box.append(el("p", { class: "review", role: "note" },
        `Check before relying on this answer (confidence ${a.confidence.toFixed(2)}): ${a.review_reason}.`));
    }
    const p = el("p");
    for (const s of a.sentences) {
      const flagged = s.supported === false;
      const why = s.entailed === false
        ? "the model judged that the cited passages do not entail it"
        : `not supported by the cited passage (support ${s.support.toFixed(2)})`;
      const span = el("span", flagged ? { class: "unsupported", title: why } : {}, s.text);
      p.append(span);
      for (const n of s.citations) {
        const c = a.citations.find((x) => x.n === n);
        if (!c) continue;
        p.append(el("button", {
          class: "cite", type: "button",
          title: s.attributed ? "cited by cairn: the model wrote this without a citation" : undefined,
          "aria-label": `citation ${n}: ${c.title}, page ${c.page}${s.attributed ? " (cited by cairn)" : ""}`,
          onclick: () => showPassage(passageOf(c) || { ...c, text: c.quote, heading_path: [] }, c.span, c.title),
        }, `[${n}]`));
      }
      p.append(" ");
    }
    box.append(p);
    if (a.unsupported > 0) {
      box.append(el("p", { class: "meta warn" }, `${a.unsupported} sentence${a.unsupported > 1 ? "s are" : " is"} not supported by the cited passages (underlined).`));
    }
    const sources = el("ol", { class: "meta" });
    for (const c of a.citations) sources.append(el("li", { value: c.n }, `${c.title} — p.${c.page}`));
    box.append(sources);
  }
  if (a.note) box.append(el("p", { class: "meta note" }, `Note: ${a.note}.`));
  box.hidden = false;
}

function showResults(r) {
  const list = $("results");
  list.replaceChildren();
  if (!r.results.length) list.append(el("li", {}, "No passages match."));
  for (const h of r.results) {
    const why = [h.bm25 && `bm25 #${h.bm25.rank}`, h.dense && `dense #${h.dense.rank}`, h.graph && `graph #${h.graph.rank}`, h.rerank && `rerank #${h.rerank.rank}`].filter(Boolean).join(", ");
    list.append(el("li", {},
      el("button", { class: "plain", type: "button", onclick: () => showPassage(h) }, `${h.title} — p.${h.page}`),
      el("div", { class: "meta" }, `score ${h.score.toFixed(4)} (${why})`),
      h.community ? el("div", { class: "meta" }, `topic ${h.community.id}: ${h.community.title}`) : "",
      el("div", {}, h.text.length > 300 ? h.text.slice(0, 300) + "…" : h.text)));
  }
  list.hidden = false;
}

/// Asks with `stream: true` and reads the Server-Sent Events as they come: the passages
/// found, then the answer's text piece by piece (shown as it arrives), then the whole
/// answer (`done`), which is returned.
async function askStreaming(question, status) {
  let resp;
  try {
    resp = await fetch("/v1/ask", {
      method: "POST",
      headers: headers({ "content-type": "application/json" }),
      body: JSON.stringify({ question, mode: $("mode").value, stream: true }),
    });
  } catch (_) {
    throw new Error("cannot reach the cairn server; is it running?");
  }
  if (!resp.ok) throw new Error(await problem(resp));
  const box = $("answer");
  const live = el("p", { class: "live" });
  box.replaceChildren(live);
  box.className = "";
  box.hidden = false;
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let name = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (!data) continue;
      const body = JSON.parse(data);
      if (name === "retrieval") status.textContent = `Found ${body.passages.length} passages; answering…`;
      else if (name === "token") live.append(body.text);
      else if (name === "done") return body;
      else if (name === "error") throw new Error(body.error.message);
    }
  }
  throw new Error("the answer stopped before it was complete");
}

$("ask-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  const status = $("ask-status");
  status.className = "";
  status.textContent = "Searching…";
  $("answer").hidden = true;
  $("results").hidden = true;
  try {
    if ($("search-only").checked) {
      const r = await api("/v1/search", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: question, top_k: 10, mode: $("mode").value }) });
      showResults(r);
      status.textContent = `${r.results.length} passages in ${Math.round(r.took_ms)} ms`;
    } else {
      const a = await askStreaming(question, status);
      showAnswer(a);
      const by = a.mode === "generated" ? ` by ${a.model}` : " (quoted from the documents)";
      status.textContent = a.abstained ? "The documents do not answer this." : `Answered${by} in ${Math.round(a.took_ms)} ms`;
    }
  } catch (err) {
    status.className = "error";
    status.textContent = err.message;
  }
});

// ---- upload --------------------------------------------------------------------------

/// Uploads one file with its own progress bar and state line.
function upload(file) {
  const bar = el("progress", { max: "100", value: "0", "aria-label": `upload of ${file.name}` });
  const state = el("span", { class: "state" }, "queued");
  $("uploads").append(el("li", {}, el("span", {}, file.name), bar, state));
  const set = (s, cls = "") => { state.textContent = s; state.className = `state ${cls}`; };
  return new Promise((resolve) => {
    const form = new FormData();
    form.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/v1/documents");
    for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) { bar.value = (100 * e.loaded) / e.total; set("uploading"); } };
    xhr.upload.onload = () => { bar.value = 100; set("parsing and indexing"); };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      if (xhr.status === 201 && body) {
        const failed = (body.failed || [])[0];
        if (failed) set(`failed: ${failed.error.message}`, "state-failed");
        else set("ready", "state-ready");
      } else {
        const why = body && body.failed && body.failed[0] ? body.failed[0].error.message
          : body && body.error ? body.error.message : `the server answered ${xhr.status}`;
        set(`failed: ${why}`, "state-failed");
      }
      resolve();
    };
    xhr.onerror = () => { set("failed: cannot reach the cairn server", "state-failed"); resolve(); };
    xhr.send(form);
  });
}

async function uploadAll(files) {
  for (const f of files) await upload(f);
  await loadLibrary();
}

const drop = $("drop");
$("files").addEventListener("change", (e) => uploadAll([...e.target.files]));
drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("files").click(); } });
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); uploadAll([...e.dataTransfer.files]); });

// ---- library -------------------------------------------------------------------------

let documents = [];

function kind(mime) {
  return { "application/pdf": "PDF", "text/markdown": "Markdown", "text/plain": "Text", "text/html": "HTML",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Word" }[mime] || mime;
}

function renderLibrary() {
  const q = $("filter").value.trim().toLowerCase();
  const rows = documents.filter((d) => !q || d.title.toLowerCase().includes(q) || d.source.toLowerCase().includes(q));
  const body = $("docs");
  body.replaceChildren();
  for (const d of rows) {
    const when = new Date(d.updated_at).toLocaleString();
    const actions = el("td", {});
    // Writers re-index uploads; a file on the server's disk needs an admin.
    if (mayWrite() && (d.origin === "upload" || me.role === "admin")) {
      actions.append(el("button", { class: "plain", type: "button", "aria-label": `re-index ${d.title}`, onclick: () => reindex(d) }, "Re-index"), " ");
    }
    if (mayWrite()) {
      actions.append(el("button", { class: "plain", type: "button", "aria-label": `delete ${d.title}`, onclick: () => remove(d) }, "Delete"));
    }
    body.append(el("tr", {}, el("td", {}, d.title), el("td", {}, kind(d.mime)), el("td", {}, String(d.pages)),
      el("td", {}, String(d.chunk_count)), el("td", {}, when), el("td", { class: "state-ready" }, "ready"), actions));
  }
  $("library-status").textContent = `${rows.length} of ${documents.length} documents`;
}

function libraryError(err) {
  $("library-status").className = "error";
  $("library-status").textContent = err.message;
}

async function loadLibrary() {
  if (!me) {
    documents = [];
    $("docs").replaceChildren();
    $("library-status").className = "";
    $("library-status").textContent = "";
    return;
  }
  try {
    documents = (await api("/v1/documents")).documents;
    renderLibrary();
  } catch (err) {
    libraryError(err);
  }
}

async function remove(d) {
  if (!confirm(`Delete "${d.title}"? It disappears from search and answers.`)) return;
  try {
    await api(`/v1/documents/${encodeURIComponent(d.id)}`, { method: "DELETE" });
    await loadLibrary();
  } catch (err) {
    libraryError(err);
  }
}

/// Reads a document again: its file on the server, or the original kept at upload.
async function reindex(d) {
  const status = $("library-status");
  status.className = "";
  status.textContent = `Re-indexing ${d.title}…`;
  try {
    const r = await api(`/v1/documents/${encodeURIComponent(d.id)}/reindex`, { method: "POST" });
    await loadLibrary();
    status.textContent = `${d.title}: ${r.document.status} (version ${r.document.version}, ${r.document.chunks} chunks)`;
  } catch (err) {
    libraryError(err);
  }
}

$("filter").addEventListener("input", renderLibrary);

// ---- start ---------------------------------------------------------------------------

$("api-key").value = sessionStorage.getItem(KEY) || "";
$("api-key").addEventListener("change", async (e) => {
  const v = e.target.value.trim();
  if (v) sessionStorage.setItem(KEY, v); else sessionStorage.removeItem(KEY);
  await whoami();
  await loadLibrary();
});
$("key-form").addEventListener("submit", (e) => e.preventDefault());

api("/healthz").then((h) => {
  if (h.max_upload_bytes) $("limit").textContent = `${Math.round(h.max_upload_bytes / (1024 * 1024))} MB`;
}).catch(() => {});
whoami().then(loadLibrary);

// A link can carry a question: /?q=...&search=1
const params = new URLSearchParams(location.search);
if (params.get("q")) {
  $("question").value = params.get("q");
  $("search-only").checked = params.get("search") === "1";
  $("ask-form").requestSubmit();
}
