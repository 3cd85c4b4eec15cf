//! Parsing: from a file's bytes to its extracted text and the blocks in it.
//!
//! A [`Parsed`] document is its extracted `text` (the coordinate system every chunk
//! [`Span`] indexes into), a title, a media type, a page count, and the structural
//! [`Block`]s found in the text: paragraphs, headings, code, lists and tables, each with
//! its byte range, page and the heading path above it. The chunker works on blocks only
//! and never needs to know which format they came from.
//!
//! [`parse`] picks a parser by file extension (and refuses well-known binary formats by
//! extension or magic bytes); every parser shares the decoding step
//! (UTF-8, UTF-16, detected legacy encodings such as GB18030 and Latin-1; newlines
//! normalised).

mod decode;
mod docx;
mod html;
mod markdown;
pub mod outline;
pub(crate) mod pdf;
mod text;

use crate::error::IngestError;
use cairn_core::Span;
use std::path::Path;

/// A parsed document: its text and the structure found in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The extracted text; every [`Block::span`] (and every chunk span) indexes into it.
    pub text: String,
    pub title: String,
    /// Media type of the original, e.g. `text/markdown`.
    pub mime: &'static str,
    /// Number of pages (1 for formats without pages).
    pub pages: u32,
    /// Blocks in text order, non-overlapping, each trimmed of surrounding whitespace.
    pub blocks: Vec<Block>,
}

/// One structural block of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// Byte range in [`Parsed::text`], never empty, never starting or ending in whitespace.
    pub span: Span,
    /// 1-based page number.
    pub page: u32,
    /// Headings above the block, outermost first. For a [`BlockKind::Heading`] block this
    /// is the path the heading opens (it ends with the heading itself).
    pub heading_path: Vec<String>,
    pub kind: BlockKind,
}

/// What a block is. Headings are boundaries and context, not content: the chunker skips
/// them but never packs text from both sides of one into a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockKind {
    Paragraph,
    Heading,
    Code,
    List,
    Table,
}

/// Test view of a parse: the blocks as (kind, text, heading path), after checking the span
/// invariants every parser keeps (in order, non-overlapping, non-empty, trimmed, pages ≥ 1).
#[cfg(test)]
pub(crate) fn test_blocks(p: &Parsed) -> Vec<(BlockKind, &str, Vec<&str>)> {
    let mut end = 0;
    for b in &p.blocks {
        assert!(b.span.start >= end && b.span.end > b.span.start, "{b:?}");
        let text = &p.text[b.span.start..b.span.end];
        assert_eq!(text, text.trim());
        assert!(b.page >= 1 && b.page <= p.pages, "{b:?}");
        end = b.span.end;
    }
    p.blocks
        .iter()
        .map(|b| {
            let path = b.heading_path.iter().map(String::as_str).collect();
            (b.kind, &p.text[b.span.start..b.span.end], path)
        })
        .collect()
}

/// Parses a file's bytes, choosing the parser by `file_name`'s extension.
///
/// Markdown (`.md`, `.markdown`, ...) and text (`.txt`, no extension, other text-like
/// extensions) are read; known binary formats (PDF, Office files, images, archives) are
/// refused with a clear [`ErrorKind::User`](cairn_core::ErrorKind::User) error, as are
/// bytes that are not text and documents with no text at all.
pub fn parse(bytes: &[u8], file_name: &str) -> cairn_core::Result<Parsed> {
    parse_inner(bytes, file_name).map_err(Into::into)
}

