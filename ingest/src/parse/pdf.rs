//! PDF parsing: text page by page, with a fallback extractor, always isolated.
//!
//! Extraction ([`extract_in_process`]) loads the document with `lopdf`, refuses encrypted
//! files (after lopdf's own try of the empty user password), and reads each page with
//! `pdf-extract` (good word spacing and line breaks); a page on which pdf-extract fails or
//! panics is read with lopdf's own `extract_text` instead. A page neither can read stays in
//! the document as an empty page, so page numbers never shift.
//!
//! Whole-file failures that no `catch_unwind` can contain (endless loops, runaway memory,
//! stack overflows, aborts) are handled one level up ([`extract_pdf`]): with an
//! [`Isolation`](crate::isolate::Isolation) set, extraction runs in a child process with a
//! time and memory limit; when that child times out or dies, a second child runs the
//! lopdf extractor alone. Without isolation the same two steps run on a watchdog thread.
//!
//! [`parse`] turns the pages into a [`Parsed`]: page texts joined with
//! [`PAGE_SEPARATOR`], one paragraph block per run of text between blank lines, each with
//! its page; the title from the document info, else the first line, else the file name.

use super::outline::{self, OutlineEntry, Sections};
use super::{Block, BlockKind, Parsed, clip_title, trim_span};
use crate::error::IngestError;
use crate::isolate::{self, ChildOutcome, Isolation, WatchdogError};
use pdf_extract::Document;
use serde::{Deserialize, Serialize};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What separates two pages in [`Parsed::text`].
pub const PAGE_SEPARATOR: &str = "\n\x0c\n";

/// Which text extractor to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Extractor {
    /// pdf-extract per page, lopdf for the pages pdf-extract fails on.
    Auto,
    /// pdf-extract only.
    PdfExtract,
    /// lopdf's `extract_text` only (the fallback).
    Lopdf,
}

impl Extractor {
    pub fn name(self) -> &'static str {
        match self {
            Extractor::Auto => "auto",
            Extractor::PdfExtract => "pdf-extract",
            Extractor::Lopdf => "lopdf",
        }
    }

    pub fn from_name(name: &str) -> Option<Extractor> {
        [Extractor::Auto, Extractor::PdfExtract, Extractor::Lopdf]
            .into_iter()
            .find(|e| e.name() == name)
    }
}

/// The text of a PDF, page by page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PdfPages {
    /// One entry per page, in order (empty for a page without text).
    pub pages: Vec<String>,
    /// The document info's title, if it has one.
    pub title: Option<String>,
    /// Which extractor gave the text: `pdf-extract`, `lopdf`, or `pdf-extract+lopdf`.
    pub extractor: String,
    /// Pages whose text came from the lopdf fallback.
    pub fallback_pages: u32,
    /// Pages no extractor could read (kept as empty pages).
    pub failed_pages: u32,
    /// The document's outline (bookmarks), empty when it has none.
    #[serde(default)]
    pub outline: Vec<OutlineEntry>,
}

/// Why a PDF gave no text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// Zero bytes.
    Empty,
    /// Not a PDF, or damaged (truncated, bad cross-reference table).
    Malformed,
    /// Needs a password.
    Encrypted,
    /// Readable, but no page has any text: scanned, or only drawings.
    NoText,
    /// No page could be read by any extractor.
    Unreadable,
    /// The parser ran past its time limit.
    TimedOut,
    /// The parser died (out of memory, stack overflow, abort) or panicked outright.
    Crashed,
}

/// A PDF that gave no text, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct PdfFailure {
    pub kind: FailureKind,
    pub message: String,
}

impl PdfFailure {
    fn new(kind: FailureKind, message: impl Into<String>) -> PdfFailure {
        PdfFailure {
            kind,
            message: message.into(),
        }
    }

    /// Whether another extractor could do better: only after a timeout or a crash.
    fn worth_a_fallback(&self) -> bool {
        matches!(self.kind, FailureKind::TimedOut | FailureKind::Crashed)
    }
}

/// The parser [`Parsed`] for a PDF's bytes.
pub(crate) fn parse(bytes: &[u8], file: &str, stem: &str) -> Result<Parsed, IngestError> {
    let pages = extract_pdf(bytes).map_err(|f| IngestError::Pdf {
        file: file.to_string(),
        reason: f.message,
    })?;
    Ok(build(&pages, stem))
}

