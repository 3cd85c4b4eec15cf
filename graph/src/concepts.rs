//! The concepts a chunk mentions, found by rules over tokens, with no language model.
//!
//! English (and any Latin, Greek or Cyrillic script) text is cut into sentences (the one
//! splitter in `cairn_core::sentences`), then into tokens. A token is classified:
//! - **identifier**: code and paths (`/etc/fstab`, `sources.list`, `apt_pkg`, `IPv6`,
//!   `ext4`), long options (`--delete`), and a word followed by an option, which is a
//!   command (`rsync` in "rsync -a");
//! - **acronym**: two or more capitals (`LVM`, `GRUB`);
//! - **stop word**, number or other punctuation: a phrase boundary;
//! - otherwise a word.
//!
//! Runs of words between boundaries are **terms** (the last [`MAX_TERM_WORDS`] words of a
//! longer run: English noun phrases end in their head). A capitalised word that does not
//! open its sentence is also a **name** on its own. A single lower-case word is not a
//! concept: without a part-of-speech tagger it is as often a verb as a noun.
//!
//! An acronym written beside its expansion ("Logical Volume Manager (LVM)", "SSH (Secure
//! Shell)") gives a [`Merge`]: the evidence, kept with its chunk and span, that the two
//! name one concept. Merges are applied when the graph is assembled, from the chunks a
//! caller may read, so no merge outlives its evidence.
//!
//! Chinese text is cut by jieba with parts of speech: nouns of two or more characters are
//! **words**, nouns written next to each other also form a **term**, and Latin words in it
//! are classified as above.
//!
//! Keys are the normalised form: lower case, and a term's or name's last word made
//! singular (`Package managers` and `package manager` are one concept).

use cairn_core::sentences::sentences;
use cairn_core::{ConceptKind, Concepts, Lang, Mention, Merge};
use std::sync::OnceLock;

/// The most words of a term.
pub const MAX_TERM_WORDS: usize = 4;
/// The most mentions kept from one chunk; the rest of a longer chunk is not read.
pub const MAX_MENTIONS: usize = 1024;
/// Tokens longer than this (in bytes) are not concepts (base64, hashes, run-together text).
const MAX_TOKEN_BYTES: usize = 64;

/// The concepts `text` mentions and the acronym merges it gives evidence for. `lang` is
/// the chunk's analysis language ([`Lang::detect`]).
pub fn extract(text: &str, lang: Lang) -> Concepts {
    let mut out = Concepts::default();
    for (n, (start, end)) in sentences(text).into_iter().enumerate() {
        if out.truncated {
            break;
        }
        let sentence = Sentence {
            text,
            start,
            end,
            n: n as u32,
        };
        match lang {
            Lang::En => sentence.latin(&mut out),
            Lang::Zh => sentence.chinese(&mut out),
        }
    }
    out
}

/// How a token reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Word {
        capital: bool,
    },
    Acronym,
    Identifier,
    /// A short option (`-a`): not a concept, but it makes the word before it a command.
    ShortOption,
    /// A stop word, a number, or too long: a phrase boundary.
    Boundary,
}

