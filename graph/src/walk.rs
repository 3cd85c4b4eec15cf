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
    /// The share of the restarts that go to the concept seeds when there are chunk seeds
    /// too (each group's own weights are normalised first, so neither drowns the other by
    /// its count).
    pub concept_share: f32,
    /// The most rounds of the power iteration.
    pub max_rounds: usize,
    /// The iteration stops when no score moves by more than this (L1, over all nodes).
    pub tolerance: f32,
}

impl Default for WalkSettings {
    fn default() -> Self {
        WalkSettings {
            damping: 0.5,
            concept_share: 0.25,
            max_rounds: 50,
            tolerance: 1e-6,
        }
    }
}

/// The walk's graph, prepared once per assembled graph and reused by every walk over it:
/// concept nodes, then chunk nodes in ascending id order, with normalised transition
/// weights.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    n_concepts: usize,
    chunk_ids: Vec<ChunkId>,
    node_of: HashMap<ChunkId, usize>,
    specificity: Vec<f32>,
    out: Vec<Vec<(usize, f32)>>,
}

impl Walk {
    pub fn new(graph: &ConceptGraph) -> Walk {
        let n_concepts = graph.concepts.len();
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
        Walk {
            n_concepts,
            chunk_ids,
            node_of,
            specificity,
            out,
        }
    }

    /// How many chunks the graph holds.
    pub fn chunks(&self) -> usize {
        self.chunk_ids.len()
    }

