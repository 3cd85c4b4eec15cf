//! Chunking: packing a parsed document's blocks into passages that fit the embedder.
//!
//! Consecutive content blocks with the same heading path and page are packed into one
//! chunk while its token count (counted by the embedder's [`TokenCounter`] over the exact
//! chunk text) stays within `max_tokens`. A chunk never crosses a heading or a page
//! boundary. A block too big on its own is cut into pieces at the finest boundary needed:
//! lines (code, lists, tables), then sentences (Unicode sentence boundaries plus the
//! Chinese `。！？`), then whitespace, then Unicode word boundaries, then grapheme
//! clusters, so every chunk fits unless a
//! single grapheme cluster is already over the limit.
//!
//! Invariant: `chunk.text == parsed.text[chunk.span]`; spans are non-empty, in order,
//! non-overlapping, on char boundaries, and never whitespace-only (they start and end on
//! non-whitespace).

use crate::parse::{Block, BlockKind, Parsed, trim_span};
use cairn_core::{Lang, Span, TokenCounter};
use unicode_segmentation::UnicodeSegmentation;

/// Identifies this chunking strategy; recorded with an index so that a change re-indexes.
pub const CHUNKER_VERSION: &str = "pack-v1";

/// A chunk before it is embedded and stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkDraft {
    /// Exactly `parsed.text[span.start..span.end]`.
    pub text: String,
    pub span: Span,
    pub page: u32,
    pub heading_path: Vec<String>,
    pub token_count: u32,
    pub lang: Lang,
}

/// Cuts `parsed` into chunks of at most `max_tokens` tokens (at least 1 is used).
pub fn chunk(parsed: &Parsed, counter: &dyn TokenCounter, max_tokens: usize) -> Vec<ChunkDraft> {
    let max = max_tokens.max(1);
    let text = parsed.text.as_str();
    let mut out = Vec::new();
    let mut group: Vec<&Block> = Vec::new();
    for block in &parsed.blocks {
        let same_section = group
            .first()
            .is_some_and(|g| g.page == block.page && g.heading_path == block.heading_path);
        if !same_section || block.kind == BlockKind::Heading {
            flush(text, &group, counter, max, &mut out);
            group.clear();
        }
        if block.kind != BlockKind::Heading {
            group.push(block);
        }
    }
    flush(text, &group, counter, max, &mut out);
    out
}

/// Packs one section (blocks sharing heading path and page) into chunks.
fn flush(
    text: &str,
    group: &[&Block],
    counter: &dyn TokenCounter,
    max: usize,
    out: &mut Vec<ChunkDraft>,
) {
    let Some(first) = group.first() else { return };
    let mut pieces = Vec::new();
    for block in group {
        let Some(span) = trim_span(text, block.span.start, block.span.end) else {
            continue;
        };
        if counter.count_tokens(&text[span.start..span.end]) <= max {
            pieces.push(span);
        } else {
            split(
                text,
                span,
                levels_for(block.kind),
                counter,
                max,
                &mut pieces,
            );
        }
    }
    for (span, tokens) in pack(text, &pieces, counter, max) {
        let chunk_text = &text[span.start..span.end];
        out.push(ChunkDraft {
            text: chunk_text.to_string(),
            span,
            page: first.page,
            heading_path: first.heading_path.clone(),
            token_count: u32::try_from(tokens).unwrap_or(u32::MAX),
            lang: Lang::detect(chunk_text),
        });
    }
}

/// Boundaries to cut an oversized block at, coarsest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Lines,
    Sentences,
    /// Runs of non-whitespace: keeps punctuation with its word.
    Spaces,
    /// Unicode word boundaries: cuts runs without spaces (Chinese, long identifiers).
    Words,
    Graphemes,
}

fn levels_for(kind: BlockKind) -> &'static [Level] {
    use Level::*;
    match kind {
        BlockKind::Code => &[Lines, Spaces, Words, Graphemes],
        BlockKind::List | BlockKind::Table => &[Lines, Sentences, Spaces, Words, Graphemes],
        BlockKind::Paragraph | BlockKind::Heading => &[Sentences, Spaces, Words, Graphemes],
    }
}

