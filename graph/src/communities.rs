//! Communities of an assembled concept graph: hierarchical Leiden over the co-occurrence
//! edges (the `leiden-rs` crate, seeded, so the same graph always gives the same
//! communities), with every community over a size cap split again one level down.
//!
//! They are computed from one assembled graph, which holds only the chunks its caller may
//! read (`assemble`), so a community, its concepts, its relations and its passages never
//! come from a chunk another caller's permissions admit and this caller's do not. The index
//! computes them at most once per assembled graph, when they are first asked for: a burst of
//! writes retires the graph once and costs one computation, at the next read.
//!
//! An edge weighs the sentences that mention both its concepts times their PMI
//! (co-occurrence counted, weighted by how much more than chance it is). A concept with no
//! edge belongs to no community. A community over the cap is split by Leiden over its own
//! subgraph, at the same resolution first and then at twice it, four times it and so on
//! until it splits (modularity at a higher resolution favours smaller communities).

use crate::assemble::ConceptGraph;
use cairn_core::ChunkId;
use leiden_rs::{GraphDataBuilder, Leiden, LeidenConfig, QualityType};
use std::collections::HashMap;

/// How communities are found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommunitySettings {
    /// A community with more concepts than this is split again, one level down.
    pub max_size: usize,
    /// The most levels below the top.
    pub max_depth: usize,
    /// Leiden's resolution (modularity's γ): higher gives smaller communities.
    pub resolution: f64,
    /// The seed of Leiden's random moves.
    pub seed: u64,
    /// Communities with fewer concepts are not kept.
    pub min_size: usize,
}

impl Default for CommunitySettings {
    fn default() -> Self {
        CommunitySettings {
            max_size: 40,
            max_depth: 3,
            resolution: 1.0,
            seed: 0x0ca1_5eed,
            min_size: 2,
        }
    }
}

/// A community of concepts.
#[derive(Debug, Clone, PartialEq)]
pub struct Community {
    /// Its place in the hierarchy: "3" at the top, "3.1" inside it, numbered from 1 by size
    /// (most concepts first).
    pub id: String,
    /// 0 at the top.
    pub level: usize,
    /// Index into [`Communities::list`].
    pub parent: Option<usize>,
    /// Indexes into [`Communities::list`].
    pub children: Vec<usize>,
    /// Indexes into [`ConceptGraph::concepts`], the most chunks first (then by key).
    pub concepts: Vec<usize>,
    /// Indexes into [`ConceptGraph::edges`] of the edges between its concepts, the most
    /// sentences first (then the highest PMI).
    pub edges: Vec<usize>,
    /// The chunks that mention any of its concepts, ascending.
    pub chunks: Vec<ChunkId>,
}

/// The communities of a graph: every level, each parent before its children.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Communities {
    pub list: Vec<Community>,
}

impl Communities {
    /// The community with this id.
    pub fn find(&self, id: &str) -> Option<&Community> {
        self.list.iter().find(|c| c.id == id)
    }

    /// How many levels there are.
    pub fn levels(&self) -> usize {
        self.list.iter().map(|c| c.level + 1).max().unwrap_or(0)
    }
}

/// Finds the communities of `graph`.
pub fn detect(graph: &ConceptGraph, settings: &CommunitySettings) -> Communities {
    // Every concept's edges, for collecting a community's inner edges without a pass over
    // all edges per community.
    let mut adjacent: Vec<Vec<usize>> = vec![Vec::new(); graph.concepts.len()];
    for (at, e) in graph.edges.iter().enumerate() {
        adjacent[e.a].push(at);
        adjacent[e.b].push(at);
    }
    let connected: Vec<usize> = (0..graph.concepts.len())
        .filter(|&c| !adjacent[c].is_empty())
        .collect();
    let mut out = Communities::default();
    let mut marks = vec![false; graph.concepts.len()];
    let edges = inner_edges(graph, &adjacent, &connected, &mut marks);
    let top = split(
        graph,
        &connected,
        &edges,
        [settings.resolution],
        settings.seed,
    );
    for (n, members) in top.into_iter().enumerate() {
        place(
            graph,
            &adjacent,
            settings,
            &mut marks,
            &mut out,
            Placement {
                members,
                id: (n + 1).to_string(),
                level: 0,
                parent: None,
            },
        );
    }
    out
}

