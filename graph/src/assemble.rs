//! The concept graph assembled from stored evidence: the mentions and merges of a set of
//! chunks (for a search, the chunks its caller may read).
//!
//! It is a pure function of that set. The input order does not matter and nothing is
//! remembered between calls, so the graph of {A, B, C} with B deleted is the graph of
//! {A, C}, and a caller's graph never holds a concept, an edge or a weight that only a
//! chunk they may not read gave.
//!
//! - **Merges.** An acronym and its expansion become one concept, named by the expansion;
//!   an acronym given several expansions takes the one with the most evidence (then the
//!   first in order of keys), so the result does not depend on the input order.
//! - **Concepts** are kept when at least `min_chunks` chunks mention them.
//! - **Edges** join two kept concepts mentioned in one sentence, in at least `min_pair`
//!   sentences, weighted by pointwise mutual information over sentences (only positive
//!   PMI is kept: pairs seen together more often than chance).

use cairn_core::{ChunkId, ConceptKind, Concepts};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What is kept of the evidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// A concept is kept when at least this many chunks mention it.
    pub min_chunks: usize,
    /// An edge is kept when its two concepts share at least this many sentences.
    pub min_pair: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            min_chunks: 2,
            min_pair: 2,
        }
    }
}

/// A concept of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Concept {
    pub key: String,
    /// The kind most of its mentions have (ties: the first in [`ConceptKind`] order).
    pub kind: ConceptKind,
    /// Other keys merged into it (acronyms), sorted.
    pub aliases: Vec<String>,
    /// The chunks that mention it, ascending.
    pub chunks: Vec<ChunkId>,
    pub mentions: usize,
}

/// Two concepts mentioned in the same sentences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// Indexes into [`ConceptGraph::concepts`], `a < b`.
    pub a: usize,
    pub b: usize,
    /// Sentences mentioning both.
    pub sentences: usize,
    /// ln(P(a, b) / (P(a) P(b))) over the sentences that mention any concept.
    pub pmi: f32,
}

/// The assembled graph.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConceptGraph {
    /// Sorted by key.
    pub concepts: Vec<Concept>,
    /// Sorted by (a, b).
    pub edges: Vec<Edge>,
    /// Sentences that mention at least one concept (the PMI's population).
    pub sentences: usize,
}

impl ConceptGraph {
    /// The concept with this key or alias.
    pub fn find(&self, key: &str) -> Option<&Concept> {
        match self.concepts.binary_search_by(|c| c.key.as_str().cmp(key)) {
            Ok(i) => Some(&self.concepts[i]),
            Err(_) => self
                .concepts
                .iter()
                .find(|c| c.aliases.iter().any(|a| a == key)),
        }
    }
}