/// Extracts a PDF's pages the way cairn does: isolated (child process when
/// [`set_isolation`](crate::isolate::set_isolation) was called, else a watchdog thread),
/// [`Extractor::Auto`] first and [`Extractor::Lopdf`] after a timeout or crash.
pub fn extract_pdf(bytes: &[u8]) -> Result<PdfPages, PdfFailure> {
    with_fallback(|extractor| extract_pdf_with(bytes, extractor))
}

/// Runs one extractor, isolated like [`extract_pdf`], without the fallback step.
pub fn extract_pdf_with(bytes: &[u8], extractor: Extractor) -> Result<PdfPages, PdfFailure> {
    match isolate::isolation() {
        Some(iso) => in_child(iso, bytes, extractor),
        None => on_watchdog(
            bytes,
            extractor,
            isolate::DEFAULT_TIMEOUT,
            extract_in_process,
        ),
    }
}

/// The primary extractor, then the fallback when the primary timed out or crashed. When
/// both fail, the primary's failure is reported, with the fallback's reason added.
fn with_fallback(
    mut run: impl FnMut(Extractor) -> Result<PdfPages, PdfFailure>,
) -> Result<PdfPages, PdfFailure> {
    let first = match run(Extractor::Auto) {
        Ok(pages) => return Ok(pages),
        Err(f) if !f.worth_a_fallback() => return Err(f),
        Err(f) => f,
    };
    match run(Extractor::Lopdf) {
        Ok(pages) => Ok(pages),
        Err(second) if !second.worth_a_fallback() => Err(second),
        Err(second) => Err(PdfFailure::new(
            first.kind,
            format!("{}; fallback: {}", first.message, second.message),
        )),
    }
}

/// Runs `extract` on a watchdog thread (see [`isolate::run_with_watchdog`]).
fn on_watchdog(
    bytes: &[u8],
    extractor: Extractor,
    timeout: std::time::Duration,
    extract: fn(&[u8], Extractor) -> Result<PdfPages, PdfFailure>,
) -> Result<PdfPages, PdfFailure> {
    let owned = bytes.to_vec();
    match isolate::run_with_watchdog(move || extract(&owned, extractor), timeout) {
        Ok(result) => result,
        Err(WatchdogError::TimedOut) => Err(timed_out(timeout)),
        Err(WatchdogError::Panicked(msg)) => Err(PdfFailure::new(
            FailureKind::Crashed,
            format!("PDF parser crashed (panic: {msg})"),
        )),
    }
}

fn timed_out(timeout: std::time::Duration) -> PdfFailure {
    PdfFailure::new(
        FailureKind::TimedOut,
        format!("PDF parser timed out after {} s", timeout.as_secs_f64()),
    )
}

/// Runs `extractor` in a `parse-worker` child process.
fn in_child(iso: &Isolation, bytes: &[u8], extractor: Extractor) -> Result<PdfPages, PdfFailure> {
    let args = [
        "pdf".to_string(),
        "--extractor".to_string(),
        extractor.name().to_string(),
        "--max-memory-bytes".to_string(),
        iso.max_memory_bytes.to_string(),
    ];
    let crashed =
        |why: String| PdfFailure::new(FailureKind::Crashed, format!("PDF parser crashed ({why})"));
    match isolate::run_child(iso, &args, bytes) {
        Err(e) => Err(crashed(format!("cannot start {}: {e}", iso.exe.display()))),
        Ok(ChildOutcome::TimedOut { after }) => Err(timed_out(after)),
        Ok(ChildOutcome::Exited {
            status,
            stdout,
            stderr_tail,
        }) => {
            if !status.success() {
                return Err(crashed(isolate::describe_exit(
                    status,
                    &stderr_tail,
                    iso.max_memory_bytes,
                )));
            }
            match serde_json::from_slice::<Reply>(&stdout) {
                Ok(Reply::Pages(pages)) => Ok(pages),
                Ok(Reply::Error { error }) => Err(error),
                Err(e) => Err(crashed(format!("unreadable reply: {e}"))),
            }
        }
    }
}

/// What a worker writes on its standard output.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Reply {
    Pages(PdfPages),
    Error { error: PdfFailure },
}

