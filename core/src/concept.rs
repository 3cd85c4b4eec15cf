//! The concepts a chunk mentions, as the graph's extraction (`cairn-graph`) finds them and
//! the catalog keeps them: with the chunk, in its own transaction, removed with it. The
//! knowledge graph is assembled from these rows, so it can always be rebuilt from the
//! catalog and restricted to the chunks a caller may read.

use serde::{Deserialize, Serialize};

/// What kind of concept a mention names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConceptKind {
    /// Words between phrase boundaries ("logical volume manager").
    Term,
    /// A capitalised word inside a sentence ("Debian").
    Name,
    /// Two or more capitals ("LVM").
    Acronym,
    /// Code, a path, an option or a command.
    Identifier,
    /// A Chinese noun.
    Word,
}

impl ConceptKind {
    pub const ALL: [ConceptKind; 5] = [
        ConceptKind::Term,
        ConceptKind::Name,
        ConceptKind::Acronym,
        ConceptKind::Identifier,
        ConceptKind::Word,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConceptKind::Term => "term",
            ConceptKind::Name => "name",
            ConceptKind::Acronym => "acronym",
            ConceptKind::Identifier => "identifier",
            ConceptKind::Word => "word",
        }
    }

    pub fn parse(s: &str) -> Option<ConceptKind> {
        ConceptKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A concept mentioned in a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mention {
    /// The concept's normalised form: lower case, a term's last word made singular.
    pub key: String,
    pub kind: ConceptKind,
    /// Byte range of the mention in the chunk's text.
    pub start: usize,
    pub end: usize,
    /// Which sentence of the chunk (0-based) it is in: co-occurrence is counted per sentence.
    pub sentence: u32,
}

/// Evidence that an acronym and a term name one concept ("Logical Volume Manager (LVM)").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merge {
    /// The acronym's key ("lvm").
    pub from: String,
    /// The expansion's key ("logical volume manager").
    pub into: String,
    /// Byte range of the evidence in the chunk's text.
    pub start: usize,
    pub end: usize,
}

/// What a chunk's text gave the graph.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concepts {
    /// In text order.
    pub mentions: Vec<Mention>,
    pub merges: Vec<Merge>,
    /// The text had more mentions than are kept per chunk; the rest were not read.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

impl Concepts {
    pub fn is_empty(&self) -> bool {
        self.mentions.is_empty() && self.merges.is_empty()
    }
}
