//! Personalized PageRank over the concept–chunk graph (HippoRAG's retrieval): a random
//! walk restarts at the question's seeds (concepts found in the question, chunks the
//! hybrid search found) and moves from a concept to the chunks that mention it, from a
//! chunk to its concepts, and between concepts along their co-occurrence edges. The chunks
//! it visits most are the graph's candidates.
//!
//! A concept mentioned by few chunks says more than one on every page, so each concept's
//! share of the walk (seed weight and the weight of its mention edges) is scaled by its
//! specificity, 1 / (number of chunks mentioning it). The graph is assembled from the
//! caller's readable chunks only (`assemble`), so the walk never reaches another.

use crate::assemble::ConceptGraph;
use cairn_core::ChunkId;
use std::collections::HashMap;

/// How the walk runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WalkSettings {
    /// The probability of following an edge rather than restarting at a seed.
    pub damping: f32,
    /// The most rounds of the power iteration.
    pub max_rounds: usize,
    /// The iteration stops when no score moves by more than this (L1, over all nodes).
    pub tolerance: f32,
}

impl Default for WalkSettings {
    fn default() -> Self {
        WalkSettings {
            damping: 0.5,
            max_rounds: 50,
            tolerance: 1e-6,
        }
    }
}

/// The chunks the walk reaches from the seeds, best first (ties by chunk id), with their
/// share of the walk. `concepts` are indexes into `graph.concepts` with weights; `chunks`
/// are chunk seeds with weights (chunks the graph does not hold are ignored). No seed that
/// the graph holds: no result.
pub fn personalized_pagerank(
    graph: &ConceptGraph,
    concepts: &[(usize, f32)],
    chunks: &[(ChunkId, f32)],
    settings: &WalkSettings,
) -> Vec<(ChunkId, f32)> {
    let n_concepts = graph.concepts.len();
    // Chunk nodes follow the concept nodes, in ascending id order.
    let mut chunk_ids: Vec<ChunkId> = graph
        .concepts
        .iter()
        .flat_map(|c| c.chunks.iter().copied())
        .collect();
    chunk_ids.sort();
    chunk_ids.dedup();
    let node_of: HashMap<ChunkId, usize> = chunk_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, n_concepts + i))
        .collect();
    let n = n_concepts + chunk_ids.len();

    let specificity: Vec<f32> = graph
        .concepts
        .iter()
        .map(|c| 1.0 / c.chunks.len().max(1) as f32)
        .collect();
    // Weighted adjacency, both directions.
    let mut out: Vec<Vec<(usize, f32)>> = vec![Vec::new(); n];
    for (ci, c) in graph.concepts.iter().enumerate() {
        for chunk in &c.chunks {
            let k = node_of[chunk];
            out[ci].push((k, 1.0));
            out[k].push((ci, specificity[ci]));
        }
    }
    for e in &graph.edges {
        out[e.a].push((e.b, e.pmi * specificity[e.b]));
        out[e.b].push((e.a, e.pmi * specificity[e.a]));
    }
    for edges in &mut out {
        let total: f32 = edges.iter().map(|e| e.1).sum();
        if total > 0.0 {
            edges.iter_mut().for_each(|e| e.1 /= total);
        }
    }

    let mut restart = vec![0.0f32; n];
    for &(ci, w) in concepts {
        if ci < n_concepts && w > 0.0 {
            restart[ci] += w * specificity[ci];
        }
    }
    for (id, w) in chunks {
        if let Some(&k) = node_of.get(id)
            && *w > 0.0
        {
            restart[k] += w;
        }
    }
    let total: f32 = restart.iter().sum();
    if total <= 0.0 {
        return Vec::new();
    }
    restart.iter_mut().for_each(|r| *r /= total);

    let d = settings.damping.clamp(0.0, 1.0);
    let mut score = restart.clone();
    for _ in 0..settings.max_rounds {
        let mut next: Vec<f32> = restart.iter().map(|r| (1.0 - d) * r).collect();
        let mut dangling = 0.0;
        for (from, edges) in out.iter().enumerate() {
            if edges.is_empty() {
                dangling += score[from];
                continue;
            }
            for &(to, p) in edges {
                next[to] += d * score[from] * p;
            }
        }
        // A node without edges hands its share back to the seeds.
        for (x, r) in next.iter_mut().zip(&restart) {
            *x += d * dangling * r;
        }
        let moved: f32 = next.iter().zip(&score).map(|(a, b)| (a - b).abs()).sum();
        score = next;
        if moved <= settings.tolerance {
            break;
        }
    }
    let mut ranked: Vec<(ChunkId, f32)> = chunk_ids
        .iter()
        .map(|id| (*id, score[node_of[id]]))
        .filter(|(_, s)| *s > 0.0)
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assemble::{Settings, assemble};
    use cairn_core::Concepts;

    fn graph(texts: &[&str]) -> ConceptGraph {
        let evidence: Vec<(ChunkId, Concepts)> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    ChunkId(i as i64 + 1),
                    crate::extract(t, cairn_core::Lang::En),
                )
            })
            .collect();
        let loose = Settings {
            min_chunks: 1,
            min_pair: 1,
        };
        assemble(evidence.iter().map(|(id, c)| (*id, c)), &loose)
    }

    /// One hop: the chunk that mentions the question's concept; two hops: the chunk that
    /// shares a bridge concept with it; nothing reaches an unconnected chunk.
    #[test]
    fn the_walk_ranks_direct_then_bridged_chunks_and_never_unconnected_ones() {
        let g = graph(&[
            "The Kernel Module loader reads the Module Config.",
            "Edit the Module Config with the Debian Installer.",
            "Printer Driver settings live elsewhere.",
        ]);
        let at = |key: &str| g.concepts.iter().position(|c| c.key == key).unwrap();
        let ranked = personalized_pagerank(
            &g,
            &[(at("kernel module"), 1.0)],
            &[],
            &WalkSettings::default(),
        );
        let order: Vec<i64> = ranked.iter().map(|(id, _)| id.0).collect();
        assert_eq!(order, [1, 2], "{ranked:?}");
        assert!(ranked[0].1 > ranked[1].1);
        // The same seeds give the same walk.
        let again = personalized_pagerank(
            &g,
            &[(at("kernel module"), 1.0)],
            &[],
            &WalkSettings::default(),
        );
        assert_eq!(again, ranked);
        // A chunk seed works the same way.
        let from_chunk =
            personalized_pagerank(&g, &[], &[(ChunkId(2), 1.0)], &WalkSettings::default());
        assert_eq!(from_chunk[0].0, ChunkId(2));
        assert_eq!(from_chunk.len(), 2, "{from_chunk:?}");
    }

    #[test]
    fn no_seed_the_graph_holds_gives_nothing() {
        let g = graph(&["The Kernel Module loader reads the Module Config."]);
        let s = WalkSettings::default();
        assert!(personalized_pagerank(&g, &[], &[], &s).is_empty());
        assert!(personalized_pagerank(&g, &[(99, 1.0)], &[(ChunkId(42), 1.0)], &s).is_empty());
        assert!(personalized_pagerank(&ConceptGraph::default(), &[(0, 1.0)], &[], &s).is_empty());
    }
}
