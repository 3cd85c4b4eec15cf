//! Sentences of a passage with their byte ranges: Unicode sentence boundaries, plus the
//! Chinese full stops (`。！？`) and blank lines, which the Unicode rules do not always cut
//! at.

use unicode_segmentation::UnicodeSegmentation;

/// The sentences of `text` as (start, end) byte ranges, trimmed of whitespace, in order,
/// never empty. A citation marker (`[2]`, `[1, 3]`) is never cut: the Unicode rules would cut
/// "Done.[1] Next" inside the marker, and it stays with the sentence before. A list item's
/// number ("2.", "(3)") is not a sentence of its own: it opens the sentence after it.
pub fn sentences(text: &str) -> Vec<(usize, usize)> {
    let mut cuts = Vec::new();
    for (at, piece) in text.split_sentence_bound_indices() {
        for (i, c) in piece.char_indices() {
            let end = i + c.len_utf8();
            let blank_line = c == '\n' && piece[end..].starts_with('\n');
            if matches!(c, '。' | '！' | '？') || blank_line {
                cuts.push(at + end);
            }
        }
        cuts.push(at + piece.len());
    }
    let mut out = Vec::new();
    let mut start = 0;
    for mut cut in cuts {
        if let Some(open) = text[start..cut].rfind('[').map(|o| start + o)
            && let Some((len, _)) = marker(&text[open..])
        {
            cut = cut.max(open + len);
        }
        if cut > start {
            push_trimmed(text, start, cut, &mut out);
            start = cut;
        }
    }
    // Join each list number to the sentence after it.
    let mut joined: Vec<(usize, usize)> = Vec::with_capacity(out.len());
    let mut after_number = false;
    for (a, b) in out {
        match joined.last_mut() {
            Some(last) if after_number => last.1 = b,
            _ => joined.push((a, b)),
        }
        after_number = is_list_number(&text[a..b]);
    }
    joined
}

/// Whether `s` is only the number of a list item: `2.`, `2)`, `(2)`.
fn is_list_number(s: &str) -> bool {
    let s = s.strip_prefix('(').unwrap_or(s);
    let Some(digits) = s.strip_suffix(['.', ')']) else {
        return false;
    };
    (1..=3).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `sentence` without the list item number that opens it ("2. Open it." → "Open it."), to
/// tell a repeated sentence in a numbered list.
pub fn without_list_number(sentence: &str) -> &str {
    match sentence.split_once(char::is_whitespace) {
        Some((first, rest)) if is_list_number(first) => rest.trim_start(),
        _ => sentence,
    }
}

/// The citation marker (`[2]`, `[1, 3]`: numbers between commas) that opens `s`, if one
/// does: its length in bytes and its numbers. The one reading of a marker, for the sentence
/// splitter and for the parsing of answers.
pub fn marker(s: &str) -> Option<(usize, Vec<usize>)> {
    let inside = s.strip_prefix('[')?;
    let close = inside.find(']')?;
    let numbers = inside[..close]
        .split(',')
        .map(|n| {
            let n = n.trim();
            let digits = !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
            digits.then(|| n.parse::<usize>().ok()).flatten()
        })
        .collect::<Option<Vec<usize>>>()?;
    Some((close + 2, numbers))
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

    #[test]
    fn list_numbers_open_their_items() {
        assert_eq!(
            texts("Steps: 1. Open it [1]. 2. Close it. (3) Done."),
            ["Steps: 1.", "Open it [1].", "2. Close it.", "(3) Done."]
        );
        assert_eq!(texts("1.\n2. Go."), ["1.\n2. Go."]);
        assert_eq!(texts("Version 2. Then go."), ["Version 2.", "Then go."]);
        assert_eq!(texts("Done 1."), ["Done 1."]);
        assert_eq!(without_list_number("2. Close it."), "Close it.");
        assert_eq!(without_list_number("(3)  Done."), "Done.");
        assert_eq!(without_list_number("Version 2. Then"), "Version 2. Then");
    }

    #[test]
    fn citation_markers_are_not_cut() {
        assert_eq!(texts("Open it.[1] Then go."), ["Open it.[1]", "Then go."]);
        assert_eq!(
            texts("Open it. [1, 2] Then go."),
            ["Open it.", "[1, 2] Then go."]
        );
        assert_eq!(
            texts("打开纸盒。[1]取出纸张。"),
            ["打开纸盒。", "[1]", "取出纸张。"]
        );
        assert_eq!(
            texts("See [optional]. Then go."),
            ["See [optional].", "Then go."]
        );
        assert_eq!(texts("Unclosed.[1 Then go."), ["Unclosed.[", "1 Then go."]);
    }
}