/// Assembles the graph of the given chunks' evidence.
pub fn assemble<'a>(
    evidence: impl IntoIterator<Item = (ChunkId, &'a Concepts)>,
    settings: &Settings,
) -> ConceptGraph {
    let mut evidence: Vec<(ChunkId, &Concepts)> = evidence.into_iter().collect();
    evidence.sort_by_key(|(id, _)| *id);
    evidence.dedup_by_key(|(id, _)| *id);
    let canonical = resolve_merges(&evidence);
    let name = |key: &str| {
        canonical
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_string())
    };

    // Per concept: chunks, mentions, kinds, aliases; per sentence: its concepts.
    struct Tally {
        chunks: BTreeSet<ChunkId>,
        mentions: usize,
        kinds: BTreeMap<ConceptKind, usize>,
        aliases: BTreeSet<String>,
    }
    let mut tally: BTreeMap<String, Tally> = BTreeMap::new();
    let mut sentences: Vec<BTreeSet<String>> = Vec::new();
    for (chunk, concepts) in &evidence {
        let mut by_sentence: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
        for m in &concepts.mentions {
            let key = name(&m.key);
            let t = tally.entry(key.clone()).or_insert_with(|| Tally {
                chunks: BTreeSet::new(),
                mentions: 0,
                kinds: BTreeMap::new(),
                aliases: BTreeSet::new(),
            });
            t.chunks.insert(*chunk);
            t.mentions += 1;
            *t.kinds.entry(m.kind).or_default() += 1;
            if key != m.key {
                t.aliases.insert(m.key.clone());
            }
            by_sentence.entry(m.sentence).or_default().insert(key);
        }
        sentences.extend(by_sentence.into_values());
    }
    let concepts: Vec<Concept> = tally
        .into_iter()
        .filter(|(_, t)| t.chunks.len() >= settings.min_chunks.max(1))
        .map(|(key, t)| Concept {
            key,
            // Most mentions; among equals, the first kind in order.
            kind: t
                .kinds
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(k, _)| *k)
                .unwrap_or(ConceptKind::Term),
            aliases: t.aliases.into_iter().collect(),
            chunks: t.chunks.into_iter().collect(),
            mentions: t.mentions,
        })
        .collect();
    let index: HashMap<&str, usize> = concepts
        .iter()
        .enumerate()
        .map(|(i, c)| (c.key.as_str(), i))
        .collect();

    // Sentence counts per kept concept and per pair.
    let population = sentences.len();
    let mut single = vec![0usize; concepts.len()];
    let mut pairs: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    for s in &sentences {
        let kept: Vec<usize> = s
            .iter()
            .filter_map(|k| index.get(k.as_str()).copied())
            .collect();
        for (i, &a) in kept.iter().enumerate() {
            single[a] += 1;
            for &b in &kept[i + 1..] {
                *pairs.entry((a.min(b), a.max(b))).or_default() += 1;
            }
        }
    }
    let n = population as f64;
    let edges = pairs
        .into_iter()
        .filter(|&(_, together)| together >= settings.min_pair.max(1))
        .filter_map(|((a, b), together)| {
            let pmi = ((together as f64 * n) / (single[a] as f64 * single[b] as f64)).ln();
            (pmi > 0.0).then_some(Edge {
                a,
                b,
                sentences: together,
                pmi: pmi as f32,
            })
        })
        .collect();
    ConceptGraph {
        concepts,
        edges,
        sentences: population,
    }
}

