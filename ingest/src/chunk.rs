//! Chunking: cutting a parsed document's blocks into passages that fit the embedder.
//!
//! Structure comes first: a chunk never crosses a heading or a page boundary, so every
//! chunk has one heading path and one page. Inside such a section, one of two strategies:
//!
//! - **Pack** ([`chunk`]): consecutive blocks are packed into one chunk while its token
//!   count (counted by the embedder's [`TokenCounter`] over the exact chunk text) stays
//!   within `max_tokens`: fixed-size chunks.
//! - **Semantic** ([`plan`], then [`cut`]): a section is split into sentences (tables,
//!   lists and code blocks stay whole when they fit), the sentences are embedded, and a
//!   chunk ends where the similarity of neighbouring sentences drops more than the
//!   document's `percentile` of drops, once it has `min_tokens`; it never exceeds
//!   `max_tokens`. Optionally the last sentences of a chunk are repeated at the start of
//!   the next one (`overlap`).
//!
//! A block too big on its own is cut into pieces at the finest boundary needed:
//! lines (code, lists, tables), then sentences (`cairn_core::sentences`, the splitter the
//! answerer and the verifier use too), then whitespace, then Unicode word boundaries, then grapheme
//! clusters, so every chunk fits unless a single grapheme cluster is already over the
//! limit.
//!
//! Invariant: `chunk.text == parsed.text[chunk.span]`; spans are non-empty, in order, on
//! char boundaries, and never whitespace-only (they start and end on non-whitespace).
//! Without overlap they do not overlap.

use crate::parse::{Block, BlockKind, Parsed, trim_span};
use cairn_core::config::{ChunkConfig, ChunkStrategy};
use cairn_core::{Lang, Span, TokenCounter};
use unicode_segmentation::UnicodeSegmentation;

/// Identifies the packing strategy; part of [`signature`].
pub const PACK_VERSION: &str = "pack-v2";
/// Identifies the semantic strategy; part of [`signature`].
pub const SEMANTIC_VERSION: &str = "semantic-v2";

/// The chunker and the settings that change its output, as recorded with each document:
/// a document whose recorded signature differs is re-chunked by the next re-index.
pub fn signature(config: &ChunkConfig) -> String {
    let max = config.max_tokens;
    let cut = match config.strategy {
        ChunkStrategy::Pack => format!("{PACK_VERSION} max={max}"),
        ChunkStrategy::Semantic => format!(
            "{SEMANTIC_VERSION} max={max} min={} pct={} overlap={}",
            config.min_tokens, config.percentile, config.overlap
        ),
    };
    // Documents stored without piece vectors are re-embedded when they are turned on.
    if config.piece_vectors {
        format!("{cut} pieces")
    } else {
        cut
    }
}

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

/// Blocks sharing one heading path and page, cut into pieces that each fit.
#[derive(Debug, Clone)]
pub struct Section {
    pub page: u32,
    pub heading_path: Vec<String>,
    /// Trimmed, in order, non-overlapping; each fits `max_tokens` (but for a single
    /// grapheme cluster over it).
    pub pieces: Vec<Span>,
    /// Whether the semantic cut needs the pieces' embeddings: false when the section is
    /// a single piece, or small enough that it is never cut.
    pub needs_vectors: bool,
}

/// Cuts `parsed` into packed chunks of at most `max_tokens` tokens (at least 1 is used).
pub fn chunk(parsed: &Parsed, counter: &dyn TokenCounter, max_tokens: usize) -> Vec<ChunkDraft> {
    let max = max_tokens.max(1);
    let mut out = Vec::new();
    for section in sections(parsed, counter, max, false, 0) {
        let runs = pack(&parsed.text, &section.pieces, counter, max);
        push_runs(parsed, &section, runs, &mut out);
    }
    out
}

/// The semantic chunker's first step: a document's sections, cut into sentences (and
/// whole tables, lists and code blocks that fit). Embed [`Plan::texts`], then [`cut`].
#[derive(Debug, Clone)]
pub struct Plan {
    pub sections: Vec<Section>,
    max: usize,
}

