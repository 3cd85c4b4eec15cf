//! Documents and chunks: what the catalog stores and what every citation points back to.
//!
//! A document's extracted text is the coordinate system of its chunks: a chunk's [`Span`]
//! is a byte range into that text, on one page, under a heading path. A chunk's `text` is
//! exactly `extracted_text[span.start..span.end]`.

use crate::{Acl, ChunkId, DocId, Origin, Seq};
use serde::{Deserialize, Serialize};

/// A byte range `[start, end)` into a document's extracted text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        debug_assert!(start <= end);
        Span { start, end }
    }
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// The language a chunk is analysed in by the lexical index.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Zh,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "en" => Some(Lang::En),
            "zh" => Some(Lang::Zh),
            _ => None,
        }
    }

    /// Detects the analysis language of a text: Chinese when at least a fifth of its
    /// letters are CJK ideographs, English (the Latin-script analyzer) otherwise.
    pub fn detect(text: &str) -> Lang {
        let (mut cjk, mut letters) = (0usize, 0usize);
        for c in text.chars() {
            if is_cjk(c) {
                cjk += 1;
                letters += 1;
            } else if c.is_alphabetic() {
                letters += 1;
            }
        }
        if letters > 0 && cjk * 5 >= letters {
            Lang::Zh
        } else {
            Lang::En
        }
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0xF900..=0xFAFF | 0x3040..=0x30FF)
}

/// A stored document (one version of it: the current one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Document {
    pub id: DocId,
    pub title: String,
    /// Where it came from: a path on the server or an upload's base name (in JSON, the
    /// fields `origin` and `source`).
    #[serde(flatten)]
    pub origin: Origin,
    /// Media type of the original, e.g. `text/markdown`.
    pub mime: String,
    /// sha256 of the original bytes, hex.
    pub content_hash: String,
    /// Signature of the chunker and its settings that cut this version (empty when not
    /// recorded). A different signature means the document is due for re-chunking.
    pub chunker: String,
    /// 1 for the first ingest, +1 for each changed re-ingest.
    pub version: i64,
    pub acl: Acl,
    pub pages: u32,
    pub chunk_count: u32,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// The catalog write that made this version.
    pub seq: Seq,
}

impl Document {
    /// The path or the upload name.
    pub fn source(&self) -> &str {
        self.origin.as_str()
    }
}

/// A document as the ingest pipeline hands it to the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewDocument {
    pub title: String,
    #[serde(flatten)]
    pub origin: Origin,
    pub mime: String,
    pub content_hash: String,
    /// Signature of the chunker and its settings (see [`Document::chunker`]).
    pub chunker: String,
    pub acl: Acl,
    pub pages: u32,
}

/// A stored chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Chunk {
    pub id: ChunkId,
    pub doc_id: DocId,
    /// Position of the chunk within its document, from 0.
    pub ordinal: u32,
    pub text: String,
    /// 1-based page number (1 for formats without pages).
    pub page: u32,
    pub span: Span,
    /// Headings above the chunk, outermost first.
    pub heading_path: Vec<String>,
    /// Word pieces of the embedder's tokenizer.
    pub token_count: u32,
    pub lang: Lang,
}

/// A chunk as the ingest pipeline hands it to the catalog, with its embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewChunk {
    pub text: String,
    pub page: u32,
    pub span: Span,
    pub heading_path: Vec<String>,
    pub token_count: u32,
    pub lang: Lang,
    pub embedding: Vec<f32>,
    /// The vectors of the chunk's pieces ([`crate::pieces`]), one after another (each as
    /// long as `embedding`); empty when they were not computed.
    #[serde(default)]
    pub pieces: Vec<f32>,
    /// The concepts its text mentions (`cairn-graph`'s extraction), stored with it.
    #[serde(default)]
    pub concepts: crate::Concepts,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_chinese_and_english() {
        assert_eq!(Lang::detect("The quick brown fox"), Lang::En);
        assert_eq!(Lang::detect("如何配置网络接口"), Lang::Zh);
        assert_eq!(Lang::detect("使用 apt-get 安装软件包"), Lang::Zh);
        assert_eq!(Lang::detect(""), Lang::En);
    }
}
