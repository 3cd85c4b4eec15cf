//! `cairn-ingest`: from a file to stored, embedded chunks.
//!
//! [`parse()`] turns bytes into extracted text plus structural blocks (Markdown and plain
//! text, HTML, DOCX, PDF), [`chunk()`] packs blocks into passages that fit the embedder
//! (or [`chunk::plan`] and [`chunk::cut`] cut them where the topic shifts), and
//! [`Ingestor`] runs the whole pipeline: content hash, change detection, parse and chunk
//! on a blocking thread, one embedding call, and one write to the
//! [`DocumentStore`](cairn_core::DocumentStore), which keeps the catalog and its indexes consistent.
//!
//! ```
//! use cairn_core::TokenCounter;
//! use cairn_ingest::{chunk, parse};
//!
//! struct Words;
//! impl TokenCounter for Words {
//!     fn count_tokens(&self, text: &str) -> usize { text.split_whitespace().count() }
//! }
//!
//! let parsed = parse(b"# Setup\n\nInstall it.\n\n## Linux\n\nUse apt.\n", "guide.md")?;
//! let chunks = chunk(&parsed, &Words, 256);
//! assert_eq!(chunks[1].text, "Use apt.");
//! assert_eq!(chunks[1].heading_path, ["Setup", "Linux"]);
//! assert_eq!(&parsed.text[chunks[1].span.start..chunks[1].span.end], chunks[1].text);
//! # Ok::<(), cairn_core::Error>(())
//! ```
//!
//! With real models, the binary wires an embedder and a store:
//!
//! ```no_run
//! # async fn run(embedder: std::sync::Arc<dyn cairn_core::Embedder>,
//! #              store: std::sync::Arc<dyn cairn_core::DocumentStore>) -> cairn_core::Result<()> {
//! use cairn_core::{Acl, config::ChunkConfig};
//! use cairn_ingest::Ingestor;
//!
//! let ingestor = Ingestor::new(embedder, store, ChunkConfig::pack(256));
//! let outcome = ingestor.ingest_path("docs/guide.md".as_ref(), &Acl::tenant_wide("acme")).await?;
//! println!("{} {:?}: {} chunks", outcome.origin, outcome.status, outcome.chunks);
//! # Ok(()) }
//! ```

pub mod chunk;
mod error;
pub mod isolate;
pub mod parse;
pub mod pipeline;
pub mod reindex;
pub mod walk;

pub use chunk::{ChunkDraft, chunk};
pub use error::{IngestError, PanicMessage};
pub use parse::{Block, BlockKind, Parsed, parse};
pub use pipeline::{IngestOutcome, IngestStatus, Ingestor};