struct Placement {
    members: Vec<usize>,
    id: String,
    level: usize,
    parent: Option<usize>,
}

/// Adds a community (when big enough) and, when over the size cap, its split.
fn place(
    graph: &ConceptGraph,
    adjacent: &[Vec<usize>],
    settings: &CommunitySettings,
    marks: &mut [bool],
    out: &mut Communities,
    at: Placement,
) {
    if at.members.len() < settings.min_size.max(1) {
        return;
    }
    let edges = inner_edges(graph, adjacent, &at.members, marks);
    let community = describe(graph, edges.clone(), &at);
    let index = out.list.len();
    out.list.push(community);
    if let Some(parent) = at.parent {
        out.list[parent].children.push(index);
    }
    if at.members.len() <= settings.max_size || at.level >= settings.max_depth {
        return;
    }
    // The same resolution first (modularity is relative to the subgraph now, so it may
    // split what it kept whole in the larger graph), then doubled until it splits.
    let resolutions =
        (0..=MAX_DOUBLINGS).map(|doubling| settings.resolution * f64::from(1u32 << doubling));
    let parts = split(graph, &at.members, &edges, resolutions, settings.seed);
    if parts.len() < 2 {
        return;
    }
    for (n, members) in parts.into_iter().enumerate() {
        place(
            graph,
            adjacent,
            settings,
            marks,
            out,
            Placement {
                members,
                id: format!("{}.{}", at.id, n + 1),
                level: at.level + 1,
                parent: Some(index),
            },
        );
    }
}

/// How many times the resolution is doubled to split a community over the size cap.
const MAX_DOUBLINGS: u32 = 6;

/// The edges between `members`, each once (from its first end), in the order of
/// `members` and then of each one's adjacency list.
fn inner_edges(
    graph: &ConceptGraph,
    adjacent: &[Vec<usize>],
    members: &[usize],
    marks: &mut [bool],
) -> Vec<usize> {
    for &c in members {
        marks[c] = true;
    }
    let mut edges = Vec::new();
    for &c in members {
        for &e in &adjacent[c] {
            let edge = &graph.edges[e];
            if edge.a == c && marks[edge.b] {
                edges.push(e);
            }
        }
    }
    for &c in members {
        marks[c] = false;
    }
    edges
}

/// Leiden over the subgraph of `members` (ascending concept indexes) joined by `edges`
/// (its inner edges), at each resolution in turn until one splits it: the communities of
/// the first that does (else of the last), each ascending, the most concepts first (then by
/// their first concept).
fn split(
    graph: &ConceptGraph,
    members: &[usize],
    edges: &[usize],
    resolutions: impl IntoIterator<Item = f64>,
    seed: u64,
) -> Vec<Vec<usize>> {
    let whole = || vec![members.to_vec()];
    if members.len() < 2 {
        return whole();
    }
    let local: HashMap<usize, usize> = members.iter().enumerate().map(|(i, &c)| (c, i)).collect();
    let mut builder = GraphDataBuilder::new(members.len());
    for &e in edges {
        let edge = &graph.edges[e];
        let weight = edge.sentences as f64 * f64::from(edge.pmi.max(0.0));
        if weight > 0.0 {
            // Both ends are in range and the weight is positive and finite.
            builder
                .add_edge(local[&edge.a], local[&edge.b], weight)
                .expect("a valid edge");
        }
    }
    let Ok(data) = builder.build() else {
        return whole();
    };
    let mut parts = whole();
    for resolution in resolutions {
        let config = LeidenConfig {
            resolution,
            seed: Some(seed),
            quality: QualityType::Modularity,
            // The sequential path only: the parallel one may move nodes differently from
            // run to run, and these graphs are small.
            parallel_local_moving_threshold: Some(usize::MAX),
            parallel_aggregation_threshold: Some(usize::MAX),
            ..LeidenConfig::default()
        };
        let Ok(found) = Leiden::new(config).run(&data) else {
            parts = whole();
            continue;
        };
        parts = found
            .partition
            .communities()
            .into_iter()
            .map(|(_, nodes)| {
                let mut part: Vec<usize> = nodes.into_iter().map(|i| members[i]).collect();
                part.sort_unstable();
                part
            })
            .filter(|part| !part.is_empty())
            .collect();
        parts.sort_by(|a, b| b.len().cmp(&a.len()).then(a[0].cmp(&b[0])));
        if parts.len() > 1 {
            break;
        }
    }
    parts
}

