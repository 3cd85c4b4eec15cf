//! `cairn-index`: where documents are kept and found. The SQL catalog is the source of
//! truth ([`catalog::SqliteCatalog`]); the lexical index (tantivy BM25) and the vector index
//! (HNSW) are derived from it and can be rebuilt from it at any time. [`store::Store`]
//! keeps them consistent, and [`lock::DataDirLock`] makes one process the owner of a data
//! dir. Ranking policy lives in `retrieve`, not here.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> cairn_core::Result<()> {
//! use cairn_core::{Acl, DocumentStore, NewDocument, Seq};
//! use cairn_index::{Store, StoreOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let opts = StoreOptions { data_dir: dir.path().into(), embedder_id: "my-model".into(), dims: 4 };
//! let store = Store::open_embedded(opts).await?; // locks the dir, catches indexes up
//! let doc = NewDocument { title: "Empty".into(), origin: cairn_core::Origin::upload("empty.txt")?, mime: "text/plain".into(),
//!     content_hash: "0".into(), chunker: "pack-v1".into(), acl: Acl::tenant_wide("acme"), pages: 1 };
//! let stored = store.put_document(doc, vec![]).await?; // in the catalog, then in every index
//! assert_eq!(store.visible_seq(), stored.seq);
//! assert!(store.check_consistency().await?.is_consistent());
//! # Ok(()) }
//! ```

mod access;
pub mod catalog;
mod error;
pub mod lexical;
pub mod lock;
pub mod store;
pub mod vector;

pub use catalog::SqliteCatalog;
pub use error::IndexError;
pub use lexical::TantivyIndex;
pub use lock::DataDirLock;
pub use store::{ConsistencyReport, IndexConsistency, Store, StoreOptions};
pub use vector::HnswStore;

/// Runs sync index work on the blocking pool; a panicked or cancelled task is an internal
/// error naming `what`.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> cairn_core::Result<T> + Send + 'static,
) -> cairn_core::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        cairn_core::Error::internal(format!("{what}: worker task failed")).with_source(e)
    })?
}