/// The worker's JSON reply for `bytes` (see [`isolate::run_worker`]).
/// `pages_known` hears the page count as soon as it is known.
pub(crate) fn worker_reply(
    bytes: &[u8],
    extractor: Extractor,
    pages_known: &mut dyn FnMut(usize),
) -> String {
    let result = catch_unwind(AssertUnwindSafe(|| {
        extract_announcing(bytes, extractor, pages_known)
    }))
    .unwrap_or_else(|p| {
        Err(PdfFailure::new(
            FailureKind::Crashed,
            format!(
                "PDF parser crashed (panic: {})",
                cairn_core::panic_message(p.as_ref())
            ),
        ))
    });
    let reply = match result {
        Ok(pages) => Reply::Pages(pages),
        Err(error) => Reply::Error { error },
    };
    serde_json::to_string(&reply).unwrap_or_else(|e| {
        format!(r#"{{"error":{{"kind":"crashed","message":"cannot encode the reply: {e}"}}}}"#)
    })
}

/// Extracts the text of every page in this process (panics inside one page's extraction
/// are caught; loops and memory blow-ups are not: see [`extract_pdf`]).
pub fn extract_in_process(bytes: &[u8], extractor: Extractor) -> Result<PdfPages, PdfFailure> {
    extract_announcing(bytes, extractor, &mut |_| {})
}

/// [`extract_in_process`], calling `pages_known` with the page count as soon as the
/// document has loaded (before the slow part, reading the pages).
fn extract_announcing(
    bytes: &[u8],
    extractor: Extractor,
    pages_known: &mut dyn FnMut(usize),
) -> Result<PdfPages, PdfFailure> {
    if bytes.is_empty() {
        return Err(PdfFailure::new(FailureKind::Empty, "empty file (0 bytes)"));
    }
    let head = &bytes[..bytes.len().min(1024)];
    if !head.windows(5).any(|w| w == b"%PDF-") {
        return Err(PdfFailure::new(
            FailureKind::Malformed,
            "not a PDF (no %PDF- header)",
        ));
    }
    let doc = match catch_unwind(|| Document::load_mem(bytes)) {
        Ok(Ok(doc)) => doc,
        Ok(Err(pdf_extract::Error::InvalidPassword | pdf_extract::Error::Decryption(_))) => {
            return Err(encrypted());
        }
        Ok(Err(e)) => {
            return Err(PdfFailure::new(
                FailureKind::Malformed,
                format!("damaged or truncated PDF ({e})"),
            ));
        }
        Err(p) => {
            return Err(PdfFailure::new(
                FailureKind::Malformed,
                format!(
                    "damaged or truncated PDF (panic: {})",
                    cairn_core::panic_message(p.as_ref())
                ),
            ));
        }
    };
    // lopdf already tried the empty user password; still encrypted means it needs one.
    if doc.is_encrypted() {
        return Err(encrypted());
    }
    let numbers: Vec<u32> = doc.get_pages().keys().copied().collect();
    if numbers.is_empty() {
        return Err(PdfFailure::new(FailureKind::Malformed, "PDF has no pages"));
    }
    pages_known(numbers.len());
    let mut pages = Vec::with_capacity(numbers.len());
    let (mut primary, mut fallback, mut failed) = (0u32, 0u32, 0u32);
    let mut first_error = None;
    for &n in &numbers {
        let primary_text = match extractor {
            Extractor::Auto | Extractor::PdfExtract => page_with_pdf_extract(&doc, n),
            Extractor::Lopdf => Err(String::new()),
        };
        let text = match (primary_text, extractor) {
            (Ok(t), _) => {
                primary += 1;
                Some(t)
            }
            (Err(e), Extractor::PdfExtract) => {
                first_error.get_or_insert(e);
                None
            }
            (Err(_), _) => match page_with_lopdf(&doc, n) {
                Ok(t) => {
                    fallback += 1;
                    Some(t)
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                    None
                }
            },
        };
        if text.is_none() {
            failed += 1;
        }
        pages.push(clean_page(&text.unwrap_or_default()));
    }
    if failed as usize == numbers.len() {
        let why = first_error.unwrap_or_default();
        return Err(PdfFailure::new(
            FailureKind::Unreadable,
            format!("no page could be read ({why})"),
        ));
    }
    if pages.iter().all(|p| p.is_empty()) {
        return Err(PdfFailure::new(FailureKind::NoText, "no text (scanned?)"));
    }
    let extractor = match (primary, fallback) {
        (_, 0) => "pdf-extract",
        (0, _) => "lopdf",
        _ => "pdf-extract+lopdf",
    };
    Ok(PdfPages {
        pages,
        title: info_title(&doc),
        extractor: extractor.to_string(),
        fallback_pages: fallback,
        failed_pages: failed,
        outline: catch_unwind(AssertUnwindSafe(|| outline::read(&doc))).unwrap_or_default(),
    })
}

fn encrypted() -> PdfFailure {
    PdfFailure::new(FailureKind::Encrypted, "encrypted PDF (needs a password)")
}

fn page_with_pdf_extract(doc: &Document, page: u32) -> Result<String, String> {
    let mut text = String::new();
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut out = pdf_extract::PlainTextOutput::new(&mut text);
        pdf_extract::output_doc_page(doc, &mut out, page)
    }));
    match result {
        Ok(Ok(())) => Ok(text),
        Ok(Err(e)) => Err(format!("pdf-extract: {e}")),
        Err(p) => Err(format!(
            "pdf-extract panicked: {}",
            cairn_core::panic_message(p.as_ref())
        )),
    }
}

