//! Wiring: picks the concrete parts (BERT embedder, SQLite + tantivy + hnsw store) from the
//! configuration and hands them, as seam traits, to the library crates.

use anyhow::{Context, Result};
use cairn_core::{Catalog, Config, DocumentStore, Embedder, Principal};
use cairn_index::{Store, StoreOptions};
use cairn_ingest::Ingestor;
use cairn_retrieve::Retriever;
use std::path::PathBuf;
use std::sync::Arc;

pub struct App {
    pub config: Config,
    pub store: Arc<Store>,
    pub retriever: Retriever,
    pub ingestor: Arc<Ingestor>,
}

/// Where the embedding model's folder is: a path as given, or a name under `models_dir`.
pub fn model_dir(config: &Config) -> PathBuf {
    let m = PathBuf::from(&config.embed.model);
    if m.is_absolute() || config.embed.model.contains('/') {
        m
    } else {
        config.models_dir.join(m)
    }
}

impl App {
    pub async fn open(config: Config) -> Result<App> {
        let dir = model_dir(&config);
        let embedder: Arc<dyn Embedder> = cairn_infer::load_embedder(
            &dir,
            config.embed.max_tokens,
            config.embed.batch_size,
            config.embed.queue,
        )
        .with_context(|| format!("loading the embedding model from {}", dir.display()))?;
        tracing::info!(
            model = embedder.model_id(),
            dims = embedder.dims(),
            "embedding model loaded"
        );
        let opts = StoreOptions {
            data_dir: config.data_dir.clone(),
            embedder_id: embedder.model_id().to_string(),
            dims: embedder.dims(),
        };
        let store = Arc::new(
            Store::open_embedded(opts)
                .await
                .with_context(|| format!("opening the data dir {}", config.data_dir.display()))?,
        );
        let catalog: Arc<dyn Catalog> = store.catalog();
        let retriever = Retriever::new(
            catalog,
            store.lexical(),
            store.vectors(),
            embedder.clone(),
            config.retrieve.clone(),
            config.server.max_query_chars,
        );
        let doc_store: Arc<dyn DocumentStore> = store.clone();
        let ingestor = Arc::new(Ingestor::new(embedder, doc_store, config.chunk.clone()));
        Ok(App {
            config,
            store,
            retriever,
            ingestor,
        })
    }

    pub fn principal(&self, groups: &[String]) -> Principal {
        Principal::new(self.config.tenant.clone(), groups.to_vec())
    }
}