/// Cuts `span` (trimmed, too big) into trimmed pieces that each fit, trying the coarsest
/// level first and going finer only for the parts that still do not fit.
fn split(
    text: &str,
    span: Span,
    levels: &[Level],
    counter: &dyn TokenCounter,
    max: usize,
    out: &mut Vec<Span>,
) {
    let Some((&level, finer)) = levels.split_first() else {
        // A single grapheme cluster over the limit: nothing finer to cut at.
        out.push(span);
        return;
    };
    for part in segments(text, span, level) {
        if finer.is_empty() || counter.count_tokens(&text[part.start..part.end]) <= max {
            out.push(part);
        } else {
            split(text, part, finer, counter, max, out);
        }
    }
}

/// The trimmed, non-empty segments of `span` at one level, in order.
fn segments(text: &str, span: Span, level: Level) -> Vec<Span> {
    let slice = &text[span.start..span.end];
    let starts: Vec<usize> = match level {
        Level::Lines => std::iter::once(0)
            .chain(slice.match_indices('\n').map(|(i, _)| i + 1))
            .collect(),
        Level::Sentences => {
            let mut starts: Vec<usize> = slice
                .split_sentence_bound_indices()
                .map(|(i, _)| i)
                .collect();
            // Chinese full stops, exclamation and question marks end a sentence even
            // where the Unicode rules see no break.
            starts.extend(
                slice
                    .char_indices()
                    .filter(|(_, c)| matches!(c, '。' | '！' | '？'))
                    .map(|(i, c)| i + c.len_utf8()),
            );
            starts.sort_unstable();
            starts.dedup();
            starts
        }
        Level::Spaces => std::iter::once(0)
            .chain(
                slice
                    .match_indices(char::is_whitespace)
                    .map(|(i, ws)| i + ws.len()),
            )
            .collect(),
        Level::Words => slice.split_word_bound_indices().map(|(i, _)| i).collect(),
        Level::Graphemes => slice.grapheme_indices(true).map(|(i, _)| i).collect(),
    };
    let mut bounds = starts;
    bounds.push(slice.len());
    bounds
        .windows(2)
        .filter_map(|w| trim_span(text, span.start + w[0], span.start + w[1]))
        .collect()
}