impl Plan {
    /// The texts to embed, in order: the pieces of every section that needs vectors.
    pub fn texts(&self, parsed: &Parsed) -> Vec<String> {
        self.sections
            .iter()
            .filter(|s| s.needs_vectors)
            .flat_map(|s| s.pieces.iter())
            .map(|p| parsed.text[p.start..p.end].to_string())
            .collect()
    }
}

/// Splits `parsed` into sections of sentence-level pieces for the semantic chunker.
pub fn plan(parsed: &Parsed, counter: &dyn TokenCounter, config: &ChunkConfig) -> Plan {
    let max = config.max_tokens.max(1);
    Plan {
        sections: sections(parsed, counter, max, true, config.min_tokens),
        max,
    }
}

/// The semantic chunker's second step: cuts each section where neighbouring pieces stop
/// being similar. `vectors` are the embeddings of [`Plan::texts`], in order (L2-normalised).
/// If their number does not match, the sections are packed instead (and a warning logged).
pub fn cut(
    parsed: &Parsed,
    plan: &Plan,
    vectors: &[Vec<f32>],
    counter: &dyn TokenCounter,
    config: &ChunkConfig,
) -> Vec<ChunkDraft> {
    let max = plan.max;
    let min = config.min_tokens.min(max);
    let wanted: usize = plan
        .sections
        .iter()
        .filter(|s| s.needs_vectors)
        .map(|s| s.pieces.len())
        .sum();
    let usable = vectors.len() == wanted;
    if !usable {
        tracing::warn!(
            wanted,
            got = vectors.len(),
            "semantic chunker: embeddings do not match the sentences; packing instead"
        );
    }
    // Distances between neighbouring pieces, per section (empty when not needed).
    let mut next = 0;
    let distances: Vec<Vec<f32>> = plan
        .sections
        .iter()
        .map(|s| {
            if !s.needs_vectors || !usable {
                return Vec::new();
            }
            let vs = &vectors[next..next + s.pieces.len()];
            next += s.pieces.len();
            vs.windows(2).map(|w| 1.0 - dot(&w[0], &w[1])).collect()
        })
        .collect();
    let all: Vec<f32> = distances.iter().flatten().copied().collect();
    let threshold = percentile(&all, config.percentile);

    let mut out = Vec::new();
    for (section, dist) in plan.sections.iter().zip(&distances) {
        let runs = if dist.is_empty() {
            pack(&parsed.text, &section.pieces, counter, max)
        } else {
            let limits = Limits {
                threshold,
                min,
                max,
                overlap: config.overlap,
            };
            semantic_runs(&parsed.text, &section.pieces, dist, counter, limits)
        };
        push_runs(parsed, section, runs, &mut out);
    }
    out
}