/// A community of `at.members`, whose inner edges are `edges`.
fn describe(graph: &ConceptGraph, mut edges: Vec<usize>, at: &Placement) -> Community {
    edges.sort_by(|&x, &y| {
        let (ex, ey) = (&graph.edges[x], &graph.edges[y]);
        ey.sentences
            .cmp(&ex.sentences)
            .then(ey.pmi.total_cmp(&ex.pmi))
            .then(x.cmp(&y))
    });
    let mut concepts = at.members.clone();
    concepts.sort_by(|&x, &y| {
        let (cx, cy) = (&graph.concepts[x], &graph.concepts[y]);
        cy.chunks.len().cmp(&cx.chunks.len()).then(x.cmp(&y))
    });
    let mut chunks: Vec<ChunkId> = at
        .members
        .iter()
        .flat_map(|&c| graph.concepts[c].chunks.iter().copied())
        .collect();
    chunks.sort_unstable();
    chunks.dedup();
    Community {
        id: at.id.clone(),
        level: at.level,
        parent: at.parent,
        children: Vec::new(),
        concepts,
        edges,
        chunks,
    }
}

/// The chunks that best represent a community: those mentioning the most of its concepts
/// (a concept counts 1 / ln(e + its chunks), so a concept on every page says less), best
/// first, ties by id; at most `most`.
pub fn representative(graph: &ConceptGraph, community: &Community, most: usize) -> Vec<ChunkId> {
    let mut score: HashMap<ChunkId, f64> = HashMap::new();
    for &c in &community.concepts {
        let concept = &graph.concepts[c];
        let weight = 1.0 / (std::f64::consts::E + concept.chunks.len() as f64).ln();
        for &chunk in &concept.chunks {
            *score.entry(chunk).or_insert(0.0) += weight;
        }
    }
    let mut ranked: Vec<(ChunkId, f64)> = score.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.into_iter().take(most).map(|(id, _)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assemble::{Concept, Edge};
    use cairn_core::ConceptKind;

    fn concept(key: &str, chunks: &[i64]) -> Concept {
        Concept {
            key: key.into(),
            kind: ConceptKind::Term,
            aliases: Vec::new(),
            chunks: chunks.iter().map(|&c| ChunkId(c)).collect(),
            mentions: chunks.len(),
        }
    }

    fn edge(a: usize, b: usize, sentences: usize) -> Edge {
        Edge {
            a,
            b,
            sentences,
            pmi: 1.0,
        }
    }

    /// Two dense clusters of four concepts joined by one weak edge, and a concept alone.
    fn two_clusters() -> ConceptGraph {
        let mut concepts: Vec<Concept> = (0..8)
            .map(|i| concept(&format!("c{i}"), &[i, i + 100]))
            .collect();
        concepts.push(concept("lonely", &[50]));
        let mut edges = Vec::new();
        for group in [[0, 1, 2, 3], [4, 5, 6, 7]] {
            for x in 0..4 {
                for y in x + 1..4 {
                    edges.push(edge(group[x], group[y], 5));
                }
            }
        }
        edges.push(edge(3, 4, 1));
        edges.sort_by_key(|e| (e.a, e.b));
        ConceptGraph {
            concepts,
            edges,
            sentences: 100,
        }
    }

    #[test]
    fn dense_clusters_become_communities_and_a_lone_concept_none() {
        let graph = two_clusters();
        let found = detect(&graph, &CommunitySettings::default());
        let mut groups: Vec<Vec<usize>> = found
            .list
            .iter()
            .map(|c| {
                let mut m = c.concepts.clone();
                m.sort();
                m
            })
            .collect();
        groups.sort();
        assert_eq!(groups, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
        assert_eq!(found.levels(), 1);
        let first = found.find("1").unwrap();
        // Six edges inside each community; the bridge belongs to neither.
        assert_eq!(first.edges.len(), 6);
        assert!(first.edges.iter().all(|&e| graph.edges[e].sentences == 5));
        assert_eq!(first.chunks.len(), 8);
    }

    #[test]
    fn the_same_graph_gives_the_same_communities() {
        let graph = two_clusters();
        let settings = CommunitySettings::default();
        assert_eq!(detect(&graph, &settings), detect(&graph, &settings));
    }

    #[test]
    fn a_community_over_the_cap_is_split_a_level_down() {
        // Four cliques of five; each pair of neighbouring cliques joined by one edge.
        let n = 20;
        let concepts: Vec<Concept> = (0..n)
            .map(|i| concept(&format!("k{i:02}"), &[i as i64]))
            .collect();
        let mut edges = Vec::new();
        for q in 0..4 {
            for x in 0..5 {
                for y in x + 1..5 {
                    edges.push(edge(q * 5 + x, q * 5 + y, 4));
                }
            }
        }
        for q in 0..3 {
            edges.push(edge(q * 5 + 4, q * 5 + 5, 1));
        }
        edges.sort_by_key(|e| (e.a, e.b));
        let graph = ConceptGraph {
            concepts,
            edges,
            sentences: 100,
        };
        // With a resolution that keeps everything together at the top, the cap splits it.
        let settings = CommunitySettings {
            max_size: 6,
            resolution: 0.01,
            ..CommunitySettings::default()
        };
        let found = detect(&graph, &settings);
        let top: Vec<&Community> = found.list.iter().filter(|c| c.level == 0).collect();
        assert!(
            top.iter().any(|c| c.concepts.len() > 6),
            "no community over the cap at the top: {top:?}"
        );
        for c in &found.list {
            if c.concepts.len() > settings.max_size && c.level < settings.max_depth {
                assert!(!c.children.is_empty(), "{} was not split", c.id);
            }
            for &child in &c.children {
                let child = &found.list[child];
                assert_eq!(child.parent.map(|p| &found.list[p].id), Some(&c.id));
                assert!(child.id.starts_with(&format!("{}.", c.id)));
                assert!(child.concepts.iter().all(|x| c.concepts.contains(x)));
            }
        }
        let leaves: Vec<&Community> = found
            .list
            .iter()
            .filter(|c| c.children.is_empty())
            .collect();
        assert!(leaves.iter().all(|c| c.concepts.len() <= 6), "{leaves:?}");
    }

    #[test]
    fn representative_chunks_mention_the_most_of_a_community() {
        let mut graph = two_clusters();
        // Chunk 7 mentions three concepts of the first community.
        for c in [0, 1, 2] {
            graph.concepts[c].chunks.push(ChunkId(7));
            graph.concepts[c].chunks.sort();
        }
        let found = detect(&graph, &CommunitySettings::default());
        let first = found.list.iter().find(|c| c.concepts.contains(&0)).unwrap();
        assert_eq!(representative(&graph, first, 1), vec![ChunkId(7)]);
    }
}
