//! The graph as a derived index: it follows the catalog's write log like the lexical and
//! vector indexes (added with `Store::with_index`), holding each live chunk's concepts
//! with its document, ACL and write. Nothing is precomputed across chunks: a caller's
//! graph is assembled from the chunks their scope admits ([`GraphIndex::graph_for`]), so
//! no concept, edge or weight reaches them from a chunk they may not read, and a deleted
//! document is gone from the next graph.
//!
//! It is kept in memory and rebuilt from the catalog when the process starts (its applied
//! write starts at 0, so the store replays the log into it); `flush` has nothing to write.

use crate::assemble::{ConceptGraph, Settings, assemble};
use async_trait::async_trait;
use cairn_core::{Acl, ChunkId, Concepts, DerivedIndex, DocId, IndexBatch, Result, Scope, Seq};
use std::collections::{BTreeMap, HashSet};
use std::sync::RwLock;

/// What the index keeps of a chunk.
#[derive(Debug, Clone)]
struct Entry {
    doc_id: DocId,
    acl: Acl,
    seq: Seq,
    concepts: Concepts,
}

#[derive(Debug, Default)]
struct State {
    chunks: BTreeMap<ChunkId, Entry>,
    applied: Seq,
}

/// The concepts of every live chunk, by chunk.
#[derive(Debug, Default)]
pub struct GraphIndex {
    state: RwLock<State>,
}

impl GraphIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// The concept graph of the chunks `scope` admits.
    pub fn graph_for(&self, scope: &Scope, settings: &Settings) -> ConceptGraph {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        assemble(
            state
                .chunks
                .iter()
                .filter(|(_, e)| scope.admits(&e.acl, &e.doc_id, e.seq))
                .map(|(id, e)| (*id, &e.concepts)),
            settings,
        )
    }
}

#[async_trait]
impl DerivedIndex for GraphIndex {
    fn name(&self) -> &'static str {
        "graph"
    }

    fn applied_seq(&self) -> Seq {
        self.state.read().unwrap_or_else(|e| e.into_inner()).applied
    }

    async fn apply(&self, batch: IndexBatch) -> Result<()> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if !batch.remove_docs.is_empty() {
            let gone: HashSet<&DocId> = batch.remove_docs.iter().collect();
            state.chunks.retain(|_, e| !gone.contains(&e.doc_id));
        }
        for c in batch.add {
            let entry = Entry {
                doc_id: c.doc_id,
                acl: c.acl,
                seq: c.seq,
                concepts: c.concepts,
            };
            state.chunks.insert(c.chunk_id, entry);
        }
        state.applied = state.applied.max(batch.up_to);
        Ok(())
    }

    async fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn live_count(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .chunks
            .len()
    }

    fn reads_concepts(&self) -> bool {
        true
    }

    async fn live_chunk_ids(&self) -> Result<Vec<ChunkId>> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        Ok(state.chunks.keys().copied().collect())
    }
}
