//! A PDF's outline (its bookmarks) as heading paths.
//!
//! Most PDFs made from structured sources (LaTeX with hyperref, DocBook, word processors)
//! carry an outline: a tree of titled entries, each pointing at a page. [`read`] walks it
//! into a flat, pre-order list of [`OutlineEntry`] (level, title, page); [`Sections`] then
//! finds each entry's title in the text of its page, so the PDF parser can open a heading
//! exactly where the section starts, or at the top of the page when the title cannot be
//! found in the extracted text.
//!
//! The walk is defensive, as the files are not to be trusted: every object is visited at
//! most once (outlines with cycles exist), the number of entries is capped, and anything
//! that does not resolve to a page of this document is skipped, never an error.

use lopdf::{Dictionary, Document, Object, ObjectId};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// The most outline entries read from one file.
const MAX_ENTRIES: usize = 20_000;
/// The most objects visited while resolving named destinations.
const MAX_NAME_NODES: usize = 200_000;
/// Titles are clipped to this many characters.
const MAX_TITLE_CHARS: usize = 200;

/// One outline entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutlineEntry {
    /// Depth in the outline tree, 1 for top-level entries.
    pub level: u32,
    pub title: String,
    /// 1-based page the entry points at.
    pub page: u32,
}

/// The document's outline, in reading order of the tree (pre-order). Empty when the file
/// has none or it cannot be read.
pub fn read(doc: &Document) -> Vec<OutlineEntry> {
    let Ok(catalog) = doc.catalog() else {
        return Vec::new();
    };
    let Some(root) = dict_at(doc, catalog, b"Outlines") else {
        return Vec::new();
    };
    let Ok(first) = root.get(b"First").and_then(Object::as_reference) else {
        return Vec::new();
    };
    let pages: HashMap<ObjectId, u32> =
        doc.get_pages().into_iter().map(|(n, id)| (id, n)).collect();
    let mut names = Names::new(doc, catalog);
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    // Depth-first: a child is read before the next sibling.
    let mut stack = vec![(first, 1u32)];
    while let Some((id, level)) = stack.pop() {
        if out.len() >= MAX_ENTRIES || !seen.insert(id) {
            continue;
        }
        let Ok(item) = doc.get_dictionary(id) else {
            continue;
        };
        if let Ok(next) = item.get(b"Next").and_then(Object::as_reference) {
            stack.push((next, level));
        }
        if let Ok(child) = item.get(b"First").and_then(Object::as_reference) {
            stack.push((child, level + 1));
        }
        let title = item
            .get(b"Title")
            .ok()
            .and_then(|t| resolve(doc, t).as_str().ok())
            .map(decode_text)
            .map(|t| clip(&t))
            .filter(|t| !t.is_empty());
        let page = destination(doc, item, &mut names).and_then(|p| pages.get(&p).copied());
        if let (Some(title), Some(page)) = (title, page) {
            out.push(OutlineEntry { level, title, page });
        }
    }
    out
}

/// The page object an outline item points at, through `/Dest` or a `/GoTo` action, by
/// array or by name.
fn destination(doc: &Document, item: &Dictionary, names: &mut Names) -> Option<ObjectId> {
    let dest = match item.get(b"Dest") {
        Ok(d) => resolve(doc, d),
        Err(_) => {
            let action = dict_at(doc, item, b"A")?;
            if action.get(b"S").and_then(Object::as_name).ok()? != b"GoTo" {
                return None;
            }
            resolve(doc, action.get(b"D").ok()?)
        }
    };
    let target = match dest {
        Object::Name(n) | Object::String(n, _) => names.get(n)?,
        other => other.clone(),
    };
    page_of(doc, &target)
}