fn page_with_lopdf(doc: &Document, page: u32) -> Result<String, String> {
    match catch_unwind(AssertUnwindSafe(|| doc.extract_text(&[page]))) {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(format!("lopdf: {e}")),
        Err(p) => Err(format!(
            "lopdf panicked: {}",
            cairn_core::panic_message(p.as_ref())
        )),
    }
}

/// Normalises one page's text: `\n` line ends, no control characters (the form feed is
/// the page separator), no trailing spaces, at most one blank line in a row, and words
/// hyphenated across a line end joined (`docu-\nment` → `document`).
fn clean_page(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut blank_run = 0usize;
    let raw = raw.replace("\r\n", "\n").replace('\r', "\n");
    for line in raw.split('\n') {
        let line: String = line
            .chars()
            .map(|c| if c == '\t' { ' ' } else { c })
            .filter(|c| !c.is_control())
            .collect();
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            if blank_run > 0 {
                out.push_str("\n\n");
            } else if ends_with_hyphenated_word(&out) && starts_lowercase(line) {
                out.pop(); // the hyphen
                out.push_str(line.trim_start());
                blank_run = 0;
                continue;
            } else {
                out.push('\n');
            }
        }
        blank_run = 0;
        out.push_str(line);
    }
    out.trim().to_string()
}

fn ends_with_hyphenated_word(s: &str) -> bool {
    let mut rev = s.chars().rev();
    rev.next() == Some('-') && rev.next().is_some_and(char::is_alphabetic)
}

fn starts_lowercase(line: &str) -> bool {
    line.trim_start()
        .chars()
        .next()
        .is_some_and(char::is_lowercase)
}

/// Builds the [`Parsed`] document from extracted pages. Outline entries become heading
/// blocks where their titles are found in the page text, and set the heading path of what
/// follows them.
fn build(pdf: &PdfPages, stem: &str) -> Parsed {
    let mut text = String::new();
    let mut blocks = Vec::new();
    let mut sections = Sections::new(&pdf.outline);
    for (i, page) in pdf.pages.iter().enumerate() {
        if i > 0 {
            text.push_str(PAGE_SEPARATOR);
        }
        let base = text.len();
        text.push_str(page);
        let page_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let mut path = sections.path().to_vec();
        // The openings as (start, end, path) in page bytes, in text order: a found title
        // spans its words; one not found opens (empty) where the previous one ended.
        let mut cursor = 0;
        let openings: Vec<(usize, usize, Vec<String>)> = sections
            .openings(page_no, page)
            .into_iter()
            .map(|o| {
                let (s, e) = o.at.unwrap_or((cursor, cursor));
                cursor = e;
                (s, e, o.path)
            })
            .collect();
        let mut openings = openings.into_iter().peekable();
        let mut push = |from: usize, to: usize, kind, path: &[String]| {
            if let Some(span) = trim_span(&text, base + from, base + to) {
                blocks.push(Block {
                    span,
                    page: page_no,
                    heading_path: path.to_vec(),
                    kind,
                });
            }
        };
        // Paragraphs run between blank lines; an opening inside one splits it.
        let mut done = 0; // page bytes already placed in a block
        let mut start = 0;
        for (at, _) in page.match_indices("\n\n").chain([(page.len(), "")]) {
            if at < start {
                continue;
            }
            while let Some((s, e, new_path)) = openings.next_if(|o| o.0 < at || at == page.len()) {
                let from = start.max(done);
                if s > from {
                    push(from, s, BlockKind::Paragraph, &path);
                }
                if e > s {
                    push(s.max(done), e, BlockKind::Heading, &new_path);
                }
                done = done.max(e);
                path = new_path;
            }
            let from = start.max(done);
            if at > from {
                push(from, at, BlockKind::Paragraph, &path);
            }
            done = done.max(at);
            start = at + 2;
        }
    }
    let title = pdf
        .title
        .as_deref()
        .filter(|t| sensible_title(t))
        .map(clip_title)
        .or_else(|| {
            pdf.pages
                .iter()
                .flat_map(|p| p.lines())
                .map(str::trim)
                .find(|l| l.chars().any(char::is_alphanumeric))
                .map(clip_title)
        })
        .unwrap_or_else(|| stem.to_string());
    Parsed {
        text,
        title,
        mime: "application/pdf",
        pages: u32::try_from(pdf.pages.len()).unwrap_or(u32::MAX),
        blocks,
    }
}

