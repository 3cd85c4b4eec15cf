//! Sentences of a passage with their byte ranges: Unicode sentence boundaries, plus the
//! Chinese full stops (`。！？`) and blank lines, which the Unicode rules do not always cut
//! at.

use unicode_segmentation::UnicodeSegmentation;

/// The sentences of `text` as (start, end) byte ranges, trimmed of whitespace, in order,
/// never empty.
pub fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (at, piece) in text.split_sentence_bound_indices() {
        let mut start = 0;
        for (i, c) in piece.char_indices() {
            let end = i + c.len_utf8();
            let blank_line = c == '\n' && piece[end..].starts_with('\n');
            if matches!(c, '。' | '！' | '？') || blank_line {
                push_trimmed(text, at + start, at + end, &mut out);
                start = end;
            }
        }
        push_trimmed(text, at + start, at + piece.len(), &mut out);
    }
    out
}

fn push_trimmed(text: &str, start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    let slice = &text[start..end];
    let lead = slice.len() - slice.trim_start().len();
    let trail = slice.len() - slice.trim_end().len();
    if lead + trail < slice.len() {
        out.push((start + lead, end - trail));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(t: &str) -> Vec<&str> {
        sentences(t).into_iter().map(|(a, b)| &t[a..b]).collect()
    }

    #[test]
    fn english_chinese_and_blank_lines() {
        assert_eq!(
            texts("Run it. Then stop it!  Done?"),
            ["Run it.", "Then stop it!", "Done?"]
        );
        assert_eq!(
            texts("先安装。然后运行！好吗？"),
            ["先安装。", "然后运行！", "好吗？"]
        );
        assert_eq!(
            texts("Heading line\n\nBody text here"),
            ["Heading line", "Body text here"]
        );
        assert!(texts("   \n ").is_empty());
    }
}