pub(crate) fn parse_inner(bytes: &[u8], file_name: &str) -> Result<Parsed, IngestError> {
    let file = file_name.to_string();
    let ext = Path::new(file_name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let stem = file_stem(file_name);
    // Structured formats with parsers of their own, by extension or by magic bytes.
    if ext == "pdf" || bytes.starts_with(b"%PDF-") {
        return pdf::parse(bytes, &file, &stem);
    }
    if ext == "docx" {
        return docx::parse(bytes, &file, &stem);
    }
    if matches!(ext.as_str(), "html" | "htm" | "xhtml") {
        return html::parse(bytes, &file, &stem);
    }
    if let Some(format) = binary_format(&ext, bytes) {
        return Err(IngestError::Unsupported {
            file,
            format: format.to_string(),
        });
    }
    let (text, encoding) =
        decode::decode(bytes).map_err(|_| IngestError::Encoding { file: file.clone() })?;
    if encoding != decode::Encoding::Utf8 {
        tracing::debug!(file, encoding = encoding.name(), "decoded text");
    }
    if text.trim().is_empty() {
        return Err(IngestError::Empty { file });
    }
    let parsed = match ext.as_str() {
        "md" | "markdown" | "mdown" | "mkd" | "mkdn" => markdown::parse(text, &stem),
        _ => text::parse(text, &stem),
    };
    Ok(parsed)
}

/// The display name of a format cairn recognises but cannot parse yet, if `bytes` (or
/// the extension) say it is one.
fn binary_format(ext: &str, bytes: &[u8]) -> Option<&'static str> {
    let by_ext = match ext {
        "pdf" => Some("PDF"),
        "docx" | "doc" | "odt" => Some("Word"),
        "xlsx" | "xls" | "ods" => Some("Excel"),
        "pptx" | "ppt" | "odp" => Some("PowerPoint"),
        "html" | "htm" | "xhtml" => Some("HTML"),
        "epub" => Some("EPUB"),
        "rtf" => Some("RTF"),
        "png" | "jpg" | "jpeg" | "gif" | "bmp" | "tif" | "tiff" | "webp" | "svg" | "ico"
        | "heic" => Some("An image"),
        "zip" | "gz" | "tgz" | "tar" | "7z" | "rar" | "bz2" | "xz" | "zst" => Some("An archive"),
        "mp3" | "mp4" | "wav" | "flac" | "ogg" | "mov" | "avi" | "mkv" | "webm" => {
            Some("Audio or video")
        }
        "exe" | "dll" | "so" | "dylib" | "bin" | "o" | "class" | "jar" | "wasm" => {
            Some("A binary file")
        }
        _ => None,
    };
    by_ext.or_else(|| {
        if bytes.starts_with(b"%PDF-") {
            Some("PDF")
        } else if bytes.starts_with(b"PK\x03\x04") {
            Some("A ZIP-based file (DOCX, XLSX, ZIP)")
        } else {
            None
        }
    })
}