    /// The chunks the walk reaches from the seeds, best first (ties by chunk id), with
    /// their share of the walk. `concepts` are indexes into the graph's concepts with
    /// weights (scaled by each concept's specificity); `chunks` are chunk seeds with
    /// weights. A chunk seed the graph does not hold (it mentions no concept of the graph)
    /// is a node without edges: it keeps its share of the restarts and reaches nothing.
    /// No seed: no result.
    pub fn rank(
        &self,
        concepts: &[(usize, f32)],
        chunks: &[(ChunkId, f32)],
        settings: &WalkSettings,
    ) -> Vec<(ChunkId, f32)> {
        let held = self.out.len();
        // Seeds outside the graph follow its nodes.
        let mut outside: Vec<ChunkId> = chunks
            .iter()
            .filter(|(id, w)| *w > 0.0 && !self.node_of.contains_key(id))
            .map(|(id, _)| *id)
            .collect();
        outside.sort();
        outside.dedup();
        let n = held + outside.len();
        let node = |id: &ChunkId| -> Option<usize> {
            self.node_of
                .get(id)
                .copied()
                .or_else(|| outside.binary_search(id).ok().map(|i| held + i))
        };

        let mut from_concepts = vec![0.0f32; n];
        for &(ci, w) in concepts {
            if ci < self.n_concepts && w > 0.0 {
                from_concepts[ci] += w * self.specificity[ci];
            }
        }
        let mut from_chunks = vec![0.0f32; n];
        for (id, w) in chunks {
            if let Some(k) = node(id)
                && *w > 0.0
            {
                from_chunks[k] += w;
            }
        }
        let (c_total, k_total) = (
            from_concepts.iter().sum::<f32>(),
            from_chunks.iter().sum::<f32>(),
        );
        let share = match (c_total > 0.0, k_total > 0.0) {
            (false, false) => return Vec::new(),
            (true, false) => 1.0,
            (false, true) => 0.0,
            (true, true) => settings.concept_share.clamp(0.0, 1.0),
        };
        let restart: Vec<f32> = from_concepts
            .iter()
            .zip(&from_chunks)
            .map(|(c, k)| {
                let c = if c_total > 0.0 { c / c_total } else { 0.0 };
                let k = if k_total > 0.0 { k / k_total } else { 0.0 };
                share * c + (1.0 - share) * k
            })
            .collect();

        let d = settings.damping.clamp(0.0, 1.0);
        let no_edges: &[(usize, f32)] = &[];
        let mut score = restart.clone();
        for _ in 0..settings.max_rounds {
            let mut next: Vec<f32> = restart.iter().map(|r| (1.0 - d) * r).collect();
            let mut dangling = 0.0;
            for (from, &s) in score.iter().enumerate() {
                let edges = self.out.get(from).map_or(no_edges, Vec::as_slice);
                if edges.is_empty() {
                    dangling += s;
                    continue;
                }
                for &(to, p) in edges {
                    next[to] += d * s * p;
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
        let mut ranked: Vec<(ChunkId, f32)> = self
            .chunk_ids
            .iter()
            .chain(&outside)
            .filter_map(|id| Some((*id, score[node(id)?])))
            .filter(|(_, s)| *s > 0.0)
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked
    }
}

/// [`Walk::rank`] over a graph prepared for this one walk.
pub fn personalized_pagerank(
    graph: &ConceptGraph,
    concepts: &[(usize, f32)],
    chunks: &[(ChunkId, f32)],
    settings: &WalkSettings,
) -> Vec<(ChunkId, f32)> {
    Walk::new(graph).rank(concepts, chunks, settings)
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
        assert!(personalized_pagerank(&g, &[(99, 1.0)], &[], &s).is_empty());
        assert!(personalized_pagerank(&ConceptGraph::default(), &[(0, 1.0)], &[], &s).is_empty());
    }

    /// A hybrid hit that mentions no concept of the graph stays a candidate with its share
    /// of the restarts, and leads nowhere.
    #[test]
    fn a_seed_outside_the_graph_keeps_its_share_and_reaches_nothing() {
        let g = graph(&[
            "The Kernel Module loader reads the Module Config.",
            "Edit the Module Config with the Debian Installer.",
        ]);
        let s = WalkSettings::default();
        let alone = personalized_pagerank(&g, &[], &[(ChunkId(42), 1.0)], &s);
        assert_eq!(alone, [(ChunkId(42), 1.0)]);
        let both = personalized_pagerank(&g, &[], &[(ChunkId(42), 1.0), (ChunkId(1), 1.0)], &s);
        let order: Vec<i64> = both.iter().map(|(id, _)| id.0).collect();
        assert_eq!(order.len(), 3, "{both:?}");
        assert!(order.contains(&42) && order.contains(&2), "{both:?}");
        let total: f32 = both.iter().map(|(_, s)| s).sum();
        assert!(total < 1.0, "the concepts keep some of the walk: {both:?}");
    }

    /// `concept_share` splits the restarts between the two kinds of seed, whatever their
    /// number: all to the concepts gives the concept-only walk.
    #[test]
    fn the_concept_share_splits_the_restarts_between_concepts_and_chunks() {
        let g = graph(&[
            "The Kernel Module loader reads the Module Config.",
            "Edit the Module Config with the Debian Installer.",
            "The Debian Installer asks for the Printer Driver.",
        ]);
        let at = |key: &str| g.concepts.iter().position(|c| c.key == key).unwrap();
        let concepts = [(at("kernel module"), 1.0)];
        let chunks = [(ChunkId(3), 1.0)];
        let only = |share: f32| WalkSettings {
            concept_share: share,
            ..WalkSettings::default()
        };
        let concept_walk = personalized_pagerank(&g, &concepts, &[], &only(0.5));
        assert_eq!(
            personalized_pagerank(&g, &concepts, &chunks, &only(1.0)),
            concept_walk
        );
        let chunk_walk = personalized_pagerank(&g, &[], &chunks, &only(0.5));
        assert_eq!(
            personalized_pagerank(&g, &concepts, &chunks, &only(0.0)),
            chunk_walk
        );
        let mixed = personalized_pagerank(&g, &concepts, &chunks, &only(0.5));
        assert_ne!(mixed, concept_walk);
        assert_ne!(mixed, chunk_walk);
    }
}