/// Groups blocks into sections (same heading path and page, split at every heading) and
/// cuts each block into pieces that fit. With `sentences`, paragraphs are always cut into
/// sentences (the semantic chunker's units); tables, lists and code stay whole if they fit.
fn sections(
    parsed: &Parsed,
    counter: &dyn TokenCounter,
    max: usize,
    sentences: bool,
    min: usize,
) -> Vec<Section> {
    let text = parsed.text.as_str();
    let mut out = Vec::new();
    let mut finish = |group: &[&Block]| {
        let Some(first) = group.first() else { return };
        let mut pieces = Vec::new();
        for block in group {
            let Some(span) = trim_span(text, block.span.start, block.span.end) else {
                continue;
            };
            let whole = !(sentences && block.kind == BlockKind::Paragraph)
                && counter.count_tokens(&text[span.start..span.end]) <= max;
            if whole {
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
        let (Some(head), Some(tail)) = (pieces.first(), pieces.last()) else {
            return;
        };
        let needs_vectors = sentences && pieces.len() > 1 && {
            let all = counter.count_tokens(&text[head.start..tail.end]);
            all > max || all >= 2 * min.max(1)
        };
        out.push(Section {
            page: first.page,
            heading_path: first.heading_path.clone(),
            pieces,
            needs_vectors,
        });
    };
    let mut group: Vec<&Block> = Vec::new();
    for block in &parsed.blocks {
        let same_section = group
            .first()
            .is_some_and(|g| g.page == block.page && g.heading_path == block.heading_path);
        if !same_section || block.kind == BlockKind::Heading {
            finish(&group);
            group.clear();
        }
        if block.kind != BlockKind::Heading {
            group.push(block);
        }
    }
    finish(&group);
    out
}

fn push_runs(
    parsed: &Parsed,
    section: &Section,
    runs: Vec<(Span, usize)>,
    out: &mut Vec<ChunkDraft>,
) {
    for (span, tokens) in runs {
        let chunk_text = &parsed.text[span.start..span.end];
        out.push(ChunkDraft {
            text: chunk_text.to_string(),
            span,
            page: section.page,
            heading_path: section.heading_path.clone(),
            token_count: u32::try_from(tokens).unwrap_or(u32::MAX),
            lang: Lang::detect(chunk_text),
        });
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The `p`th percentile (0-100, linear interpolation between closest ranks) of `values`;
/// +inf when there are none, so that nothing counts as a topic shift.
fn percentile(values: &[f32], p: f32) -> f32 {
    if values.is_empty() {
        return f32::INFINITY;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let rank = (p.clamp(0.0, 100.0) / 100.0) * (sorted.len() - 1) as f32;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f32)
}

/// The semantic cut's parameters for one document.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// A distance to the next piece larger than this is a topic shift (so when all
    /// distances are equal, nothing is).
    threshold: f32,
    min: usize,
    max: usize,
    overlap: usize,
}

/// Cuts one section's pieces into runs: a run ends at the first topic shift once it has
/// `min` tokens; a run that would exceed `max` ends at its largest shift past `min`
/// instead (or as late as it fits). The last run of a section is split at a shift only
/// when both parts have `min` tokens. With `overlap`, each run after the first also starts
/// up to that many pieces earlier (never before the previous run's second piece), as far
/// as `max` allows. Token counts are exact (counted over each run's text).
fn semantic_runs(
    text: &str,
    pieces: &[Span],
    dist: &[f32],
    counter: &dyn TokenCounter,
    limits: Limits,
) -> Vec<(Span, usize)> {
    let Limits {
        threshold,
        min,
        max,
        overlap,
    } = limits;
    let count =
        |from: usize, to: usize| counter.count_tokens(&text[pieces[from].start..pieces[to].end]);
    let n = pieces.len();
    let mut cuts: Vec<(usize, usize)> = Vec::new(); // first and last piece of each run
    let mut s = 0;
    while s < n {
        // tokens[j]: tokens of pieces s..=s+j, for every run length that fits.
        let mut tokens = vec![count(s, s)];
        while s + tokens.len() < n {
            let t = count(s, s + tokens.len());
            if t > max {
                break;
            }
            tokens.push(t);
        }
        let e = s + tokens.len() - 1;
        let shift = |b: usize| dist[b] > threshold && tokens[b - s] >= min;
        let end = if e == n - 1 {
            (s..e)
                .find(|&b| shift(b) && count(b + 1, e) >= min)
                .unwrap_or(e)
        } else {
            (s..e).find(|&b| shift(b)).unwrap_or_else(|| {
                // No shift before the limit: cut at the largest drop past `min`.
                (s..=e)
                    .filter(|&b| tokens[b - s] >= min)
                    .max_by(|&a, &b| dist[a].total_cmp(&dist[b]))
                    .unwrap_or(e)
            })
        };
        cuts.push((s, end));
        s = end + 1;
    }
    let mut runs = Vec::with_capacity(cuts.len());
    for (i, &(first, last)) in cuts.iter().enumerate() {
        let mut from = first;
        if i > 0 && overlap > 0 {
            from = first.saturating_sub(overlap).max(cuts[i - 1].0 + 1);
            while from < first && count(from, last) > max {
                from += 1;
            }
        }
        runs.push((
            Span::new(pieces[from].start, pieces[last].end),
            count(from, last),
        ));
    }
    runs
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
        // The one sentence splitter (`cairn_core::sentences`): a soft line break inside a
        // paragraph does not end a sentence.
        Level::Sentences => std::iter::once(0)
            .chain(
                cairn_core::sentences::sentences(slice)
                    .into_iter()
                    .skip(1)
                    .map(|(start, _)| start),
            )
            .collect(),
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
pub(crate) mod tests {
    use super::*;
    use crate::parse::parse;

    /// Whitespace-separated words, plus one token per CJK ideograph and per punctuation
    /// mark: close enough to a word-piece tokenizer for boundaries to matter.
    pub(crate) struct Words;
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

    /// Topic vectors for the semantic tests: a sentence's vector is the normalised count
    /// of the topic words it contains, so sentences on one topic are similar (cos 1) and
    /// sentences on different topics are not (cos 0).
    fn topic_vectors(texts: &[String]) -> Vec<Vec<f32>> {
        const TOPICS: [&str; 4] = ["cat", "rocket", "bread", "river"];
        texts
            .iter()
            .map(|t| {
                let mut v: Vec<f32> = TOPICS.iter().map(|w| t.matches(w).count() as f32).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                if norm > 0.0 {
                    v.iter_mut().for_each(|x| *x /= norm);
                } else {
                    v = vec![0.5; TOPICS.len()];
                }
                v
            })
            .collect()
    }

    fn semantic(src: &str, name: &str, config: &ChunkConfig) -> (Parsed, Vec<ChunkDraft>) {
        let parsed = parse(src.as_bytes(), name).unwrap();
        let plan = plan(&parsed, &Words, config);
        let vectors = topic_vectors(&plan.texts(&parsed));
        let chunks = cut(&parsed, &plan, &vectors, &Words, config);
        (parsed, chunks)
    }

    fn semantic_config(min: usize, max: usize) -> ChunkConfig {
        ChunkConfig {
            strategy: ChunkStrategy::Semantic,
            max_tokens: max,
            min_tokens: min,
            percentile: 50.0,
            overlap: 0,
            piece_vectors: false,
        }
    }

    const TOPICS_TEXT: &str = "The cat sleeps all day. A cat likes warm spots. My cat purrs. \
        The rocket lifts off. A rocket burns fuel fast. The rocket reaches orbit. \
        Fresh bread smells good. Bake bread at dawn.";

    #[test]
    fn semantic_chunks_end_where_the_topic_changes() {
        let config = semantic_config(4, 100);
        let (parsed, chunks) = semantic(TOPICS_TEXT, "a.txt", &config);
        check_invariants(&parsed, &chunks, 100);
        let texts: Vec<_> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "The cat sleeps all day. A cat likes warm spots. My cat purrs.",
                "The rocket lifts off. A rocket burns fuel fast. The rocket reaches orbit.",
                "Fresh bread smells good. Bake bread at dawn."
            ]
        );
        // packing the same text at the same size ignores the topics
        let packed = chunk(&parsed, &Words, 100);
        assert_eq!(packed.len(), 1);
    }

    #[test]
    fn semantic_chunks_respect_min_and_max_tokens() {
        // min: no cut before 20 tokens, so the cat and rocket sentences stay together
        let (parsed, chunks) = semantic(TOPICS_TEXT, "a.txt", &semantic_config(20, 100));
        check_invariants(&parsed, &chunks, 100);
        assert!(chunks[0].text.contains("cat") && chunks[0].text.contains("rocket"));
        assert!(chunks.iter().rev().skip(1).all(|c| c.token_count >= 20));
        // the last chunk is not cut into a part under min: "Fresh bread..." stays attached
        assert_eq!(chunks.len(), 1, "{chunks:?}");

        // max: 12 tokens cannot hold three cat sentences (17 tokens); the cut falls at the
        // sentence boundary with the largest drop that fits, never above max
        let (parsed, chunks) = semantic(TOPICS_TEXT, "a.txt", &semantic_config(2, 12));
        check_invariants(&parsed, &chunks, 12);
        assert!(chunks.iter().all(|c| c.token_count <= 12));
        // no chunk mixes topics when the limits allow keeping them apart
        for c in &chunks {
            let topics = ["cat", "rocket", "bread"]
                .iter()
                .filter(|t| c.text.contains(*t))
                .count();
            assert_eq!(topics, 1, "{:?}", c.text);
        }
    }

    #[test]
    fn semantic_overlap_repeats_the_previous_sentence() {
        let mut config = semantic_config(4, 100);
        config.overlap = 1;
        let (parsed, chunks) = semantic(TOPICS_TEXT, "a.txt", &config);
        let texts: Vec<_> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts.len(), 3);
        assert!(texts[1].starts_with("My cat purrs. The rocket lifts off."));
        assert!(texts[2].starts_with("The rocket reaches orbit. Fresh bread"));
        for c in &chunks {
            assert_eq!(c.text, &parsed.text[c.span.start..c.span.end]);
            assert_eq!(c.token_count as usize, Words.count_tokens(&c.text));
        }
        // overlap never pushes a chunk over max: with max 17 only whole topics fit
        config.max_tokens = 17;
        let (_, chunks) = semantic(TOPICS_TEXT, "a.txt", &config);
        assert!(chunks.iter().all(|c| c.token_count <= 17), "{chunks:?}");
    }

    #[test]
    fn semantic_keeps_code_and_tables_whole_and_headings_apart() {
        let md = "# Cats\n\nThe cat sleeps. The cat eats.\n\n```\nrocket = 1\nrocket = 2\n```\n\n\
                  | cat | rocket |\n|---|---|\n| 1 | 2 |\n\n# Bread\n\nBake bread.\n";
        let (parsed, chunks) = semantic(md, "a.md", &semantic_config(1, 100));
        check_invariants(&parsed, &chunks, 100);
        let code = chunks
            .iter()
            .find(|c| c.text.contains("rocket = 1"))
            .unwrap();
        assert!(code.text.contains("rocket = 2"), "code block was split");
        let table = chunks.iter().find(|c| c.text.contains("| cat |")).unwrap();
        assert!(table.text.contains("| 1 | 2 |"), "table was split");
        let bread = chunks.iter().find(|c| c.text.contains("bread")).unwrap();
        assert_eq!(bread.heading_path, ["Bread"]);
        assert_eq!(bread.text, "Bake bread.");
    }

    #[test]
    fn semantic_falls_back_to_packing_on_mismatched_vectors() {
        let config = semantic_config(4, 100);
        let parsed = parse(TOPICS_TEXT.as_bytes(), "a.txt").unwrap();
        let plan = plan(&parsed, &Words, &config);
        assert!(plan.sections[0].needs_vectors);
        let chunks = cut(&parsed, &plan, &[vec![1.0]], &Words, &config);
        assert_eq!(chunks, chunk(&parsed, &Words, 100));
    }

    #[test]
    fn small_sections_need_no_embeddings() {
        let config = semantic_config(50, 100);
        let parsed = parse(b"# A\n\nOne. Two.\n\n# B\n\nSingle.\n", "a.md").unwrap();
        let plan = plan(&parsed, &Words, &config);
        assert!(plan.texts(&parsed).is_empty());
        let chunks = cut(&parsed, &plan, &[], &Words, &config);
        let texts: Vec<_> = chunks.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, vec!["One. Two.", "Single."]);
    }

    #[test]
    fn signatures_change_with_every_setting() {
        let base = semantic_config(50, 200);
        let sig = signature(&base);
        assert_eq!(sig, "semantic-v2 max=200 min=50 pct=50 overlap=0");
        let mut other = base.clone();
        other.overlap = 1;
        assert_ne!(signature(&other), sig);
        other = base.clone();
        other.max_tokens = 100;
        assert_ne!(signature(&other), sig);
        other = base.clone();
        other.strategy = ChunkStrategy::Pack;
        assert_eq!(signature(&other), "pack-v2 max=200");
    }

    #[test]
    fn percentile_interpolates() {
        assert_eq!(percentile(&[], 90.0), f32::INFINITY);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 50.0), 2.0);
        assert_eq!(percentile(&[1.0, 2.0], 50.0), 1.5);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 100.0), 5.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.0), 1.0);
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
            // the semantic cut keeps the same invariants whatever the embeddings say
            let config = ChunkConfig {
                strategy: ChunkStrategy::Semantic,
                max_tokens: max,
                min_tokens: (rng.next() % 10) as usize,
                percentile: (rng.next() % 101) as f32,
                overlap: 0,
                piece_vectors: false,
            };
            let plan = plan(&parsed, &Words, &config);
            let vectors: Vec<Vec<f32>> = plan
                .texts(&parsed)
                .iter()
                .map(|_| {
                    let angle = (rng.next() % 1000) as f32 / 100.0;
                    vec![angle.cos(), angle.sin()]
                })
                .collect();
            let chunks = cut(&parsed, &plan, &vectors, &Words, &config);
            check_invariants(&parsed, &chunks, max);
            checked += 1;
        }
        assert!(checked > 500);
    }
}
