// The upload-and-ask page in a real headless Chromium, driven by playwright-core:
// a `cairn serve` on a free loopback port with a scratch data dir; upload a PDF and a
// Markdown file through the page and wait for "ready"; re-index a document that was
// ingested from a path and one that was uploaded; ask a question whose answer is on page 3
// of the PDF and click its citation; delete a document and see it gone; upload a broken file
// and see its reason; upload a Chinese document, ask in Chinese, and see its title, the
// question and the answer drawn as text. Then, on a second server with the packaged language
// model, see a written answer stream in and its unsupported sentences marked. Then, on a
// server that needs keys: the page says in words that a key is missing, then that a bad one
// is refused; with a reader's key it shows the library by file name (never the server's
// path) and no upload, re-index or delete controls. Then, on a server with a small concept
// graph, open a passage's concepts, a concept's neighbourhood drawn as SVG, and an edge's
// evidence. Screenshots of each step go to
// $ARTIFACTS (default tests/browser/artifacts).
//
//   node tests/browser/page.test.mjs PATH/TO/cairn      (CAIRN_MODELS_DIR set)

import { chromium } from "playwright-core";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const cairn = process.argv[2];
if (!cairn || !existsSync(cairn)) {
  console.error("usage: node page.test.mjs PATH/TO/cairn");
  process.exit(2);
}
const artifacts = process.env.ARTIFACTS || join(here, "artifacts");
mkdirSync(artifacts, { recursive: true });
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";

const scratch = mkdtempSync(join(tmpdir(), "cairn-browser-"));
const files = join(scratch, "upload");
mkdirSync(files);
const pdf = join(root, "tests/fixtures/pdf/field-guide.pdf");
const md = join(files, "ferry-timetable.md");
writeFileSync(md, "# Ferry timetable\n\nThe zanderboat ferry leaves the north pier at 07:40 on weekdays.\n");
const broken = join(files, "broken.pdf");
writeFileSync(broken, "%PDF-1.4\nthis is not really a PDF\n");

// The server may re-read files under the scratch folder for the page ([ingest] roots).
const config = join(scratch, "cairn.toml");
writeFileSync(config, `[ingest]\nroots = [${JSON.stringify(files)}]\n`);

/// Starts `cairn serve` (`--no-auth` unless `keys`; with `env` added to its environment)
/// and resolves with its base URL.
function serve(env = {}, { keys = false, data = join(scratch, "data") } = {}) {
  const args = ["--data-dir", data, "serve", "--addr", "127.0.0.1:0"];
  if (!keys) args.push("--no-auth");
  const child = spawn(cairn, args, {
    stdio: ["ignore", "pipe", "inherit"],
    // Extractive answers unless `env` says otherwise (`auto` picks a generator on a
    // machine with a GPU or many cores).
    env: { ...process.env, CAIRN_CONFIG: config, CAIRN_GENERATE__BACKEND: "extractive", ...env },
  });
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("cairn serve did not start in 120 s")), 120_000);
    let buf = "";
    child.stdout.on("data", (d) => {
      buf += d;
      const m = buf.match(/cairn listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); ok({ child, base: m[1] }); }
    });
    child.once("exit", (code) => fail(new Error(`cairn serve exited with ${code}`)));
  });
}

let step = 0;
async function shot(page, name) {
  step += 1;
  await page.screenshot({ path: join(artifacts, `${String(step).padStart(2, "0")}-${name}.png`), fullPage: true });
}

// One document ingested from a path on the server before it starts: the library can
// re-index it.
const notes = join(files, "kiln-notes.md");
writeFileSync(notes, "# Kiln notes\n\nThe kiln is fired on Tuesdays.\n");
const ingest = spawn(cairn, ["--data-dir", join(scratch, "data"), "ingest", notes], { stdio: ["ignore", "ignore", "inherit"] });
assert.equal(await new Promise((ok) => ingest.once("exit", ok)), 0, "cairn ingest failed");