/// The page of an explicit destination: `[page /XYZ ...]`, or a dictionary holding one
/// under `/D`.
fn page_of(doc: &Document, dest: &Object) -> Option<ObjectId> {
    match resolve(doc, dest) {
        Object::Array(a) => a.first()?.as_reference().ok(),
        Object::Dictionary(d) => match resolve(doc, d.get(b"D").ok()?) {
            Object::Array(a) => a.first()?.as_reference().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// Named destinations, from the catalog's `/Dests` dictionary (PDF 1.1) and the
/// `/Names /Dests` name tree, read on first use.
struct Names<'a> {
    doc: &'a Document,
    catalog: &'a Dictionary,
    map: Option<HashMap<Vec<u8>, Object>>,
}

impl<'a> Names<'a> {
    fn new(doc: &'a Document, catalog: &'a Dictionary) -> Self {
        Names {
            doc,
            catalog,
            map: None,
        }
    }

    fn get(&mut self, name: &[u8]) -> Option<Object> {
        let (doc, catalog) = (self.doc, self.catalog);
        self.map
            .get_or_insert_with(|| named_destinations(doc, catalog))
            .get(name)
            .cloned()
    }
}

fn named_destinations(doc: &Document, catalog: &Dictionary) -> HashMap<Vec<u8>, Object> {
    let mut map = HashMap::new();
    if let Some(dests) = dict_at(doc, catalog, b"Dests") {
        for (k, v) in dests.iter() {
            map.insert(k.clone(), v.clone());
        }
    }
    let Some(tree) = dict_at(doc, catalog, b"Names").and_then(|n| dict_at(doc, n, b"Dests")) else {
        return map;
    };
    let mut seen = HashSet::new();
    let mut nodes = vec![tree.clone()];
    let mut visited = 0usize;
    while let Some(node) = nodes.pop() {
        visited += 1;
        if visited > MAX_NAME_NODES {
            break;
        }
        if let Ok(pairs) = node.get(b"Names").map(|n| resolve(doc, n))
            && let Ok(pairs) = pairs.as_array()
        {
            for pair in pairs.chunks_exact(2) {
                if let Ok(key) = resolve(doc, &pair[0]).as_str() {
                    map.insert(key.to_vec(), pair[1].clone());
                }
            }
        }
        if let Ok(kids) = node.get(b"Kids").map(|k| resolve(doc, k))
            && let Ok(kids) = kids.as_array()
        {
            for kid in kids {
                if let Ok(id) = kid.as_reference()
                    && seen.insert(id)
                    && let Ok(d) = doc.get_dictionary(id)
                {
                    nodes.push(d.clone());
                }
            }
        }
    }
    map
}

/// `dict[key]` as a dictionary, following one reference.
fn dict_at<'a>(doc: &'a Document, dict: &'a Dictionary, key: &[u8]) -> Option<&'a Dictionary> {
    resolve(doc, dict.get(key).ok()?).as_dict().ok()
}

/// Follows references (a bounded number of them) to the object they name.
fn resolve<'a>(doc: &'a Document, mut obj: &'a Object) -> &'a Object {
    for _ in 0..8 {
        match obj {
            Object::Reference(id) => match doc.get_object(*id) {
                Ok(o) => obj = o,
                Err(_) => return obj,
            },
            _ => return obj,
        }
    }
    obj
}

/// A PDF text string: UTF-16 with a byte-order mark, UTF-8 with one, else PDFDocEncoding
/// (read as Latin-1); whitespace collapsed.
pub(crate) fn decode_text(raw: &[u8]) -> String {
    let decoded = if let Some(rest) = raw.strip_prefix(&[0xFE, 0xFF]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else if let Some(rest) = raw.strip_prefix(&[0xFF, 0xFE]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else if let Some(rest) = raw.strip_prefix(&[0xEF, 0xBB, 0xBF]) {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        raw.iter().map(|&b| char::from(b)).collect()
    };
    decoded
        .split_whitespace()
        .filter(|w| !w.chars().all(char::is_control))
        .collect::<Vec<_>>()
        .join(" ")
}

fn clip(title: &str) -> String {
    title.chars().take(MAX_TITLE_CHARS).collect()
}

/// Where a heading opens inside one page's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    /// Byte range of the title in the page text; `None` when it was not found there (the
    /// section then starts at the top of the page).
    pub at: Option<(usize, usize)>,
    /// The heading path from this point on, ending with this entry's title.
    pub path: Vec<String>,
}

/// Turns outline entries into heading openings page by page, keeping the current path.
pub struct Sections<'a> {
    entries: &'a [OutlineEntry],
    next: usize,
    path: Vec<String>,
}

impl<'a> Sections<'a> {
    /// `entries` as [`read`] gives them; entries that point backwards (to a page before an
    /// earlier entry's) are applied where they come in page order.
    pub fn new(entries: &'a [OutlineEntry]) -> Self {
        Sections {
            entries,
            next: 0,
            path: Vec::new(),
        }
    }

    /// The path in force at the top of page `page` (before its own openings).
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// The openings on page `page` (1-based, called in increasing page order) whose text
    /// is `text`, in text order. Titles are matched word by word, ignoring case,
    /// punctuation at word ends and line breaks; each search starts after the previous
    /// opening on the page.
    pub fn openings(&mut self, page: u32, text: &str) -> Vec<Opening> {
        let words = words(text);
        let mut from = 0usize; // index into `words`
        let mut out = Vec::new();
        while let Some(entry) = self.entries.get(self.next) {
            if entry.page > page {
                break;
            }
            self.next += 1;
            let level = usize::try_from(entry.level.max(1)).unwrap_or(usize::MAX);
            self.path.truncate(level - 1);
            self.path.push(entry.title.clone());
            let found = if entry.page == page {
                find_words(&words, from, &entry.title)
            } else {
                None
            };
            let at = found.map(|(first, last)| {
                from = last + 1;
                (words[first].0, words[last].1)
            });
            out.push(Opening {
                at,
                path: self.path.clone(),
            });
        }
        out
    }
}

/// The words of `text` with their byte ranges.
fn words(text: &str) -> Vec<(usize, usize, String)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                let key = normalise(&text[s..i]);
                if !key.is_empty() {
                    out.push((s, i, key));
                }
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

/// A word as compared: lower case, without punctuation at either end.
fn normalise(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase()
}

/// The first run of `words` at or after `from` that spells `title`: (first, last) word
/// indices.
fn find_words(
    words: &[(usize, usize, String)],
    from: usize,
    title: &str,
) -> Option<(usize, usize)> {
    let wanted: Vec<String> = title
        .split_whitespace()
        .map(normalise)
        .filter(|w| !w.is_empty())
        .collect();
    if wanted.is_empty() || words.len() < wanted.len() {
        return None;
    }
    (from..=words.len() - wanted.len())
        .find(|&i| {
            wanted
                .iter()
                .zip(&words[i..])
                .all(|(w, (_, _, got))| w == got)
        })
        .map(|i| (i, i + wanted.len() - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(level: u32, title: &str, page: u32) -> OutlineEntry {
        OutlineEntry {
            level,
            title: title.into(),
            page,
        }
    }

    #[test]
    fn titles_are_found_across_line_breaks_and_case() {
        let text = "intro text\n\n2.1 Package\nMANAGEMENT: basics\nbody";
        let entries = [entry(1, "Tools", 1), entry(2, "2.1 Package management", 2)];
        let mut s = Sections::new(&entries);
        let first = s.openings(1, "Tools\nmore");
        assert_eq!(first[0].at, Some((0, 5)));
        assert_eq!(first[0].path, ["Tools"]);
        let second = s.openings(2, text);
        let (a, b) = second[0].at.unwrap();
        assert_eq!(&text[a..b], "2.1 Package\nMANAGEMENT:");
        assert_eq!(second[0].path, ["Tools", "2.1 Package management"]);
    }

    #[test]
    fn a_title_not_in_the_text_opens_at_the_top_and_levels_nest() {
        let entries = [
            entry(1, "One", 1),
            entry(2, "One.A", 1),
            entry(3, "Deep", 2),
            entry(1, "Two", 3),
        ];
        let mut s = Sections::new(&entries);
        let p1 = s.openings(1, "One\n\nOne.A\ntext");
        assert_eq!(p1.len(), 2);
        assert!(p1[1].at.unwrap().0 > p1[0].at.unwrap().0);
        let p2 = s.openings(2, "nothing matching here");
        assert_eq!(p2[0].at, None);
        assert_eq!(p2[0].path, ["One", "One.A", "Deep"]);
        assert!(s.openings(2, "").is_empty());
        let p3 = s.openings(3, "x Two y");
        assert_eq!(p3[0].path, ["Two"]);
        assert_eq!(s.path(), ["Two"]);
    }

    #[test]
    fn a_repeated_title_is_searched_after_the_previous_opening() {
        let text = "Usage\nfoo\nUsage\nbar";
        let entries = [entry(1, "Usage", 1), entry(2, "Usage", 1)];
        let mut s = Sections::new(&entries);
        let o = s.openings(1, text);
        assert_eq!(o[0].at, Some((0, 5)));
        assert_eq!(o[1].at, Some((10, 15)));
        assert_eq!(o[1].path, ["Usage", "Usage"]);
    }

    #[test]
    fn text_strings_decode() {
        assert_eq!(decode_text(b"\xFE\xFF\x00H\x00i"), "Hi");
        assert_eq!(decode_text(b"\xFF\xFEH\x00i\x00"), "Hi");
        assert_eq!(decode_text(b"caf\xE9  au\nlait"), "café au lait");
    }
}
