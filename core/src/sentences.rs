//! The one sentence splitter: the chunker cuts oversized paragraphs with it, the
//! extractive answerer quotes its sentences, and the verifier checks an answer sentence by
//! sentence with it, so all three agree on what a sentence is.
//!
//! - Unicode sentence boundaries (UAX #29), plus the Chinese full stop, exclamation and
//!   question marks (`。！？`), which the Unicode rules do not always cut at.
//! - A single line break is not a boundary: extracted PDF text breaks lines inside
//!   sentences, and a quote must be a whole sentence, not "…is the absence of vertical".
//!   A line break still ends a sentence before a line that opens a list item (`-`, `*`,
//!   `•`, `1.`, `2)`, `(3)`), after a line ending in `:`, and a blank line always does.
//! - A citation marker (`[2]`, `[1, 3]`) is never cut, and one that follows a sentence's end
//!   ("Done.[1]", "Done. [1]", "完成。[1]") belongs to that sentence.
//! - A list item's number (`2.`, `(3)`) is not a sentence of its own: it opens the next.

use unicode_segmentation::UnicodeSegmentation;

/// The sentences of `text` as (start, end) byte ranges, trimmed of whitespace, in order,
/// never empty; see the module documentation.
pub fn sentences(text: &str) -> Vec<(usize, usize)> {
    // Line breaks that do not end a sentence are read as spaces: one byte for one, so
    // every offset stays an offset into `text`.
    let bytes = text.as_bytes();
    let mut joined = String::with_capacity(text.len());
    let mut hard = Vec::new();
    for (i, c) in text.char_indices() {
        if c == '\n' {
            let rest = &text[i + 1..];
            let blank = rest.trim_start_matches([' ', '\t', '\r']).starts_with('\n')
                || text[..i]
                    .trim_end_matches([' ', '\t', '\r'])
                    .ends_with('\n');
            let before = text[..i].trim_end();
            if blank || opens_list_item(rest) || before.ends_with(':') {
                hard.push(i + 1);
            }
            joined.push(' ');
        } else if c == '\r' && text[i + 1..].starts_with('\n') {
            joined.push(' ');
        } else {
            joined.push(c);
        }
    }
    debug_assert_eq!(joined.len(), bytes.len());
    let mut cuts = hard;
    for (at, piece) in joined.split_sentence_bound_indices() {
        for (i, c) in piece.char_indices() {
            if matches!(c, '。' | '！' | '？') {
                cuts.push(at + i + c.len_utf8());
            }
        }
        cuts.push(at + piece.len());
    }
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for mut cut in cuts {
        if cut <= start {
            continue;
        }
        if let Some(open) = text[start..cut].rfind('[').map(|o| start + o)
            && let Some((len, _)) = marker(&text[open..])
        {
            cut = cut.max(open + len);
        }
        // A marker right after a sentence's end belongs to it.
        while let Some((len, _)) = marker(text[cut..].trim_start_matches([' ', '\t'])) {
            cut = text.len() - text[cut..].trim_start_matches([' ', '\t']).len() + len;
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

/// Whether the line starting at `rest` opens a list item: a bullet or an item number
/// followed by white space.
fn opens_list_item(rest: &str) -> bool {
    let line = rest.trim_start_matches([' ', '\t']);
    let Some((first, _)) = line.split_once(char::is_whitespace) else {
        return false;
    };
    matches!(first, "-" | "*" | "•" | "–" | "·") || is_list_number(first)
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
        assert_eq!(texts("One\n \nTwo"), ["One", "Two"]);
        assert!(texts("   \n ").is_empty());
    }

    #[test]
    fn a_line_break_inside_a_sentence_does_not_cut_it() {
        // Extracted PDF text: lines end where the page's lines ended.
        let pdf = "The cause of the jam is the absence of vertical\nalignment in tray 2. Fan the \
                   paper\nbefore loading it.";
        assert_eq!(
            texts(pdf),
            [
                "The cause of the jam is the absence of vertical\nalignment in tray 2.",
                "Fan the paper\nbefore loading it."
            ]
        );
        // Lists and lines ending in a colon still break.
        assert_eq!(
            texts("You need:\n- a key\n- a lock\n1. Open it\n2. Close it"),
            [
                "You need:",
                "- a key",
                "- a lock",
                "1. Open it",
                "2. Close it"
            ]
        );
        assert_eq!(
            texts("日志保存在\n/var/log 中。然后重启。"),
            ["日志保存在\n/var/log 中。", "然后重启。"]
        );
        // Offsets index the original text, line breaks and all.
        let t = "alpha beta\r\ngamma. Delta";
        for (a, b) in sentences(t) {
            assert!(t.is_char_boundary(a) && t.is_char_boundary(b));
        }
        assert_eq!(texts(t), ["alpha beta\r\ngamma.", "Delta"]);
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
            ["Open it. [1, 2]", "Then go."]
        );
        assert_eq!(
            texts("打开纸盒。[1]取出纸张。"),
            ["打开纸盒。[1]", "取出纸张。"]
        );
        assert_eq!(
            texts("See [optional]. Then go."),
            ["See [optional].", "Then go."]
        );
        let odd = "Unclosed.[1 Then go.";
        assert_eq!(texts(odd).concat().replace(' ', ""), odd.replace(' ', ""));
        assert_eq!(marker("[1, 3] x"), Some((6, vec![1, 3])));
        assert_eq!(marker("[+1]"), None);
        assert_eq!(marker("[a]"), None);
    }
}