/// The file name without directories and extension; the title of last resort.
fn file_stem(file_name: &str) -> String {
    let stem = Path::new(file_name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(file_name);
    clip_title(stem)
}

/// Longest title kept, in characters.
const MAX_TITLE_CHARS: usize = 120;

/// Trims a candidate title and shortens it to [`MAX_TITLE_CHARS`], at a word break when
/// there is one in the last third, marking the cut with an ellipsis.
fn clip_title(s: &str) -> String {
    let s = s.trim();
    let Some((cut, _)) = s.char_indices().nth(MAX_TITLE_CHARS) else {
        return s.to_string();
    };
    let head = &s[..cut];
    let head = match head.rfind(char::is_whitespace) {
        Some(ws) if ws >= head.len() * 2 / 3 => &head[..ws],
        _ => head,
    };
    format!("{}…", head.trim_end())
}

/// The byte range of `text[start..end]` without leading and trailing whitespace, or
/// `None` when it is all whitespace.
pub(crate) fn trim_span(text: &str, start: usize, end: usize) -> Option<Span> {
    let slice = &text[start..end];
    let lead = slice.len() - slice.trim_start().len();
    let trimmed = slice.trim();
    if trimmed.is_empty() {
        None
    } else {
        Some(Span::new(start + lead, start + lead + trimmed.len()))
    }
}

/// Builds the extracted text of formats whose text cairn assembles itself (HTML, DOCX):
/// blocks are joined by a blank line, each block's span indexes the result, and the
/// heading path is tracked as headings arrive.
#[derive(Debug, Default)]
pub(crate) struct TextBuilder {
    text: String,
    blocks: Vec<Block>,
    /// Open headings, outermost first, with their levels (0 for a document title).
    headings: Vec<(u8, String)>,
}

impl TextBuilder {
    /// Appends a content block; whitespace-only content is dropped.
    pub(crate) fn push(&mut self, kind: BlockKind, content: &str) {
        let content = content.trim_end();
        if content.trim_start().is_empty() {
            return;
        }
        if !self.text.is_empty() {
            self.text.push_str("\n\n");
        }
        let start = self.text.len();
        self.text.push_str(content);
        if let Some(span) = trim_span(&self.text, start, self.text.len()) {
            self.blocks.push(Block {
                span,
                page: 1,
                heading_path: self.headings.iter().map(|(_, h)| h.clone()).collect(),
                kind,
            });
        }
    }

    /// Appends a heading of `level`: it closes every open heading of the same or a
    /// deeper level and opens its own path. Its whitespace is collapsed to single spaces.
    pub(crate) fn heading(&mut self, level: u8, content: &str) {
        let title = content.split_whitespace().collect::<Vec<_>>().join(" ");
        if title.is_empty() {
            return;
        }
        self.headings.retain(|(l, _)| *l < level);
        self.headings.push((level, title.clone()));
        self.push(BlockKind::Heading, &title);
    }

    /// Whether no block has been added yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Whether a block of another kind than `kind` has been added.
    pub(crate) fn has_kind_other_than(&self, kind: BlockKind) -> bool {
        self.blocks.iter().any(|b| b.kind != kind)
    }

    /// The text and its blocks.
    pub(crate) fn finish(self) -> (String, Vec<Block>) {
        (self.text, self.blocks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::ErrorKind;

    #[test]
    fn picks_the_parser_by_extension() {
        let md = parse(b"# Hello\n\nbody", "notes/a.MD").unwrap();
        assert_eq!(md.mime, "text/markdown");
        assert_eq!(md.title, "Hello");
        let txt = parse(b"# Hello\n\nbody", "a.txt").unwrap();
        assert_eq!(txt.mime, "text/plain");
        assert_eq!(txt.title, "# Hello");
        let bare = parse(b"just text", "README").unwrap();
        assert_eq!(bare.mime, "text/plain");
        let log = parse(b"2024-01-01 started", "server.log").unwrap();
        assert_eq!(log.mime, "text/plain");
    }

    #[test]
    fn refuses_binary_formats_clearly() {
        let e = parse(b"%PDF-1.7 ...", "report.pdf").unwrap_err();
        assert_eq!(e.kind, ErrorKind::User);
        assert!(
            e.message.starts_with("report.pdf: damaged"),
            "{}",
            e.message
        );
        let e = parse(b"PK\x03\x04....", "upload").unwrap_err();
        assert_eq!(e.kind, ErrorKind::User);
        assert!(e.message.contains("not supported yet"), "{}", e.message);
        let e = parse(b"\x89PNG", "cat.png").unwrap_err();
        assert_eq!(e.message, "cat.png: An image is not supported yet");
    }

    #[test]
    fn refuses_bytes_that_are_not_text() {
        let e = parse(b"abc\0\x01\x02", "data.txt").unwrap_err();
        assert_eq!(e.kind, ErrorKind::User);
        assert_eq!(
            e.message,
            "data.txt: not valid text in any supported encoding (UTF-8, UTF-16, GB18030/GBK, \
             Big5, Shift_JIS, EUC-KR, Windows-1252/Latin-1 and other single-byte code pages)"
        );
        let e = parse(&[0xC3, 0x28, 0x01, 0x02, 0x03, 0x04], "latin.md").unwrap_err();
        assert!(e.message.contains("not valid text"), "{}", e.message);
    }

    #[test]
    fn refuses_empty_documents() {
        for bytes in [&b""[..], b"   \n\t\r\n", b"\xEF\xBB\xBF", b"\x0c\x0c"] {
            let e = parse(bytes, "blank.txt").unwrap_err();
            assert_eq!(e.kind, ErrorKind::User);
            assert_eq!(e.message, "blank.txt: empty document");
        }
    }

    #[test]
    fn reads_utf16_with_bom() {
        let mut bytes = vec![0xFF, 0xFE];
        bytes.extend(
            "第一段\r\n\r\nSecond paragraph"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        );
        let p = parse(&bytes, "zh.txt").unwrap();
        assert_eq!(p.text, "第一段\n\nSecond paragraph");
        assert_eq!(p.title, "第一段");
        assert_eq!(p.blocks.len(), 2);
    }

    #[test]
    fn titles_are_clipped() {
        assert_eq!(clip_title("  short  "), "short");
        let long = "word ".repeat(40);
        let t = clip_title(&long);
        assert!(t.chars().count() <= MAX_TITLE_CHARS + 1, "{t}");
        assert!(t.ends_with("word…"), "{t}");
        let unbroken = "字".repeat(200);
        assert_eq!(clip_title(&unbroken).chars().count(), MAX_TITLE_CHARS + 1);
        assert_eq!(file_stem("/a/b/Quarterly report.txt"), "Quarterly report");
    }

    #[test]
    fn trim_span_skips_whitespace() {
        let t = "  ab c \n";
        assert_eq!(trim_span(t, 0, t.len()), Some(Span::new(2, 6)));
        assert_eq!(trim_span(t, 6, 8), None);
    }
}