impl Class {
    /// The concept a token of this class is on its own (words form terms and names in
    /// runs instead).
    fn token_kind(self) -> Option<ConceptKind> {
        match self {
            Class::Acronym => Some(ConceptKind::Acronym),
            Class::Identifier => Some(ConceptKind::Identifier),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Item {
    Token {
        start: usize,
        end: usize,
        class: Class,
    },
    /// Punctuation other than a token's own: a phrase boundary.
    Punct { at: usize, c: char },
}

struct Sentence<'t> {
    text: &'t str,
    start: usize,
    end: usize,
    n: u32,
}

impl Sentence<'_> {
    fn push(&self, out: &mut Concepts, key: String, kind: ConceptKind, start: usize, end: usize) {
        if out.mentions.len() >= MAX_MENTIONS {
            out.truncated = true;
            return;
        }
        if key.is_empty() {
            return;
        }
        out.mentions.push(Mention {
            key,
            kind,
            start,
            end,
            sentence: self.n,
        });
    }

    /// [`Sentence::push`], unless this sentence already has that mention.
    fn push_unique(
        &self,
        out: &mut Concepts,
        key: String,
        kind: ConceptKind,
        start: usize,
        end: usize,
    ) {
        let seen = out
            .mentions
            .iter()
            .rev()
            .take_while(|m| m.sentence == self.n)
            .any(|m| m.key == key && m.start == start && m.end == end);
        if !seen {
            self.push(out, key, kind, start, end);
        }
    }

    /// Tokens and punctuation of the sentence, with classes (before the command rule).
    fn items(&self) -> Vec<Item> {
        let s = &self.text[self.start..self.end];
        let mut items = Vec::new();
        let mut token: Option<usize> = None;
        let close = |items: &mut Vec<Item>, from: usize, to: usize| {
            let (a, b) = trim_token(s, from, to);
            if a < b {
                items.push(Item::Token {
                    start: self.start + a,
                    end: self.start + b,
                    class: classify(&s[a..b]),
                });
            }
            // What the trim took off the end (a full stop, a colon) ends a phrase.
            if b < to {
                items.push(Item::Punct {
                    at: self.start + b,
                    c: s[b..].chars().next().unwrap_or('.'),
                });
            }
        };
        for (i, c) in s.char_indices() {
            if c.is_alphanumeric() || is_connector(c) {
                token.get_or_insert(i);
                continue;
            }
            if let Some(from) = token.take() {
                close(&mut items, from, i);
            }
            if !c.is_whitespace() {
                items.push(Item::Punct {
                    at: self.start + i,
                    c,
                });
            }
        }
        if let Some(from) = token {
            close(&mut items, from, s.len());
        }
        // A lower-case word right before an option is a command ("rsync -a").
        for i in 0..items.len().saturating_sub(1) {
            let next_is_option = match items[i + 1] {
                Item::Token { class, start, .. } => {
                    class == Class::ShortOption
                        || (class == Class::Identifier && self.text[start..].starts_with('-'))
                }
                Item::Punct { .. } => false,
            };
            if let Item::Token { class, .. } = &mut items[i]
                && *class == (Class::Word { capital: false })
                && next_is_option
            {
                *class = Class::Identifier;
            }
        }
        items
    }

    fn latin(&self, out: &mut Concepts) {
        let items = self.items();
        let first_token = items
            .iter()
            .position(|i| matches!(i, Item::Token { .. }))
            .unwrap_or(0);
        // Runs of words, as (first item, past the last item).
        let mut runs: Vec<(usize, usize)> = Vec::new();
        let mut run: Option<usize> = None;
        for (i, item) in items.iter().enumerate() {
            let word = matches!(
                item,
                Item::Token {
                    class: Class::Word { .. },
                    ..
                }
            );
            match (word, run) {
                (true, None) => run = Some(i),
                (false, Some(from)) => {
                    runs.push((from, i));
                    run = None;
                }
                _ => {}
            }
            if let Item::Token { start, end, class } = *item
                && let Some(kind) = class.token_kind()
            {
                let key = self.text[start..end].to_lowercase();
                self.push(out, key, kind, start, end);
            }
        }
        if let Some(from) = run {
            runs.push((from, items.len()));
        }
        for &(from, to) in &runs {
            self.run(out, &items[from..to], from == first_token);
        }
        self.merges(out, &items, &runs);
    }

    /// A run of words: a term (two or more), names (capitalised words inside it).
    fn run(&self, out: &mut Concepts, words: &[Item], opens_sentence: bool) {
        let spans = word_spans(words);
        let all_capital = spans.iter().all(|s| s.2);
        if spans.len() >= 2 {
            let tail = &spans[spans.len().saturating_sub(MAX_TERM_WORDS)..];
            let (start, end) = (tail[0].0, tail[tail.len() - 1].1);
            self.push(out, self.term_key(tail), ConceptKind::Term, start, end);
        }
        // A name is a run of capitalised words among lower-case ones ("Volume Group" in
        // "Volume Group tools"), or alone, that does not open the sentence (where every
        // word is capitalised).
        if spans.len() == 1 || !all_capital {
            let mut i = usize::from(opens_sentence);
            while i < spans.len() {
                if !spans[i].2 {
                    i += 1;
                    continue;
                }
                let from = i;
                while i < spans.len() && spans[i].2 {
                    i += 1;
                }
                let name = &spans[from..i.min(from + MAX_TERM_WORDS)];
                let (start, end) = (name[0].0, name[name.len() - 1].1);
                self.push(out, self.term_key(name), ConceptKind::Name, start, end);
            }
        }
    }

    fn term_key(&self, words: &[(usize, usize, bool)]) -> String {
        let mut key = String::new();
        for (i, &(start, end, _)) in words.iter().enumerate() {
            let w = self.text[start..end].to_lowercase();
            if i > 0 {
                key.push(' ');
            }
            if i + 1 == words.len() {
                key.push_str(&singular(&w));
            } else {
                key.push_str(&w);
            }
        }
        key
    }

    /// "Expansion Words (ACR)" and "ACR (Expansion Words)".
    fn merges(&self, out: &mut Concepts, items: &[Item], runs: &[(usize, usize)]) {
        let punct = |i: usize, want: char| matches!(items.get(i), Some(Item::Punct { c, .. }) if *c == want);
        for (i, item) in items.iter().enumerate() {
            let Item::Token {
                start,
                end,
                class: Class::Acronym,
            } = *item
            else {
                continue;
            };
            let acronym = &self.text[start..end];
            // Expansion before: words ending right before "(", the acronym, ")".
            if i >= 2
                && punct(i - 1, '(')
                && punct(i + 1, ')')
                && let Some(&(from, to)) = runs.iter().find(|r| r.1 == i - 1)
                && let Some((a, b, key)) = self.expansion(acronym, &items[from..to], true)
            {
                let close = match items[i + 1] {
                    Item::Punct { at, .. } => at + 1,
                    _ => end,
                };
                self.push_unique(out, key.clone(), ConceptKind::Term, a, b);
                out.merges.push(merge(acronym, key, a, close));
                continue;
            }
            // Expansion after: the acronym, "(", words, ")".
            if punct(i + 1, '(')
                && let Some(&(from, to)) = runs.iter().find(|r| r.0 == i + 2)
                && punct(to, ')')
                && let Some((a, b, key)) = self.expansion(acronym, &items[from..to], false)
            {
                self.push_unique(out, key.clone(), ConceptKind::Term, a, b);
                let close = match items[to] {
                    Item::Punct { at, .. } => at + 1,
                    _ => b,
                };
                out.merges.push(merge(acronym, key, start, close));
            }
        }
    }

    /// The words of `run` that spell `acronym` (each word opening with its next letters):
    /// the shortest such tail of the run when the expansion comes before the acronym, the
    /// whole run when it comes after. Their span and term key.
    fn expansion(
        &self,
        acronym: &str,
        run: &[Item],
        before: bool,
    ) -> Option<(usize, usize, String)> {
        let words = word_spans(run);
        let letters: Vec<char> = acronym
            .chars()
            .filter(|c| c.is_alphabetic())
            .flat_map(char::to_lowercase)
            .collect();
        let spelled = |ws: &[(usize, usize, bool)]| {
            let lowered: Vec<Vec<char>> = ws
                .iter()
                .map(|&(a, b, _)| {
                    self.text[a..b]
                        .chars()
                        .flat_map(char::to_lowercase)
                        .collect()
                })
                .collect();
            spells(&letters, &lowered)
        };
        let found = if before {
            (2..=words.len().min(letters.len()))
                .map(|k| &words[words.len() - k..])
                .find(|ws| spelled(ws))
        } else {
            Some(&words[..]).filter(|ws| ws.len() >= 2 && ws.len() <= letters.len() && spelled(ws))
        }?;
        Some((found[0].0, found[found.len() - 1].1, self.term_key(found)))
    }

    fn chinese(&self, out: &mut Concepts) {
        let s = &self.text[self.start..self.end];
        let mut nouns: Vec<(usize, usize)> = Vec::new();
        let flush = |sentence: &Self, out: &mut Concepts, nouns: &mut Vec<(usize, usize)>| {
            if nouns.len() >= 2 {
                let tail = &nouns[nouns.len().saturating_sub(3)..];
                let (a, b) = (tail[0].0, tail[tail.len() - 1].1);
                let key = sentence.text[a..b].to_lowercase();
                sentence.push(out, key, ConceptKind::Term, a, b);
            }
            nouns.clear();
        };
        for tag in jieba().tag(s, true) {
            let (a, b) = (self.start + tag.byte_start, self.start + tag.byte_end);
            let word = tag.word;
            if tag.tag == "eng"
                || word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || is_connector(c))
            {
                flush(self, out, &mut nouns);
                let (ta, tb) = trim_token(word, 0, word.len());
                if ta >= tb {
                    continue;
                }
                let (a, b) = (a + ta, a + tb);
                let kind = match classify(&self.text[a..b]) {
                    // A Latin word in Chinese text is a name (software, a standard).
                    Class::Word { .. } if tb - ta >= 2 => ConceptKind::Name,
                    class => match class.token_kind() {
                        Some(kind) => kind,
                        None => continue,
                    },
                };
                let key = self.text[a..b].to_lowercase();
                self.push(out, key, kind, a, b);
                continue;
            }
            let noun = tag.tag.starts_with('n') || tag.tag == "vn";
            if noun && word.chars().count() >= 2 && word.chars().all(char::is_alphabetic) {
                self.push(out, word.to_string(), ConceptKind::Word, a, b);
                if nouns.last().is_some_and(|&(_, end)| end != a) {
                    flush(self, out, &mut nouns);
                }
                nouns.push((a, b));
            } else {
                flush(self, out, &mut nouns);
            }
        }
        flush(self, out, &mut nouns);
    }
}