/// Greedily merges consecutive pieces into the longest runs whose text (from the first
/// piece's start to the last piece's end) fits in `max` tokens. Returns each run's span
/// and token count. A piece that does not fit on its own becomes a run by itself.
///
/// The longest fitting run is found by galloping then bisecting over the run length, so
/// the tokenizer sees O(log n) candidate texts per chunk instead of one per piece.
fn pack(text: &str, pieces: &[Span], counter: &dyn TokenCounter, max: usize) -> Vec<(Span, usize)> {
    let count =
        |from: usize, to: usize| counter.count_tokens(&text[pieces[from].start..pieces[to].end]);
    let mut runs = Vec::new();
    let mut i = 0;
    while i < pieces.len() {
        // `fit` is the last piece known to fit with pieces[i..]; `fail` the first known not to.
        let mut fit = i;
        let mut fit_tokens = count(i, i);
        let mut fail = pieces.len();
        let mut step = 1;
        while fit + 1 < fail {
            let probe = (fit + step).min(fail - 1);
            let tokens = count(i, probe);
            if tokens <= max {
                fit = probe;
                fit_tokens = tokens;
                step *= 2;
            } else {
                fail = probe;
                step = 1.max((fail - fit) / 2);
            }
        }
        runs.push((Span::new(pieces[i].start, pieces[fit].end), fit_tokens));
        i = fit + 1;
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    /// Whitespace-separated words, plus one token per CJK ideograph and per punctuation
    /// mark: close enough to a word-piece tokenizer for boundaries to matter.
    struct Words;
    impl TokenCounter for Words {
        fn count_tokens(&self, text: &str) -> usize {
            text.split_whitespace()
                .map(|w| {
                    let special = w
                        .chars()
                        .filter(|c| {
                            Lang::detect(&c.to_string()) == Lang::Zh || c.is_ascii_punctuation()
                        })
                        .count();
                    let rest = w
                        .split(|c: char| {
                            Lang::detect(&c.to_string()) == Lang::Zh || c.is_ascii_punctuation()
                        })
                        .filter(|s| !s.is_empty())
                        .count();
                    special + rest
                })
                .sum()
        }
    }

    fn check_invariants(parsed: &Parsed, chunks: &[ChunkDraft], max: usize) {
        let mut prev_end = 0;
        for c in chunks {
            assert!(c.span.start < c.span.end, "empty span {c:?}");
            assert!(c.span.start >= prev_end, "overlap or disorder at {c:?}");
            assert!(parsed.text.is_char_boundary(c.span.start));
            assert!(parsed.text.is_char_boundary(c.span.end));
            assert_eq!(c.text, &parsed.text[c.span.start..c.span.end]);
            assert!(!c.text.trim().is_empty(), "whitespace-only chunk");
            assert_eq!(c.text.trim(), c.text, "chunk not trimmed: {:?}", c.text);
            assert_eq!(c.token_count as usize, Words.count_tokens(&c.text));
            assert!(
                c.token_count as usize <= max,
                "{} > {max}: {:?}",
                c.token_count,
                c.text
            );
            assert_eq!(c.lang, Lang::detect(&c.text));
            prev_end = c.span.end;
        }
        // Nothing is lost: every non-whitespace char of every content block is in a chunk
        // with that block's page and heading path.
        for b in parsed
            .blocks
            .iter()
            .filter(|b| b.kind != BlockKind::Heading)
        {
            for (i, ch) in parsed.text[b.span.start..b.span.end].char_indices() {
                if ch.is_whitespace() {
                    continue;
                }
                let at = b.span.start + i;
                let holder = chunks
                    .iter()
                    .find(|c| c.span.start <= at && at < c.span.end);
                let holder = holder.unwrap_or_else(|| panic!("byte {at} ({ch:?}) lost"));
                assert_eq!(holder.page, b.page);
                assert_eq!(holder.heading_path, b.heading_path);
            }
        }
    }

    fn chunk_of(src: &str, name: &str, max: usize) -> (Parsed, Vec<ChunkDraft>) {
        let parsed = parse(src.as_bytes(), name).unwrap();
        let chunks = chunk(&parsed, &Words, max);
        check_invariants(&parsed, &chunks, max);
        (parsed, chunks)
    }

    #[test]
    fn small_paragraphs_pack_together() {
        let (_, chunks) = chunk_of("one two\n\nthree four\n\nfive six\n", "a.txt", 4);
        let texts: Vec<_> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, vec!["one two\n\nthree four", "five six"]);
        assert_eq!(chunks[0].token_count, 4);
        assert_eq!(chunks[0].span, Span::new(0, 19));
    }

    #[test]
    fn never_crosses_headings_or_pages() {
        let md = "# A\n\nalpha\n\n## B\n\nbeta\n\n## C\n\ngamma\n";
        let (_, chunks) = chunk_of(md, "a.md", 100);
        let got: Vec<_> = chunks
            .iter()
            .map(|c| (c.text.as_str(), c.heading_path.join("/")))
            .collect();
        assert_eq!(
            got,
            vec![
                ("alpha", "A".to_string()),
                ("beta", "A/B".into()),
                ("gamma", "A/C".into())
            ]
        );
        // the same heading path on both sides of a heading still does not merge
        let (_, chunks) = chunk_of("## X\n\none\n\n## X\n\ntwo\n", "b.md", 100);
        assert_eq!(chunks.len(), 2);

        let (_, chunks) = chunk_of("p1 text\x0cp2 text\n\nmore p2\x0cp3", "c.txt", 100);
        let got: Vec<_> = chunks.iter().map(|c| (c.text.as_str(), c.page)).collect();
        assert_eq!(
            got,
            vec![("p1 text", 1), ("p2 text\n\nmore p2", 2), ("p3", 3)]
        );
    }

    #[test]
    fn big_paragraphs_split_at_sentences_then_words() {
        let para = "First sentence is here. Second one follows now. Third sentence ends it.";
        let (_, chunks) = chunk_of(para, "a.txt", 7);
        let texts: Vec<_> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "First sentence is here.",
                "Second one follows now.",
                "Third sentence ends it."
            ]
        );
        let (_, chunks) = chunk_of(para, "a.txt", 3);
        let texts: Vec<_> = chunks.iter().map(|c| c.text.as_str()).collect();
        // punctuation stays with its word
        assert_eq!(
            texts,
            vec![
                "First sentence is",
                "here. Second",
                "one follows",
                "now. Third",
                "sentence ends",
                "it."
            ]
        );
    }

    #[test]
    fn chinese_sentences_split_at_full_stops() {
        let para = "今天天气很好。我们去公园散步！你要一起来吗？好的";
        let (_, chunks) = chunk_of(para, "zh.txt", 9);
        let texts: Vec<_> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            vec!["今天天气很好。", "我们去公园散步！", "你要一起来吗？好的"]
        );
        assert!(chunks.iter().all(|c| c.lang == Lang::Zh));

        // a run of ideographs with no punctuation and no spaces is cut between characters
        let (_, chunks) = chunk_of("一二三四五六七八九十", "zh.txt", 4);
        let texts: Vec<_> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, vec!["一二三四", "五六七八", "九十"]);
    }

    #[test]
    fn big_code_blocks_split_at_lines() {
        let code = format!("```\n{}```\n", "let x = 1;\n".repeat(10));
        let (_, chunks) = chunk_of(&code, "c.md", 12);
        assert!(chunks.len() > 1);
        // every piece ends at a line end, never mid-statement
        assert!(
            chunks
                .iter()
                .all(|c| c.text.ends_with(';') || c.text.ends_with("```")),
            "{chunks:?}"
        );
    }

    #[test]
    fn a_single_long_word_is_cut_at_graphemes() {
        struct Chars;
        impl TokenCounter for Chars {
            fn count_tokens(&self, text: &str) -> usize {
                text.chars().count()
            }
        }
        let parsed = parse("abcdefghij e\u{301}e\u{301}".as_bytes(), "a.txt").unwrap();
        let chunks = chunk(&parsed, &Chars, 4);
        let texts: Vec<_> = chunks.iter().map(|c| c.text.as_str()).collect();
        // the combining accent stays with its letter
        assert_eq!(texts, vec!["abcd", "efgh", "ij", "e\u{301}e\u{301}"]);
    }

    /// A tiny deterministic generator (xorshift), so the property test needs no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
            xs[(self.next() % xs.len() as u64) as usize]
        }
    }

    #[test]
    fn invariants_hold_on_generated_documents() {
        let pieces = [
            "word",
            "Another",
            "end.",
            "Question?",
            "数据",
            "中文句子。",
            "好！",
            "émigré",
            "e\u{301}",
            "😀",
            "x",
            "a-b",
            "ünïcödé",
            " ",
            " ",
            " ",
            "  ",
            "\n",
            "\n",
            "\n\n",
            "\n\n\n",
            "\t",
            "\r\n",
            "\x0c",
            "# Head\n",
            "## Sub\n",
            "### Deep\n",
            "- item\n",
            "1. first\n",
            "```\ncode line\n\nmore code\n```\n",
            "| a | b |\n|---|---|\n| 1 | 2 |\n",
            "> quote ",
            "---\n",
            "*em*",
            "`tick`",
            "http://example.com/a?b=c",
            "longwordwithoutanybreaks",
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut checked = 0;
        for case in 0..600 {
            let len = 1 + rng.next() % 120;
            let mut src = String::new();
            for _ in 0..len {
                src.push_str(rng.pick(&pieces));
            }
            if src.trim().is_empty() {
                continue;
            }
            let name = if case % 2 == 0 { "gen.md" } else { "gen.txt" };
            let max = 1 + (rng.next() % 40) as usize;
            let parsed = parse(src.as_bytes(), name).unwrap();
            let chunks = chunk(&parsed, &Words, max);
            check_invariants(&parsed, &chunks, max);
            checked += 1;
        }
        assert!(checked > 500);
    }
}