const { child, base } = await serve();
const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on("dialog", (d) => d.accept());
  await page.goto(base + "/");
  await page.getByRole("heading", { name: "Ask" }).waitFor();
  await shot(page, "empty");

  // Upload a PDF and a Markdown file through the picker; both become ready.
  await page.setInputFiles("#files", [pdf, md]);
  const rows = page.locator("#uploads li");
  await rows.filter({ hasText: "field-guide.pdf" }).locator(".state-ready").waitFor({ timeout: 120_000 });
  await rows.filter({ hasText: "ferry-timetable.md" }).locator(".state-ready").waitFor({ timeout: 120_000 });
  await page.locator("#docs tr", { hasText: "Cairn field guide" }).waitFor();
  await shot(page, "uploaded");
  // Every document offers Re-index: the path-ingested one re-reads its file, an uploaded one
  // its kept original; unchanged, neither changes.
  assert.equal(await page.getByRole("button", { name: /^re-index/ }).count(), 3);
  await page.getByRole("button", { name: "re-index Kiln notes" }).click();
  await page.locator("#library-status", { hasText: "Kiln notes: unchanged" }).waitFor();
  await page.getByRole("button", { name: "re-index Cairn field guide" }).click();
  await page.locator("#library-status", { hasText: "Cairn field guide: unchanged" }).waitFor();

  // Ask: the answer cites page 3 of the PDF; the citation opens the passage.
  await page.getByLabel("Question").fill("what guides the ptarmigan expedition home?");
  await page.getByRole("button", { name: "Ask", exact: true }).click();
  // The answer streams in; it is complete when its citation markers are links.
  await page.locator("#answer .cite").first().waitFor({ timeout: 60_000 });
  const answer = await page.locator("#answer").innerText();
  assert.match(answer, /ptarmigan expedition/);
  assert.match(answer, /\[1\]/);
  await shot(page, "answer");
  await page.locator("#answer .cite").first().click();
  await page.locator("#panel").waitFor({ state: "visible" });
  assert.match(await page.locator("#panel-where").innerText(), /page 3/);
  assert.match(await page.locator("#panel-text mark").innerText(), /ptarmigan expedition home/);
  await shot(page, "citation");
  await page.keyboard.press("Escape");
  await page.locator("#panel").waitFor({ state: "hidden" });

  // A question the documents do not answer: said so, with the closest passages.
  await page.getByLabel("Question").fill("how do I renew my passport at the embassy?");
  await page.getByRole("button", { name: "Ask", exact: true }).click();
  await page.locator("#answer.abstained").waitFor({ timeout: 60_000 });
  assert.match(await page.locator("#answer").innerText(), /do not answer/);
  assert.ok((await page.locator("#answer.abstained li").count()) > 0, "no closest passages shown");
  await shot(page, "abstained");

  // A narrow window: nothing is wider than the screen.
  await page.setViewportSize({ width: 380, height: 800 });
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 381, `the page is ${width} px wide in a 380 px window`);
  await shot(page, "narrow");
  await page.setViewportSize({ width: 1200, height: 900 });

  // Search only: the Markdown file's unique word finds it; after deleting it, nothing does.
  const searchFor = async (q) => {
    await page.getByLabel("Search only").check();
    await page.getByLabel("Question").fill(q);
    await page.getByRole("button", { name: "Ask", exact: true }).click();
    await page.locator("#results").waitFor({ state: "visible" });
    return page.locator("#results").innerText();
  };
  assert.match(await searchFor("zanderboat"), /Ferry timetable/);
  await shot(page, "search");
  await page.getByRole("button", { name: "delete Ferry timetable" }).click();
  await page.locator("#docs tr", { hasText: "Ferry timetable" }).waitFor({ state: "detached" });
  assert.doesNotMatch(await searchFor("zanderboat"), /Ferry timetable/);
  await shot(page, "deleted");

  // A broken file fails with its reason, and nothing else changes.
  await page.setInputFiles("#files", [broken]);
  const bad = rows.filter({ hasText: "broken.pdf" }).locator(".state-failed");
  await bad.waitFor({ timeout: 60_000 });
  assert.match(await bad.innerText(), /failed: .*broken\.pdf/);
  assert.equal(await page.locator("#docs tr").count(), 2);
  await shot(page, "failed-upload");

  // Chinese: a document's title, the question and the answer render as text (the CJK font
  // that tests/browser/run installs), not as the boxes of missing glyphs.
  const zh = join(files, "ferry-zh.md");
  writeFileSync(zh, "# 渡轮时刻表\n\n工作日早上七点四十分，渡轮从北码头出发。周末渡轮停运。\n");
  await page.setInputFiles("#files", [zh]);
  await rows.filter({ hasText: "ferry-zh.md" }).locator(".state-ready").waitFor({ timeout: 120_000 });
  await page.getByLabel("Search only").uncheck();
  await page.getByLabel("Question").fill("渡轮几点从北码头出发？");
  await page.getByRole("button", { name: "Ask", exact: true }).click();
  await page.locator("#ask-status", { hasText: /Answered|do not answer/ }).waitFor({ timeout: 60_000 });
  assert.match(await page.locator("#answer").innerText(), /北码头/);
  for (const [what, selector] of [
    ["title", "#docs tr:has-text('渡轮时刻表')"],
    ["question", "#question"],
    ["answer", "#answer"],
  ]) {
    const seen = await page.locator(selector).first().evaluate(glyphs);
    assert.ok(seen.han >= 4, `${what}: ${JSON.stringify(seen)}`);
    assert.equal(seen.boxes, "", `${what}: drawn as missing-glyph boxes in ${seen.font}`);
    assert.equal(seen.distinct, seen.han, `${what}: Han characters share glyphs: ${JSON.stringify(seen)}`);
  }
  await shot(page, "chinese");
} catch (e) {
  failed = true;
  console.error("browser test failed:", e);
} finally {
  await stop(child);
}

