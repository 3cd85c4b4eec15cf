//! Markdown (CommonMark with GFM tables and strikethrough, via `pulldown-cmark`).
//!
//! The extracted text is the Markdown source itself, so chunk spans point into the file
//! as the author wrote it. Top-level elements become blocks: paragraphs (also block
//! quotes and HTML blocks), one block per whole list (nested lists included), fenced or
//! indented code, tables. Headings become [`BlockKind::Heading`] blocks and set the
//! heading path of what follows: a level-n heading replaces the previous level-n heading
//! and everything below it. YAML front matter (`---` ... `---` at the very top) is
//! skipped. The title is the first H1, else the front matter's `title:`, else the first
//! line with text, else the file stem.

use super::{Block, BlockKind, Parsed, clip_title, trim_span};
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// Parses decoded Markdown (never whitespace-only: the caller checked).
pub(super) fn parse(text: String, stem: &str) -> Parsed {
    let (body_start, front_title) = front_matter(&text);
    let body = &text[body_start..];
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;

    let mut blocks = Vec::new();
    let mut headings: Vec<(u8, String)> = Vec::new();
    let mut first_h1: Option<String> = None;
    // Nesting depth of open tags: 0 means the next Start is a top-level element.
    let mut depth = 0usize;
    // The heading being read: its level, its source range and the text collected so far.
    let mut open_heading: Option<(u8, usize, usize, String)> = None;

    for (event, range) in Parser::new_ext(body, options).into_offset_iter() {
        let (start, end) = (range.start + body_start, range.end + body_start);
        match event {
            Event::Start(tag) => {
                if depth == 0 {
                    match tag {
                        Tag::Heading { level, .. } => {
                            open_heading = Some((level as u8, start, end, String::new()));
                        }
                        other => {
                            if let Some(kind) = block_kind(&other)
                                && let Some(span) = trim_span(&text, start, end)
                            {
                                let heading_path = path_of(&headings);
                                blocks.push(Block {
                                    span,
                                    page: 1,
                                    heading_path,
                                    kind,
                                });
                            }
                        }
                    }
                }
                depth += 1;
            }
            Event::End(end_tag) => {
                depth = depth.saturating_sub(1);
                if depth == 0
                    && matches!(end_tag, TagEnd::Heading(_))
                    && let Some((level, h_start, h_end, raw)) = open_heading.take()
                {
                    let title = collapse_whitespace(&raw);
                    if level == 1 && first_h1.is_none() && !title.is_empty() {
                        first_h1 = Some(title.clone());
                    }
                    headings.retain(|(l, _)| *l < level);
                    if !title.is_empty() {
                        headings.push((level, title));
                    }
                    if let Some(span) = trim_span(&text, h_start, h_end) {
                        let heading_path = path_of(&headings);
                        blocks.push(Block {
                            span,
                            page: 1,
                            heading_path,
                            kind: BlockKind::Heading,
                        });
                    }
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some((.., raw)) = open_heading.as_mut() {
                    raw.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some((.., raw)) = open_heading.as_mut() {
                    raw.push(' ');
                }
            }
            _ => {}
        }
    }

    let title = first_h1
        .or(front_title)
        .or_else(|| first_line(body))
        .map(|t| clip_title(&t))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| stem.to_string());
    Parsed {
        text,
        title,
        mime: "text/markdown",
        pages: 1,
        blocks,
    }
}

/// The block kind of a top-level element, or `None` for what is not content
/// (thematic breaks, link reference definitions produce no Start at all).
fn block_kind(tag: &Tag<'_>) -> Option<BlockKind> {
    match tag {
        Tag::CodeBlock(_) => Some(BlockKind::Code),
        Tag::List(_) => Some(BlockKind::List),
        Tag::Table(_) => Some(BlockKind::Table),
        Tag::MetadataBlock(_) => None,
        _ => Some(BlockKind::Paragraph),
    }
}

fn path_of(headings: &[(u8, String)]) -> Vec<String> {
    headings.iter().map(|(_, t)| t.clone()).collect()
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where the body starts after YAML front matter (0 without any), and the front
/// matter's `title:` value if it has one.
///
/// Front matter is a first line of exactly `---`, then lines up to a closing `---` or
/// `...` line. Without a closing line the document has no front matter.
fn front_matter(text: &str) -> (usize, Option<String>) {
    let Some(rest) = text.strip_prefix("---\n") else {
        return (0, None);
    };
    let mut pos = 4;
    let mut title = None;
    for line in rest.split_inclusive('\n') {
        pos += line.len();
        let content = line.trim_end();
        if content == "---" || content == "..." {
            return (pos, title);
        }
        if title.is_none()
            && let Some(value) = content.strip_prefix("title:")
        {
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'').trim();
            if !value.is_empty() {
                title = Some(value.to_string());
            }
        }
    }
    (0, None)
}

/// The first line with text, without Markdown heading or quote markers.
fn first_line(body: &str) -> Option<String> {
    body.lines()
        .map(|l| l.trim().trim_start_matches(['#', '>']).trim())
        .find(|l| !l.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::test_blocks as blocks;

    #[test]
    fn nested_headings_build_paths() {
        let src = "# Guide\n\nIntro.\n\n## Install\n\nRun it.\n\n### On Linux\n\nUse apt.\n\n\
                   ## Configure\n\nEdit the file.\n\n# Appendix\n\nMore.\n";
        let p = parse(src.into(), "stem");
        use BlockKind::*;
        assert_eq!(
            blocks(&p),
            vec![
                (Heading, "# Guide", vec!["Guide"]),
                (Paragraph, "Intro.", vec!["Guide"]),
                (Heading, "## Install", vec!["Guide", "Install"]),
                (Paragraph, "Run it.", vec!["Guide", "Install"]),
                (
                    Heading,
                    "### On Linux",
                    vec!["Guide", "Install", "On Linux"]
                ),
                (Paragraph, "Use apt.", vec!["Guide", "Install", "On Linux"]),
                (Heading, "## Configure", vec!["Guide", "Configure"]),
                (Paragraph, "Edit the file.", vec!["Guide", "Configure"]),
                (Heading, "# Appendix", vec!["Appendix"]),
                (Paragraph, "More.", vec!["Appendix"]),
            ]
        );
        assert_eq!(p.title, "Guide");
        assert_eq!(p.pages, 1);
    }

    #[test]
    fn heading_text_drops_markup_and_setext_works() {
        let src = "Big *Title* `v2`\n================\n\nbody\n";
        let p = parse(src.into(), "stem");
        assert_eq!(p.title, "Big Title v2");
        assert_eq!(p.blocks[1].heading_path, vec!["Big Title v2".to_string()]);
    }

    #[test]
    fn front_matter_is_skipped() {
        let src =
            "---\ntitle: \"From YAML\"\ntags: [a, b]\n---\nFirst paragraph.\n\n## Sub\n\nText.\n";
        let p = parse(src.into(), "stem");
        assert_eq!(p.title, "From YAML");
        let b = blocks(&p);
        assert_eq!(b[0], (BlockKind::Paragraph, "First paragraph.", vec![]));
        assert!(b.iter().all(|(_, t, _)| !t.contains("tags")));
        // spans index the whole file, front matter included
        assert_eq!(
            &p.text[p.blocks[0].span.start..p.blocks[0].span.end],
            "First paragraph."
        );
    }

    #[test]
    fn unclosed_front_matter_is_ordinary_text() {
        let p = parse("---\nnot: closed\n\nbody\n".into(), "stem");
        let b = blocks(&p);
        assert!(b.iter().any(|(_, t, _)| t.contains("not: closed")), "{b:?}");
    }

    #[test]
    fn code_blocks_stay_whole() {
        let src = "Before.\n\n```rust\nfn main() {\n\n    println!(\"hi\");\n}\n```\n\nAfter.\n";
        let p = parse(src.into(), "stem");
        let b = blocks(&p);
        assert_eq!(b.len(), 3);
        assert_eq!(
            b[1],
            (
                BlockKind::Code,
                "```rust\nfn main() {\n\n    println!(\"hi\");\n}\n```",
                vec![]
            )
        );
    }

    #[test]
    fn a_list_is_one_block_and_tables_are_blocks() {
        let src = "- one\n- two\n  - nested\n\n  more of two\n- three\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n> quoted\n";
        let p = parse(src.into(), "stem");
        let b = blocks(&p);
        assert_eq!(b.len(), 3, "{b:?}");
        assert_eq!(b[0].0, BlockKind::List);
        assert!(
            b[0].1.starts_with("- one") && b[0].1.ends_with("- three"),
            "{:?}",
            b[0].1
        );
        assert_eq!(
            b[1],
            (BlockKind::Table, "| a | b |\n|---|---|\n| 1 | 2 |", vec![])
        );
        assert_eq!(b[2], (BlockKind::Paragraph, "> quoted", vec![]));
    }

    #[test]
    fn title_without_h1_is_the_first_line() {
        let p = parse("## Not a title level\n\ntext\n".into(), "stem");
        assert_eq!(p.title, "Not a title level");
        let p = parse("plain first line\nsecond\n".into(), "stem");
        assert_eq!(p.title, "plain first line");
    }

    #[test]
    fn thematic_breaks_are_not_blocks() {
        let p = parse("one\n\n---\n\ntwo\n".into(), "stem");
        let b = blocks(&p);
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].1, b[1].1), ("one", "two"));
    }
}
