//! Plain text: paragraphs are separated by blank lines, and a form feed (`\x0c`, as
//! `pdftotext` writes between pages) starts a new page. The title is the first non-empty
//! line. The extracted text is the decoded file itself.

use super::{Block, BlockKind, Parsed, clip_title, trim_span};

/// Parses decoded plain text (never whitespace-only: the caller checked).
pub(super) fn parse(text: String, stem: &str) -> Parsed {
    let mut blocks = Vec::new();
    let mut pages = 0u32;
    let mut page_start = 0usize;
    for (index, page_text) in text.split('\x0c').enumerate() {
        let page = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let before = blocks.len();
        paragraphs(
            &text,
            page_start,
            page_start + page_text.len(),
            page,
            &mut blocks,
        );
        // A trailing form feed (one after the last page) does not open an empty page.
        if blocks.len() > before || !page_text.trim().is_empty() || index == 0 {
            pages = page;
        }
        page_start += page_text.len() + 1;
    }
    let title = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(clip_title)
        .unwrap_or_else(|| stem.to_string());
    Parsed {
        text,
        title,
        mime: "text/plain",
        pages: pages.max(1),
        blocks,
    }
}

/// Pushes one paragraph block per run of non-blank lines in `text[start..end]`.
fn paragraphs(text: &str, start: usize, end: usize, page: u32, out: &mut Vec<Block>) {
    let mut para_start: Option<usize> = None;
    let mut pos = start;
    for line in text[start..end].split_inclusive('\n') {
        let blank = line.trim().is_empty();
        match (blank, para_start) {
            (false, None) => para_start = Some(pos),
            (true, Some(s)) => {
                push(text, s, pos, page, out);
                para_start = None;
            }
            _ => {}
        }
        pos += line.len();
    }
    if let Some(s) = para_start {
        push(text, s, end, page, out);
    }
}

fn push(text: &str, start: usize, end: usize, page: u32, out: &mut Vec<Block>) {
    if let Some(span) = trim_span(text, start, end) {
        out.push(Block {
            span,
            page,
            heading_path: Vec::new(),
            kind: BlockKind::Paragraph,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(p: &Parsed) -> Vec<(&str, u32)> {
        p.blocks
            .iter()
            .map(|b| (&p.text[b.span.start..b.span.end], b.page))
            .collect()
    }

    #[test]
    fn paragraphs_are_split_at_blank_lines() {
        let p = parse(
            "\n  Title line  \nstill first\n\n \t\nSecond one.\n\n\nThird\n".into(),
            "f",
        );
        assert_eq!(
            texts(&p),
            vec![
                ("Title line  \nstill first", 1),
                ("Second one.", 1),
                ("Third", 1)
            ]
        );
        assert_eq!(p.title, "Title line");
        assert_eq!(p.pages, 1);
        assert!(
            p.blocks
                .iter()
                .all(|b| b.kind == BlockKind::Paragraph && b.heading_path.is_empty())
        );
    }

    #[test]
    fn form_feeds_start_pages() {
        let p = parse(
            "page one\n\x0cpage two a\n\npage two b\x0c\x0cpage four\x0c\n".into(),
            "f",
        );
        assert_eq!(
            texts(&p),
            vec![
                ("page one", 1),
                ("page two a", 2),
                ("page two b", 2),
                ("page four", 4)
            ]
        );
        // the trailing form feed closes page 4 and does not open a page 5
        assert_eq!(p.pages, 4);
    }

    #[test]
    fn form_feed_inside_a_line_splits_it() {
        let p = parse("end of one\x0cstart of two".into(), "f");
        assert_eq!(texts(&p), vec![("end of one", 1), ("start of two", 2)]);
        assert_eq!(p.pages, 2);
    }

    #[test]
    fn title_is_the_first_line_with_text() {
        let p = parse("\n\nhello".into(), "stem");
        assert_eq!(p.title, "hello");
    }
}