/// In the page: draws each distinct Han character of an element's text (an input's value)
/// in the element's own font and compares it with a code point no font has (U+2FE0,
/// unassigned), which every font draws as its missing-glyph box. Without a CJK font every
/// Han character is that box.
function glyphs(el) {
  const text = el.value ?? el.innerText;
  const han = [...new Set([...text].filter((c) => /\p{Script=Han}/u.test(c)))];
  const style = getComputedStyle(el);
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 48;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.font = `${style.fontWeight} 32px ${style.fontFamily}`;
  const draw = (c) => {
    ctx.clearRect(0, 0, 48, 48);
    ctx.fillText(c, 4, 36);
    return ctx.getImageData(0, 0, 48, 48).data.join(",");
  };
  const missing = draw("\u2FE0");
  const drawn = han.map(draw);
  return {
    han: han.length,
    boxes: han.filter((_, i) => drawn[i] === missing).join(""),
    distinct: new Set(drawn).size,
    font: style.fontFamily,
  };
}

/// Stops a server and waits for it (it flushes its indexes on the way out).
async function stop(server) {
  const exited = new Promise((ok) => server.once("exit", ok));
  server.kill("SIGTERM");
  await exited;
}

// With a language model (the packaged SmolLM2, greedy): the answer streams into the page
// piece by piece, and the sentences its citations do not support are underlined. The
// supported-share fallback is off, so the model's own text is what is shown.
if (!failed) {
  const { child: writer, base: wbase } = await serve({
    CAIRN_GENERATE__BACKEND: "local",
    CAIRN_GENERATE__MODEL: "smollm2-135m",
    CAIRN_GENERATE__MAX_TOKENS: "48",
    CAIRN_GENERATE__MIN_SUPPORTED_SHARE: "0",
    CAIRN_GENERATE__DROP_UNSUPPORTED: "false",
  });
  try {
    // Which sentences a 135M model writes shifts with every change to the arithmetic of its
    // kernels, so the question is picked through the API: the first of these that gets a
    // written answer with at least one unsupported sentence.
    const ask = async (question) => (await fetch(wbase + "/v1/ask", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ question }),
    })).json();
    let question, api;
    for (const q of [
      "how do you build a cairn?",
      "what do cairns mark?",
      "what guides the ptarmigan expedition home?",
    ]) {
      const a = await ask(q);
      assert.equal(a.mode, "generated", JSON.stringify(a));
      if (!a.abstained && a.unsupported > 0) { question = q; api = a; break; }
    }
    assert.ok(question, "the tiny model wrote no unsupported sentence to mark for any question");
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(wbase + "/");
    await page.getByRole("heading", { name: "Ask" }).waitFor();
    // Count the distinct texts the live answer shows while it streams.
    await page.evaluate(() => {
      window.liveTexts = new Set();
      new MutationObserver(() => {
        const live = document.querySelector("#answer .live");
        if (live && live.textContent) window.liveTexts.add(live.textContent);
      }).observe(document.getElementById("answer"), { childList: true, subtree: true, characterData: true });
    });
    await page.getByLabel("Question").fill(question);
    await page.getByRole("button", { name: "Ask", exact: true }).click();
    await page.locator("#ask-status", { hasText: /Answered|do not answer/ }).waitFor({ timeout: 120_000 });
    const pieces = await page.evaluate(() => window.liveTexts.size);
    assert.ok(pieces > 3, `the answer arrived in ${pieces} pieces, not token by token`);
    // The page shows what the API said (greedy decoding): the same number of unsupported
    // sentences.
    assert.match(await page.locator("#ask-status").innerText(), /Answered by smollm2-135m/);
    assert.equal(await page.locator("#answer .unsupported").count(), api.unsupported);
    assert.match(await page.locator("#answer").innerText(), /not supported by the cited passages/);
    // Unsupported sentences mark the answer for review, and the page says why.
    assert.equal(api.needs_review, true, JSON.stringify(api));
    const review = await page.locator("#answer .review").innerText();
    assert.ok(review.startsWith("Check before relying on this answer"), review);
    assert.ok(review.includes(api.review_reason), `${review} / ${api.review_reason}`);
    await shot(page, "generated-answer");
  } catch (e) {
    failed = true;
    console.error("browser test failed (generated answer):", e);
  } finally {
    await stop(writer);
  }
}