/// Each merged key's canonical key: an acronym's best-evidenced expansion (the expansion's
/// own merges followed, cycles cut).
fn resolve_merges(evidence: &[(ChunkId, &Concepts)]) -> HashMap<String, String> {
    let mut votes: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for (_, concepts) in evidence {
        for g in &concepts.merges {
            if g.from != g.into {
                *votes
                    .entry(&g.from)
                    .or_default()
                    .entry(&g.into)
                    .or_default() += 1;
            }
        }
    }
    let best: HashMap<&str, &str> = votes
        .iter()
        .filter_map(|(from, intos)| {
            intos
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(into, _)| (*from, *into))
        })
        .collect();
    let mut canonical = HashMap::new();
    for &from in best.keys() {
        let mut at = from;
        let mut seen = vec![from];
        while let Some(&next) = best.get(at) {
            if seen.contains(&next) {
                break;
            }
            seen.push(next);
            at = next;
        }
        if at != from {
            canonical.insert(from.to_string(), at.to_string());
        }
    }
    canonical
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract;
    use cairn_core::Lang;

    fn chunks(texts: &[&str]) -> Vec<(ChunkId, Concepts)> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| (ChunkId(i as i64 + 1), extract(t, Lang::En)))
            .collect()
    }

    fn graph(of: &[(ChunkId, Concepts)], settings: &Settings) -> ConceptGraph {
        assemble(of.iter().map(|(id, c)| (*id, c)), settings)
    }

    const A: &str = "The Logical Volume Manager (LVM) resizes a Volume Group. \
                     Debian installs the Volume Group tools.";
    const B: &str = "Grow a Volume Group with LVM before you resize the File System. \
                     The File System check runs at boot.";
    const C: &str = "A File System lives on a Volume Group. LVM snapshots need free space. \
                     Debian keeps the File System tools in e2fsprogs.";

    #[test]
    fn acronyms_merge_into_their_expansion_and_rare_concepts_are_dropped() {
        let all = chunks(&[A, B, C]);
        let g = graph(&all, &Settings::default());
        let lvm = g.find("lvm").expect("lvm, by its alias");
        assert_eq!(lvm.key, "logical volume manager");
        assert_eq!(lvm.aliases, ["lvm"]);
        assert_eq!(lvm.chunks, [ChunkId(1), ChunkId(2), ChunkId(3)]);
        let vg = g.find("volume group").unwrap();
        assert_eq!(vg.chunks.len(), 3);
        assert_eq!(vg.kind, ConceptKind::Term);
        // e2fsprogs is in one chunk only.
        assert!(g.find("e2fsprogs").is_none());
        // Sorted, so lookups by key are binary searches.
        assert!(g.concepts.windows(2).all(|w| w[0].key < w[1].key));
        // The LVM and "volume group" share a sentence in A and in B: 2 of the 7 sentences
        // against 3 and 4 alone, more than chance (PMI ln(14 / 12) > 0).
        let at = |key: &str| g.concepts.iter().position(|c| c.key == key).unwrap();
        let (vg, lvm) = (at("volume group"), at("logical volume manager"));
        let edge = g
            .edges
            .iter()
            .find(|e| (e.a, e.b) == (vg.min(lvm), vg.max(lvm)))
            .expect("an edge between volume group and the LVM");
        assert_eq!(g.sentences, 7);
        assert!((edge.pmi - (14.0f32 / 12.0).ln()).abs() < 1e-6, "{edge:?}");
        // "file system" and "volume group" meet in two sentences too, but each is in four:
        // less than chance, no edge.
        let fs = at("file system");
        assert!(
            !g.edges
                .iter()
                .any(|e| (e.a, e.b) == (vg.min(fs), vg.max(fs)))
        );
        assert_eq!(edge.sentences, 2);
        assert!(g.edges.iter().all(|e| e.a < e.b && e.sentences >= 2));
    }

    /// The graph is a function of the evidence set: any order gives the same graph, and
    /// deleting a chunk gives the graph of the rest.
    #[test]
    fn the_graph_of_a_set_does_not_depend_on_order_or_history() {
        let all = chunks(&[A, B, C]);
        let loose = Settings {
            min_chunks: 1,
            min_pair: 1,
        };
        let forward = graph(&all, &loose);
        let mut reversed = all.clone();
        reversed.reverse();
        assert_eq!(graph(&reversed, &loose), forward);
        let without_b: Vec<_> = all.iter().filter(|(id, _)| id.0 != 2).cloned().collect();
        let deleted = graph(&without_b, &loose);
        assert_ne!(deleted, forward);
        // What only B mentioned is gone, and nothing points at B.
        let only_b: Vec<&str> = forward
            .concepts
            .iter()
            .filter(|c| c.chunks == [ChunkId(2)])
            .map(|c| c.key.as_str())
            .collect();
        assert!(!only_b.is_empty());
        assert!(
            only_b.iter().all(|k| deleted.find(k).is_none()),
            "{only_b:?}"
        );
        assert!(
            deleted
                .concepts
                .iter()
                .all(|c| !c.chunks.contains(&ChunkId(2)))
        );
        // The same set given twice counts once.
        let mut doubled = without_b.clone();
        doubled.extend(without_b.iter().cloned());
        assert_eq!(graph(&doubled, &loose), deleted);
    }

    #[test]
    fn conflicting_expansions_take_the_best_evidenced_and_cycles_end() {
        let one = chunks(&[
            "Use the Network File System (NFS) here.",
            "The Network File System (NFS) is old.",
            "Mount the New File Store (NFS) there.",
        ]);
        let g = graph(
            &one,
            &Settings {
                min_chunks: 1,
                min_pair: 1,
            },
        );
        assert_eq!(g.find("nfs").unwrap().key, "network file system");
        // A cycle of merges (hostile evidence) does not loop.
        let mut cyc = Concepts::default();
        for (from, into) in [("a", "b"), ("b", "a")] {
            cyc.merges.push(cairn_core::Merge {
                from: from.into(),
                into: into.into(),
                start: 0,
                end: 1,
            });
        }
        let canonical = resolve_merges(&[(ChunkId(1), &cyc)]);
        assert_eq!(canonical.len(), 2);
        assert!(graph(&[], &Settings::default()).concepts.is_empty());
    }
}