/// The (start, end, capitalised) of each word of a run.
fn word_spans(run: &[Item]) -> Vec<(usize, usize, bool)> {
    run.iter()
        .filter_map(|w| match *w {
            Item::Token {
                start,
                end,
                class: Class::Word { capital },
            } => Some((start, end, capital)),
            _ => None,
        })
        .collect()
}

fn merge(acronym: &str, into: String, start: usize, end: usize) -> Merge {
    Merge {
        from: acronym.to_lowercase(),
        into,
        start,
        end,
    }
}

/// Whether `words`, in order, spell `letters`: each word opens with one or more of the next
/// letters, and all letters are used.
fn spells(letters: &[char], words: &[Vec<char>]) -> bool {
    fn go(letters: &[char], words: &[Vec<char>]) -> bool {
        match (letters.is_empty(), words.split_first()) {
            (true, None) => true,
            (_, None) | (true, Some(_)) => false,
            (false, Some((w, rest))) => (1..=w.len().min(letters.len()))
                .take_while(|&m| w[..m] == letters[..m])
                .any(|m| go(&letters[m..], rest)),
        }
    }
    go(letters, words)
}

fn jieba() -> &'static jieba_rs::Jieba {
    static JIEBA: OnceLock<jieba_rs::Jieba> = OnceLock::new();
    JIEBA.get_or_init(jieba_rs::Jieba::new)
}