// A server that needs keys, seen with none, a bad one, and a reader's.
if (!failed) {
  const data = join(scratch, "keyed");
  const run = (args) => {
    const r = spawnSync(cairn, ["--data-dir", data, ...args], { encoding: "utf8" });
    assert.equal(r.status, 0, `cairn ${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };
  run(["ingest", notes]);
  const { child: keyed, base: kbase } = await serve({}, { keys: true, data });
  try {
    const reader = JSON.parse(run(["keys", "create", "--role", "reader", "--json"])).key;
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(kbase + "/");
    await page.locator("#key-status", { hasText: "This server needs an API key" }).waitFor();
    assert.equal(await page.locator("#upload").isVisible(), false, "upload shown without a key");
    await shot(page, "no-key");
    await page.getByLabel("API key").fill("cairn_not_a_real_key");
    await page.getByLabel("API key").press("Enter");
    await page.getByLabel("API key").blur();
    await page.locator("#key-status", { hasText: "The key was refused" }).waitFor();
    assert.match(await page.locator("#key-status").innerText(), /malformed/);
    await shot(page, "bad-key");
    await page.getByLabel("API key").fill(reader);
    await page.getByLabel("API key").blur();
    await page.locator("#key-status", { hasText: "Acting as reader of default" }).waitFor();
    await page.locator("#docs tr", { hasText: "Kiln notes" }).waitFor();
    assert.equal(await page.locator("#upload").isVisible(), false, "readers get no upload");
    assert.equal(await page.getByRole("button", { name: /^(re-index|delete) / }).count(), 0, "readers get no write controls");
    await page.getByLabel("Search only").check();
    await page.getByLabel("Question").fill("when is the kiln fired");
    await page.getByRole("button", { name: "Ask", exact: true }).click();
    await page.locator("#results button", { hasText: "Kiln notes" }).first().click();
    await page.locator("#panel").waitFor({ state: "visible" });
    assert.match(await page.locator("#panel-where").innerText(), /kiln-notes\.md/);
    const shown = await page.locator("body").innerText();
    assert.ok(!shown.includes(files), `a reader sees the server's path ${files}`);
    await shot(page, "reader");
  } catch (e) {
    failed = true;
    console.error("browser test failed (keys):", e);
  } finally {
    await stop(keyed);
  }
}

// The concept graph: a passage's concepts, a concept's neighbourhood drawn as SVG, an
// edge that opens its evidence passage.
if (!failed) {
  const data = join(scratch, "graph");
  const docs = join(scratch, "graph-docs");
  mkdirSync(docs);
  // The Quartz Relay and the Beacon Feed share three sentences in two documents: an edge.
  writeFileSync(join(docs, "relay.md"), "# Relay\n\nThe Quartz Relay forwards the Beacon Feed.\n\nRestart the Quartz Relay when the Beacon Feed stalls.\n");
  writeFileSync(join(docs, "gateway.md"), "# Gateway\n\nThe Quartz Relay hands the Beacon Feed to the Harbor Gateway.\n\nThe Harbor Gateway keeps the Audit Trail.\n");
  writeFileSync(join(docs, "vault.md"), "# Vault\n\nThe Obsidian Vault signs the Audit Trail.\n\nThe Harbor Gateway writes the Audit Trail nightly.\n");
  const r = spawnSync(cairn, ["--data-dir", data, "ingest", docs], { encoding: "utf8" });
  assert.equal(r.status, 0, `cairn ingest: ${r.stderr}`);
  const graphed = await serve({}, { data });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(graphed.base + "/");
    await page.getByRole("heading", { name: "Ask" }).waitFor();
    await page.getByLabel("Search only").check();
    await page.getByLabel("Retrieval").selectOption("mix");
    await page.getByLabel("Question").fill("restart the relay when the feed stalls");
    await page.getByRole("button", { name: "Ask", exact: true }).click();
    await page.locator("#results button", { hasText: "Relay" }).first().click();
    await page.locator("#panel").waitFor({ state: "visible" });
    await page.getByRole("button", { name: "Concepts in this passage" }).click();
    await page.locator("#panel-graph .chip", { hasText: "quartz relay" }).click();
    await page.locator("svg.graph").waitFor();
    assert.equal(await page.locator("#panel-title").innerText(), "quartz relay");
    assert.ok(await page.locator("svg.graph .node").count() >= 2, "the concept and a neighbour are drawn");
    await shot(page, "graph");
    // An edge opens the passage whose sentence names both of its concepts.
    const edge = page.locator("svg.graph line.hit").first();
    const other = await edge.getAttribute("data-edge");
    await edge.click({ force: true });
    await page.locator("#panel-text", { hasText: /Quartz Relay/ }).waitFor();
    const evidence = (await page.locator("#panel-text").innerText()).toLowerCase();
    assert.ok(evidence.includes(other), `the evidence names ${other}: ${evidence}`);
    await shot(page, "graph-evidence");
  } catch (e) {
    failed = true;
    console.error("browser test failed (graph):", e);
  } finally {
    await stop(graphed.child);
  }
}

await browser.close();
rmSync(scratch, { recursive: true, force: true });
if (!failed) console.log(`browser tests passed; screenshots in ${artifacts}`);
process.exit(failed ? 1 : 0);
