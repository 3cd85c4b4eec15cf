//! Content terms of a text, for lexical matching: lower-case words of three or more letters
//! that are not stop words, and each Chinese character.

use std::collections::HashSet;

pub fn is_cjk(s: &str) -> bool {
    s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

/// Words that carry no topic.
const STOPWORDS: &[&str] = &[
    "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "had", "her", "was",
    "one", "our", "out", "has", "have", "how", "what", "when", "where", "which", "who", "why",
    "does", "did", "with", "this", "that", "from", "into", "about", "there", "their", "them",
    "then", "than", "its", "his", "she", "they", "will", "would", "should", "could", "may", "get",
    "use", "using", "way",
];

/// The question's content terms: lower-case words of 3+ letters that are not stop words,
/// and each Chinese character.
pub(crate) fn terms(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if is_cjk(word) {
            out.extend(
                word.chars()
                    .filter(|c| is_cjk(&c.to_string()))
                    .map(String::from),
            );
            continue;
        }
        let w = word.to_lowercase();
        if w.chars().count() >= 3 && !STOPWORDS.contains(&w.as_str()) {
            out.insert(w);
        }
    }
    out
}

/// English words that the lexical index leaves out (tantivy's English stop words), so a
/// search for one alone finds nothing whatever the documents say.
const FUNCTION_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// The names a question mentions, for [`AnswerConfig::unknown_names`]: in a question in
/// CJK script its words in Latin script ([`latin_names`]), in any other its capitalised
/// words ([`capitalised_names`]).
///
/// [`AnswerConfig::unknown_names`]: cairn_core::config::AnswerConfig::unknown_names
pub fn question_names(question: &str) -> Vec<&str> {
    if is_cjk(question) {
        latin_names(question)
    } else {
        capitalised_names(question)
    }
}

/// Adds `word` to `out` unless it is there already (in any case) or is an English function
/// word, which the lexical index leaves out.
fn push_name<'a>(out: &mut Vec<&'a str>, word: &'a str) {
    let lower = word.to_ascii_lowercase();
    if !FUNCTION_WORDS.contains(&lower.as_str())
        && !out.iter().any(|w| w.eq_ignore_ascii_case(word))
    {
        out.push(word);
    }
}

/// In a question written in CJK script, the words in Latin script: there they are names of
/// programs, packages, protocols or things ("ufw", "SR-7781"). Words of two or more
/// characters with a letter, English function words left out, each once, in order; none for
/// a question not in CJK script.
pub fn latin_names(question: &str) -> Vec<&str> {
    if !is_cjk(question) {
        return Vec::new();
    }
    let mut out: Vec<&str> = Vec::new();
    let in_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+');
    for word in question.split(|c: char| !in_name(c)) {
        let word = word.trim_matches(|c: char| matches!(c, '-' | '_' | '.'));
        if word.len() >= 2 && word.bytes().any(|b| b.is_ascii_alphabetic()) {
            push_name(&mut out, word);
        }
    }
    out
}

/// In a question in a Latin script, the words written as names: with a capital letter
/// after their first ("MOK", "WireGuard", "LaTeX"), or capitalised where a sentence does
/// not begin ("a Gantt chart"). A possessive or contraction is cut at its apostrophe
/// ("Debian's"); words with a digit ("F3", "#1F6FB2", "1.2") are left out, since they are
/// more often keys, values or versions than names. Each once, in order; none for a
/// question in CJK script.
pub fn capitalised_names(question: &str) -> Vec<&str> {
    if is_cjk(question) {
        return Vec::new();
    }
    let in_word = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_' | '+' | '\'' | '’');
    let mut out: Vec<&str> = Vec::new();
    let mut sentence_start = true;
    let mut rest = question;
    while let Some(begin) = rest.find(in_word) {
        // Text between words: a sentence ends at a full stop, question or exclamation
        // mark, or colon followed by a space (not in "v1.2" or "e.g.": no space after).
        let gap = &rest[..begin];
        if gap.contains(['?', '!'])
            || (gap.trim_end().ends_with(['.', ':']) && gap.ends_with(char::is_whitespace))
        {
            sentence_start = true;
        }
        let after = &rest[begin..];
        let len = after.find(|c: char| !in_word(c)).unwrap_or(after.len());
        let word = &after[..len];
        rest = &after[len..];
        let starts = std::mem::replace(&mut sentence_start, false);
        let word = word
            .split(['\'', '’'])
            .next()
            .unwrap_or_default()
            .trim_matches(|c: char| matches!(c, '-' | '_'));
        if word.chars().count() < 2 || word.chars().any(|c| c.is_ascii_digit()) {
            continue;
        }
        let mut chars = word.chars();
        let first_upper = chars.next().is_some_and(char::is_uppercase);
        let later_upper = chars.any(char::is_uppercase);
        if later_upper || first_upper && !starts {
            push_name(&mut out, word);
        }
    }
    out
}