/// Characters that join a token rather than end it: `apt-get`, `sources.list`,
/// `/etc/fstab`, `apt_pkg`, `C++`, `--opt=value`, `~/.bashrc`.
fn is_connector(c: char) -> bool {
    matches!(c, '-' | '_' | '.' | '/' | ':' | '+' | '#' | '~' | '=' | '@')
}

/// The part of `s[from..to]` that is the token: connectors that end a sentence or clause
/// (`.`, `:`, a dangling `-`) are not part of it, nor are leading ones that cannot open a
/// name (a path's `/`, an option's `-`, a dot file's `.` and a home's `~` can).
fn trim_token(s: &str, from: usize, to: usize) -> (usize, usize) {
    let t = &s[from..to];
    let end = from
        + t.trim_end_matches(['.', ':', '-', '/', '=', '@', '~', '_'])
            .len();
    let lead = t.len() - t.trim_start_matches([':', '+', '#', '=', '@']).len();
    let start = (from + lead).min(end);
    // "..." or "--" alone.
    if !s[start..end].chars().any(char::is_alphanumeric) {
        return (end, end);
    }
    (start, end)
}

fn classify(token: &str) -> Class {
    if token.len() > MAX_TOKEN_BYTES || !token.chars().any(char::is_alphabetic) {
        return Class::Boundary;
    }
    let letters = token.chars().filter(|c| c.is_alphabetic()).count();
    if let Some(flag) = token.strip_prefix('-') {
        return match flag.strip_prefix('-') {
            Some(long) if long.chars().filter(|c| c.is_alphabetic()).count() >= 2 => {
                Class::Identifier
            }
            _ => Class::ShortOption,
        };
    }
    // "e.g", "i.e", "U.S": dotted single letters.
    if token.split('.').all(|p| p.chars().count() <= 1) {
        return Class::Boundary;
    }
    let upper = token.chars().filter(|c| c.is_uppercase()).count();
    let alpha_and_upper = token
        .chars()
        .all(|c| !c.is_alphabetic() || c.is_uppercase());
    if upper >= 2 && alpha_and_upper && letters <= 10 && !token.contains(['/', '.', '_']) {
        return Class::Acronym;
    }
    let code_punct = token.contains(['_', '/', '.', ':', '=', '~', '@', '#', '+']);
    let digits = token.chars().any(|c| c.is_ascii_digit());
    let camel = token
        .chars()
        .zip(token.chars().skip(1))
        .any(|(a, b)| a.is_lowercase() && b.is_uppercase());
    if code_punct || digits || camel {
        return Class::Identifier;
    }
    if is_stop_word(token) {
        return Class::Boundary;
    }
    let capital = token.chars().next().is_some_and(char::is_uppercase);
    Class::Word { capital }
}