/// The document info's `Title`, decoded like any PDF text string
/// ([`outline::decode_text`]).
fn info_title(doc: &Document) -> Option<String> {
    let info = doc.trailer.get(b"Info").ok()?;
    let (_, info) = doc.dereference(info).ok()?;
    let title = info.as_dict().ok()?.get(b"Title").ok()?;
    let (_, title) = doc.dereference(title).ok()?;
    let collapsed = outline::decode_text(title.as_str().ok()?);
    (!collapsed.is_empty()).then_some(collapsed)
}

/// Whether an info title is worth showing: has letters, and is not a placeholder or a
/// file name left behind by the authoring tool.
fn sensible_title(t: &str) -> bool {
    let lower = t.trim().to_lowercase();
    let placeholders = ["untitled", "title", "document", "no title", "slide 1"];
    let file_like = [
        ".dvi", ".tex", ".pdf", ".doc", ".docx", ".ps", ".eps", ".indd", ".ppt", ".pptx", ".rtf",
        ".txt", ".odt",
    ];
    lower.chars().filter(|c| c.is_alphabetic()).count() >= 2
        && !placeholders.contains(&lower.as_str())
        && !lower.starts_with("microsoft word - ")
        && !file_like.iter().any(|ext| lower.ends_with(ext))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::parse::test_blocks;
    use lopdf::content::{Content, Operation};
    use lopdf::{Object, Stream, dictionary};

    /// A PDF whose pages hold `pages[i]` as lines of Helvetica text; a page with no lines
    /// draws a rectangle only.
    pub(crate) fn make_pdf(pages: &[&[&str]], title: Option<&str>) -> Vec<u8> {
        make_outlined_pdf(pages, title, &[])
    }

    /// [`make_pdf`] with an outline of `(level, title, page, named)` entries, in order;
    /// a `named` entry points at its page through a named destination.
    pub(crate) fn make_outlined_pdf(
        pages: &[&[&str]],
        title: Option<&str>,
        outline: &[(u32, &str, usize, bool)],
    ) -> Vec<u8> {
        let mut doc = lopdf::Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font_id = doc.add_object(dictionary! {
            "Type" => "Font",
            "Subtype" => "Type1",
            "BaseFont" => "Helvetica",
            "Encoding" => "WinAnsiEncoding",
        });
        let resources_id = doc.add_object(dictionary! {
            "Font" => dictionary! { "F1" => font_id },
        });
        let mut kids = Vec::new();
        for lines in pages {
            let mut ops = Vec::new();
            if lines.is_empty() {
                ops.push(Operation::new(
                    "re",
                    vec![100.into(), 100.into(), 200.into(), 200.into()],
                ));
                ops.push(Operation::new("f", vec![]));
            } else {
                ops.push(Operation::new("BT", vec![]));
                ops.push(Operation::new("Tf", vec!["F1".into(), 12.into()]));
                ops.push(Operation::new("TL", vec![14.into()]));
                ops.push(Operation::new("Td", vec![72.into(), 760.into()]));
                for line in *lines {
                    ops.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
                    ops.push(Operation::new("T*", vec![]));
                }
                ops.push(Operation::new("ET", vec![]));
            }
            let content = Content { operations: ops };
            let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
            let page_id = doc.add_object(dictionary! {
                "Type" => "Page",
                "Parent" => pages_id,
                "Contents" => content_id,
            });
            kids.push(Object::from(page_id));
        }
        let count = i64::try_from(kids.len()).unwrap();
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages",
                "Kids" => kids.clone(),
                "Count" => count,
                "Resources" => resources_id,
                "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            }),
        );
        let mut catalog = dictionary! {
            "Type" => "Catalog",
            "Pages" => pages_id,
        };
        if !outline.is_empty() {
            let root = doc.new_object_id();
            let ids: Vec<_> = outline.iter().map(|_| doc.new_object_id()).collect();
            let mut dests = lopdf::Dictionary::new();
            // Each entry's parent: the nearest earlier entry one level up, else the root.
            let parent = |i: usize| {
                (0..i)
                    .rev()
                    .find(|&j| outline[j].0 < outline[i].0)
                    .map_or(root, |j| ids[j])
            };
            for (i, &(_, title, page, named)) in outline.iter().enumerate() {
                let siblings: Vec<usize> = (0..outline.len())
                    .filter(|&j| parent(j) == parent(i))
                    .collect();
                let at = siblings.iter().position(|&j| j == i).unwrap();
                let children: Vec<usize> = (0..outline.len())
                    .filter(|&j| parent(j) == ids[i])
                    .collect();
                let target = Object::Array(vec![kids[page - 1].clone(), "Fit".into()]);
                let mut item = dictionary! {
                    "Title" => Object::string_literal(title),
                    "Parent" => parent(i),
                };
                if named {
                    let name = format!("dest{i}");
                    dests.set(name.clone(), target);
                    item.set("Dest", Object::Name(name.into_bytes()));
                } else {
                    item.set("Dest", target);
                }
                if at > 0 {
                    item.set("Prev", ids[siblings[at - 1]]);
                }
                if let Some(&next) = siblings.get(at + 1) {
                    item.set("Next", ids[next]);
                }
                if let (Some(&f), Some(&l)) = (children.first(), children.last()) {
                    item.set("First", ids[f]);
                    item.set("Last", ids[l]);
                }
                doc.objects.insert(ids[i], Object::Dictionary(item));
            }
            let top: Vec<usize> = (0..outline.len()).filter(|&j| parent(j) == root).collect();
            doc.objects.insert(
                root,
                Object::Dictionary(dictionary! {
                    "Type" => "Outlines",
                    "First" => ids[top[0]],
                    "Last" => ids[*top.last().unwrap()],
                }),
            );
            catalog.set("Outlines", root);
            let dests_id = doc.add_object(Object::Dictionary(dests));
            catalog.set("Dests", dests_id);
        }
        let catalog_id = doc.add_object(catalog);
        doc.trailer.set("Root", catalog_id);
        if let Some(t) = title {
            let info_id = doc.add_object(dictionary! { "Title" => Object::string_literal(t) });
            doc.trailer.set("Info", info_id);
        }
        let mut out = Vec::new();
        doc.save_to(&mut out).unwrap();
        out
    }

    fn three_pages() -> Vec<u8> {
        make_pdf(
            &[
                &["Quarterly report", "", "Revenue grew in the north."],
                &["Second page talks about costs."],
                &["The zebra migration happens on page three."],
            ],
            None,
        )
    }

    fn block_texts(p: &Parsed) -> Vec<(u32, &str)> {
        p.blocks
            .iter()
            .map(|b| (b.page, &p.text[b.span.start..b.span.end]))
            .collect()
    }

    #[test]
    fn pages_keep_their_numbers() {
        let p = parse(&three_pages(), "r.pdf", "r").unwrap();
        assert_eq!(p.pages, 3);
        assert_eq!(p.mime, "application/pdf");
        assert_eq!(p.text.matches(PAGE_SEPARATOR).count(), 2);
        let blocks = block_texts(&p);
        assert!(
            blocks
                .iter()
                .any(|(n, t)| *n == 3 && t.contains("zebra migration")),
            "{blocks:?}"
        );
        assert!(blocks.iter().any(|(n, t)| *n == 2 && t.contains("costs")));
        assert!(blocks.iter().all(|(n, t)| *n != 1 || !t.contains("zebra")));
        assert_eq!(p.title, "Quarterly report");
        for b in &p.blocks {
            let t = &p.text[b.span.start..b.span.end];
            assert_eq!(t, t.trim());
            assert!(!t.is_empty() && !t.contains('\x0c'));
        }
        assert!(
            p.blocks
                .windows(2)
                .all(|w| w[0].span.end <= w[1].span.start)
        );
    }

    #[test]
    fn both_extractors_read_the_pages() {
        for ex in [Extractor::Auto, Extractor::PdfExtract, Extractor::Lopdf] {
            let pages = extract_in_process(&three_pages(), ex).unwrap();
            assert_eq!(pages.pages.len(), 3, "{ex:?}");
            assert!(
                pages.pages[2].contains("zebra"),
                "{ex:?}: {:?}",
                pages.pages
            );
            assert_eq!(pages.failed_pages, 0);
        }
        let lo = extract_in_process(&three_pages(), Extractor::Lopdf).unwrap();
        assert_eq!(lo.extractor, "lopdf");
        let auto = extract_in_process(&three_pages(), Extractor::Auto).unwrap();
        assert_eq!(auto.extractor, "pdf-extract");
    }

    #[test]
    fn info_title_wins_when_sensible() {
        let pdf = make_pdf(&[&["Body line"]], Some("Annual Review 2024"));
        assert_eq!(
            parse(&pdf, "a.pdf", "a").unwrap().title,
            "Annual Review 2024"
        );
        let pdf = make_pdf(&[&["Body line"]], Some("report.dvi"));
        assert_eq!(parse(&pdf, "a.pdf", "a").unwrap().title, "Body line");
    }

    #[test]
    fn outline_entries_become_heading_paths() {
        let pdf = make_outlined_pdf(
            &[
                &["Installing the system", "", "Boot from the USB stick."],
                &[
                    "Back up before partitioning.",
                    "",
                    "Disk layout",
                    "",
                    "Use one partition per disk.",
                ],
                &["Zebra notes without a title line."],
            ],
            None,
            &[
                (1, "Installing the system", 1, false),
                (2, "Disk layout", 2, false),
                (1, "Appendix", 3, true),
            ],
        );
        let pages = extract_in_process(&pdf, Extractor::Auto).unwrap();
        assert_eq!(pages.outline.len(), 3, "{:?}", pages.outline);
        assert_eq!(pages.outline[2].page, 3, "named destination resolved");
        let p = parse(&pdf, "o.pdf", "o").unwrap();
        let install = vec!["Installing the system"];
        let layout = vec!["Installing the system", "Disk layout"];
        assert_eq!(
            test_blocks(&p),
            vec![
                (BlockKind::Heading, "Installing the system", install.clone()),
                (
                    BlockKind::Paragraph,
                    "Boot from the USB stick.",
                    install.clone()
                ),
                (
                    BlockKind::Paragraph,
                    "Back up before partitioning.",
                    install
                ),
                (BlockKind::Heading, "Disk layout", layout.clone()),
                (BlockKind::Paragraph, "Use one partition per disk.", layout),
                (
                    BlockKind::Paragraph,
                    "Zebra notes without a title line.",
                    vec!["Appendix"]
                ),
            ]
        );
        // The chunker keeps sections (and pages) apart and each chunk keeps its path.
        let chunks = crate::chunk(&p, &crate::chunk::tests::Words, 1000);
        let paths: Vec<String> = chunks.iter().map(|c| c.heading_path.join(" > ")).collect();
        assert_eq!(
            paths,
            [
                "Installing the system",
                "Installing the system",
                "Installing the system > Disk layout",
                "Appendix"
            ]
        );
    }

    #[test]
    fn an_outline_with_a_cycle_is_read_once() {
        let pdf = make_outlined_pdf(
            &[&["Alpha text."], &["Beta text."]],
            None,
            &[(1, "Alpha", 1, false), (1, "Beta", 2, false)],
        );
        let mut doc = lopdf::Document::load_mem(&pdf).unwrap();
        // Point the last entry's Next back at the first.
        let ids: Vec<_> = doc
            .objects
            .iter()
            .filter(|(_, o)| {
                o.as_dict()
                    .is_ok_and(|d| d.has(b"Title") && d.has(b"Parent"))
            })
            .map(|(id, _)| *id)
            .collect();
        let (first, last) = (ids[0], ids[1]);
        doc.get_dictionary_mut(last).unwrap().set("Next", first);
        doc.get_dictionary_mut(first).unwrap().set("Next", last);
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();
        let pages = extract_in_process(&bytes, Extractor::Auto).unwrap();
        assert_eq!(pages.outline.len(), 2, "{:?}", pages.outline);
    }

    #[test]
    fn a_blank_page_keeps_its_number() {
        let pdf = make_pdf(&[&["First page text."], &[], &["Third page text."]], None);
        let p = parse(&pdf, "b.pdf", "b").unwrap();
        assert_eq!(p.pages, 3);
        assert_eq!(
            block_texts(&p),
            vec![(1, "First page text."), (3, "Third page text.")]
        );
    }

    #[test]
    fn pages_without_text_are_reported_as_scanned() {
        let pdf = make_pdf(&[&[], &[]], None);
        let e = parse(&pdf, "scan.pdf", "scan").unwrap_err();
        assert_eq!(e.to_string(), "scan.pdf: no text (scanned?)");
        assert_eq!(e.kind(), cairn_core::ErrorKind::User);
    }

    #[test]
    fn broken_files_give_clear_errors() {
        let e = parse(b"", "zero.pdf", "zero").unwrap_err();
        assert_eq!(e.to_string(), "zero.pdf: empty file (0 bytes)");
        let e = parse(b"hello world", "fake.pdf", "fake").unwrap_err();
        assert_eq!(e.to_string(), "fake.pdf: not a PDF (no %PDF- header)");
        let full = three_pages();
        for cut in [10, full.len() / 3, full.len() / 2] {
            let e = parse(&full[..cut], "cut.pdf", "cut").unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("cut.pdf: "), "{msg}");
            assert_eq!(e.kind(), cairn_core::ErrorKind::User, "{msg}");
        }
        let mut garbage = b"%PDF-1.4\n".to_vec();
        garbage.extend((0..4000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        let e = parse(&garbage, "junk.pdf", "junk").unwrap_err();
        assert!(e.to_string().starts_with("junk.pdf: "), "{e}");
    }

    #[test]
    fn encrypted_pdfs_are_refused() {
        let mut doc = lopdf::Document::load_mem(&three_pages()).unwrap();
        let id = Object::string_literal(&b"0123456789abcdef"[..]);
        doc.trailer.set("ID", vec![id.clone(), id]);
        let version = lopdf::EncryptionVersion::V2 {
            document: &doc,
            owner_password: "owner",
            user_password: "secret",
            key_length: 128,
            permissions: lopdf::Permissions::all(),
        };
        let state = lopdf::EncryptionState::try_from(version).unwrap();
        doc.encrypt(&state).unwrap();
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();
        let e = parse(&bytes, "locked.pdf", "locked").unwrap_err();
        assert_eq!(
            e.to_string(),
            "locked.pdf: encrypted PDF (needs a password)"
        );
    }

    #[test]
    fn a_panicking_extractor_is_an_error_not_a_crash() {
        fn panics(_: &[u8], _: Extractor) -> Result<PdfPages, PdfFailure> {
            panic!("font table exploded")
        }
        let timeout = std::time::Duration::from_secs(5);
        let e = with_fallback(|ex| on_watchdog(b"%PDF-1.4", ex, timeout, panics)).unwrap_err();
        assert_eq!(e.kind, FailureKind::Crashed);
        assert!(e.message.contains("font table exploded"), "{}", e.message);
        assert!(e.message.contains("fallback:"), "{}", e.message);
    }

    #[test]
    fn a_looping_extractor_times_out_and_the_fallback_takes_over() {
        fn loops_unless_lopdf(bytes: &[u8], ex: Extractor) -> Result<PdfPages, PdfFailure> {
            if ex == Extractor::Lopdf {
                return extract_in_process(bytes, ex);
            }
            std::thread::sleep(std::time::Duration::from_secs(30));
            unreachable!()
        }
        let timeout = std::time::Duration::from_millis(200);
        let pdf = three_pages();
        let pages = with_fallback(|ex| on_watchdog(&pdf, ex, timeout, loops_unless_lopdf)).unwrap();
        assert_eq!(pages.extractor, "lopdf");
        assert_eq!(pages.pages.len(), 3);
        fn loops(_: &[u8], _: Extractor) -> Result<PdfPages, PdfFailure> {
            std::thread::sleep(std::time::Duration::from_secs(30));
            unreachable!()
        }
        let e = with_fallback(|ex| on_watchdog(&pdf, ex, timeout, loops)).unwrap_err();
        assert_eq!(e.kind, FailureKind::TimedOut);
        assert!(
            e.message.starts_with("PDF parser timed out"),
            "{}",
            e.message
        );
    }

    #[test]
    fn worker_replies_round_trip() {
        let reply = worker_reply(&three_pages(), Extractor::Auto, &mut |_| {});
        let Reply::Pages(p) = serde_json::from_str(&reply).unwrap() else {
            panic!("{reply}")
        };
        assert_eq!(p.pages.len(), 3);
        let reply = worker_reply(b"", Extractor::Auto, &mut |_| {});
        let Reply::Error { error } = serde_json::from_str(&reply).unwrap() else {
            panic!("{reply}")
        };
        assert_eq!(error.kind, FailureKind::Empty);
    }

    #[test]
    fn pages_are_cleaned() {
        assert_eq!(
            clean_page("  A docu-\nment here\r\n\r\n\r\n\x07next\tpara  \n"),
            "A document here\n\nnext para"
        );
        assert_eq!(clean_page("Well-\nKnown"), "Well-\nKnown");
    }
}