/// The identifiers in a text: words with both a letter and a digit ("FIN-88R", "POP3",
/// "de_DE.UTF-8"), each once, in order. Embeddings place them poorly; a passage that has
/// them verbatim is about them.
pub fn identifiers(text: &str) -> Vec<&str> {
    let in_word = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '+');
    let mut out: Vec<&str> = Vec::new();
    for word in text.split(|c: char| !in_word(c)) {
        let word = word.trim_matches(|c: char| matches!(c, '-' | '_' | '.' | '+'));
        if word.chars().any(|c| c.is_alphabetic())
            && word.chars().any(|c| c.is_ascii_digit())
            && !out.iter().any(|w| w.eq_ignore_ascii_case(word))
        {
            out.push(word);
        }
    }
    out
}

/// The share of `terms` that `sentence` contains (0 when there are none).
pub(crate) fn overlap(terms: &HashSet<String>, sentence: &str) -> f32 {
    if terms.is_empty() {
        return 0.0;
    }
    let have = self::terms(sentence);
    terms.iter().filter(|t| have.contains(*t)).count() as f32 / terms.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_skip_stop_words_and_split_chinese() {
        let t = terms("How do I clear the Printer jam? 清除卡纸");
        for want in ["clear", "printer", "jam", "清", "纸"] {
            assert!(t.contains(want), "{want} in {t:?}");
        }
        assert!(!t.contains("how") && !t.contains("the"));
        assert!((overlap(&t, "Clear the printer.") - 2.0 / 7.0).abs() < 1e-6);
    }

    #[test]
    fn latin_words_in_cjk_questions_are_names() {
        assert_eq!(
            latin_names("怎样用 ufw 防火墙放行 80 和 443 端口？"),
            ["ufw"]
        );
        assert_eq!(
            latin_names("用 dpkg -i 装 deb 包，SSH 和 ssh 转发到 SMTP/POP3 端口。"),
            ["dpkg", "deb", "SSH", "SMTP", "POP3"]
        );
        assert_eq!(latin_names("SR-7781 是哪里的读卡器"), ["SR-7781"]);
        assert_eq!(latin_names("用 the 和 a 写 apt-get."), ["apt-get"]);
        assert!(latin_names("How do I configure ufw?").is_empty(), "not CJK");
    }

    #[test]
    fn identifiers_mix_letters_and_digits() {
        assert_eq!(
            identifiers("Is form FIN-88R (or fin-88r) needed for POP3 in de_DE.UTF-8, 2024?"),
            ["FIN-88R", "POP3", "de_DE.UTF-8"]
        );
        assert!(identifiers("where is room 4 and the Helios board?").is_empty());
    }

    #[test]
    fn capitalised_words_are_names_where_no_sentence_begins() {
        assert_eq!(
            capitalised_names(
                "With Secure Boot enabled, how do I enroll a MOK key for DKMS-built modules?"
            ),
            ["Secure", "Boot", "MOK", "DKMS-built"]
        );
        assert_eq!(
            capitalised_names("Can I draw a Gantt chart in LaTeX? What about WireGuard's setup."),
            ["Gantt", "LaTeX", "WireGuard"]
        );
        // Sentence starts, contractions and the pronoun "I" are no names; words with a
        // digit neither; function words are left out; each name once.
        assert_eq!(
            capitalised_names(
                "I'd like it. Then press Ctrl-Alt-F3 for colour #1F6FB2 or The ssh; SSH, ssh: Ssh"
            ),
            ["SSH"]
        );
        assert_eq!(capitalised_names("v1.2 Of Debian"), ["Debian"]);
        assert!(capitalised_names("怎样用 ufw 放行端口").is_empty(), "CJK");
        assert_eq!(question_names("怎样用 ufw 放行端口"), ["ufw"]);
        assert_eq!(
            question_names("How do I set up nginx with Docker?"),
            ["Docker"]
        );
    }
}