/// The keys of the shorter runs of words inside a term's key, longest first (then in
/// order), each normalised as a key is (its last word made singular): `"apt proxy
/// setting"` gives `"apt proxy"`, `"proxy setting"`, `"apt"`, `"proxy"`, `"setting"`. A
/// question's term that no chunk mentions whole may still name concepts that chunks do.
pub fn sub_keys(key: &str) -> Vec<String> {
    let words: Vec<&str> = key.split(' ').filter(|w| !w.is_empty()).collect();
    let mut out = Vec::new();
    for len in (1..words.len()).rev() {
        for from in 0..=words.len() - len {
            let run = &words[from..from + len];
            let mut k = run[..len - 1].join(" ");
            if len > 1 {
                k.push(' ');
            }
            k.push_str(&singular(run[len - 1]));
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    out
}

/// English plural to singular, for a key's last word: `managers` → `manager`,
/// `policies` → `policy`, `addresses` → `address`; words that only look plural
/// (`status`, `analysis`, `bus`, `glass`) are kept.
fn singular(word: &str) -> String {
    let n = word.chars().count();
    if n <= 3 || !word.is_ascii() {
        return word.to_string();
    }
    if let Some(stem) = word.strip_suffix("ies")
        && n > 4
    {
        return format!("{stem}y");
    }
    // "patches", "branches", "churches", "crashes", "boxes", "classes", "buzzes" (but
    // "caches" and "niches" only lose their "s").
    for ending in ["tches", "nches", "rches", "shes", "sses", "xes", "zzes"] {
        if let Some(stem) = word.strip_suffix(ending) {
            return format!("{stem}{}", &ending[..ending.len() - 2]);
        }
    }
    if word.ends_with('s')
        && !word.ends_with("ss")
        && !word.ends_with("us")
        && !word.ends_with("is")
    {
        return word[..word.len() - 1].to_string();
    }
    word.to_string()
}

fn is_stop_word(token: &str) -> bool {
    let lower = token.to_lowercase();
    STOP_WORDS.binary_search(&lower.as_str()).is_ok()
}

/// English function words and the commonest verbs, adverbs and adjectives of instructions:
/// they bound phrases and are never concepts. Sorted, for binary search.
const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "almost",
    "also",
    "although",
    "always",
    "am",
    "among",
    "an",
    "and",
    "another",
    "any",
    "anyone",
    "anything",
    "are",
    "as",
    "at",
    "available",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "cannot",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "done",
    "down",
    "during",
    "each",
    "either",
    "else",
    "enough",
    "etc",
    "even",
    "ever",
    "every",
    "few",
    "first",
    "following",
    "for",
    "from",
    "further",
    "get",
    "gets",
    "getting",
    "given",
    "gives",
    "good",
    "got",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "how",
    "however",
    "i",
    "if",
    "in",
    "instead",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "last",
    "least",
    "less",
    "like",
    "likely",
    "many",
    "may",
    "me",
    "might",
    "more",
    "most",
    "much",
    "must",
    "my",
    "need",
    "needed",
    "needs",
    "never",
    "new",
    "next",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "often",
    "on",
    "once",
    "one",
    "only",
    "or",
    "other",
    "others",
    "otherwise",
    "our",
    "ours",
    "out",
    "over",
    "own",
    "per",
    "possible",
    "rather",
    "really",
    "same",
    "see",
    "seen",
    "several",
    "shall",
    "she",
    "should",
    "since",
    "so",
    "some",
    "something",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "then",
    "there",
    "therefore",
    "these",
    "they",
    "this",
    "those",
    "though",
    "through",
    "thus",
    "to",
    "too",
    "two",
    "under",
    "until",
    "up",
    "upon",
    "us",
    "use",
    "used",
    "uses",
    "using",
    "usually",
    "very",
    "via",
    "want",
    "was",
    "way",
    "we",
    "well",
    "were",
    "what",
    "when",
    "where",
    "whether",
    "which",
    "while",
    "who",
    "whom",
    "whose",
    "why",
    "will",
    "with",
    "within",
    "without",
    "would",
    "yes",
    "yet",
    "you",
    "your",
    "yours",
    "yourself",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_keys_are_the_shorter_runs_longest_first_normalised_as_keys() {
        assert_eq!(
            sub_keys("apt proxy setting"),
            ["apt proxy", "proxy setting", "apt", "proxy", "setting"]
        );
        assert!(sub_keys("kernel").is_empty());
        assert!(sub_keys("").is_empty());
    }

    fn keys(e: &Concepts, kind: ConceptKind) -> Vec<&str> {
        e.mentions
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.key.as_str())
            .collect()
    }

    /// Every mention's span is a slice of the text on char boundaries.
    fn check_spans(text: &str, e: &Concepts) {
        for m in &e.mentions {
            assert!(m.start < m.end && m.end <= text.len(), "{m:?}");
            assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
        }
        for g in &e.merges {
            assert!(g.start < g.end && g.end <= text.len(), "{g:?}");
        }
    }

    #[test]
    fn the_stop_word_list_is_sorted_for_binary_search() {
        assert!(STOP_WORDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn terms_names_acronyms_identifiers_and_commands() {
        let text = "The Logical Volume Manager (LVM) lets you resize partitions. \
                    Edit /etc/fstab, then run rsync -a --delete to copy ACLs on Debian systems.";
        let e = extract(text, Lang::En);
        check_spans(text, &e);
        let terms = keys(&e, ConceptKind::Term);
        assert!(terms.contains(&"logical volume manager"), "{terms:?}");
        assert!(terms.contains(&"resize partition"), "{terms:?}");
        assert!(terms.contains(&"debian system"), "{terms:?}");
        assert_eq!(keys(&e, ConceptKind::Acronym), ["lvm"]);
        let ids = keys(&e, ConceptKind::Identifier);
        assert_eq!(ids, ["/etc/fstab", "rsync", "--delete"]);
        let names = keys(&e, ConceptKind::Name);
        assert!(
            names.contains(&"acl") && names.contains(&"debian"),
            "{names:?}"
        );
        // "The" and "Edit" open their sentences: not names.
        assert!(
            !names.contains(&"edit") && !names.contains(&"the"),
            "{names:?}"
        );
        assert_eq!(
            e.merges,
            [Merge {
                from: "lvm".into(),
                into: "logical volume manager".into(),
                start: 4,
                end: 32,
            }]
        );
        assert_eq!(&text[4..32], "Logical Volume Manager (LVM)");
        // Sentences are numbered.
        let fstab = e.mentions.iter().find(|m| m.key == "/etc/fstab").unwrap();
        assert_eq!(
            (fstab.sentence, &text[fstab.start..fstab.end]),
            (1, "/etc/fstab")
        );
        assert!(!e.truncated);
    }

    #[test]
    fn case_and_plural_variants_share_a_key() {
        let a = extract("Configure the package managers first.", Lang::En);
        let b = extract("Every Package Manager has a cache.", Lang::En);
        assert_eq!(keys(&a, ConceptKind::Term), ["package manager"]);
        assert_eq!(keys(&b, ConceptKind::Term), ["package manager"]);
        for (plural, one) in [
            ("policies", "policy"),
            ("addresses", "address"),
            ("caches", "cache"),
            ("patches", "patch"),
            ("branches", "branch"),
            ("classes", "class"),
            ("boxes", "box"),
            ("status", "status"),
            ("analysis", "analysis"),
            ("bus", "bus"),
            ("files", "file"),
        ] {
            assert_eq!(singular(plural), one);
        }
    }

    #[test]
    fn an_acronym_before_its_expansion_merges_too() {
        let text = "Log in with SSH (Secure Shell) and check the NFS (Network File System) mounts.";
        let e = extract(text, Lang::En);
        check_spans(text, &e);
        let merged: Vec<(&str, &str, &str)> = e
            .merges
            .iter()
            .map(|m| (m.from.as_str(), m.into.as_str(), &text[m.start..m.end]))
            .collect();
        assert_eq!(
            merged,
            [
                ("ssh", "secure shell", "SSH (Secure Shell)"),
                ("nfs", "network file system", "NFS (Network File System)"),
            ]
        );
        // Words that do not spell the acronym give no merge.
        let e = extract("Use the main server (LVM) today.", Lang::En);
        assert!(e.merges.is_empty(), "{:?}", e.merges);
    }

    #[test]
    fn chinese_nouns_and_latin_words_in_chinese_text() {
        let text = "使用逻辑卷管理器可以调整磁盘分区的大小。运行 rsync 命令复制文件。";
        let e = extract(text, Lang::Zh);
        check_spans(text, &e);
        let words = keys(&e, ConceptKind::Word);
        assert!(words.contains(&"磁盘分区"), "{words:?}");
        assert!(words.contains(&"文件"), "{words:?}");
        assert!(
            keys(&e, ConceptKind::Name).contains(&"rsync"),
            "{:?}",
            e.mentions
        );
        assert_eq!(e.mentions.iter().map(|m| m.sentence).max(), Some(1));
        for m in &e.mentions {
            assert!(m.key.chars().count() >= 2, "{m:?}");
        }
    }

    #[test]
    fn text_without_concepts_and_hostile_text_give_bounded_results() {
        for text in [
            "",
            "   ",
            "!!! ... ??? --- (((",
            "the of and to a in",
            "42 3.14 1,000",
        ] {
            let e = extract(text, Lang::En);
            assert!(
                e.mentions.is_empty() && e.merges.is_empty(),
                "{text:?}: {e:?}"
            );
            assert!(extract(text, Lang::Zh).mentions.is_empty(), "{text:?}");
        }
        // One token far too long to be a concept.
        let long = "x".repeat(10_000);
        assert!(extract(&long, Lang::En).mentions.is_empty());
        // A concept repeated 100,000 times: at most MAX_MENTIONS, and said so.
        let many = "Kernel Module. ".repeat(100_000);
        let e = extract(&many, Lang::En);
        assert_eq!(e.mentions.len(), MAX_MENTIONS);
        assert!(e.truncated);
        // Names in other scripts keep their own letters.
        let text = "Файл лежит в Москве, а Αθήνα (ΑΘΗ) is far.";
        let e = extract(text, Lang::En);
        check_spans(text, &e);
        let names = keys(&e, ConceptKind::Name);
        assert!(names.contains(&"москве"), "{names:?}");
        // Unbalanced brackets and a lone acronym in them.
        let text = "(LVM) ((LVM ) LVM) (";
        check_spans(text, &extract(text, Lang::En));
    }
}
