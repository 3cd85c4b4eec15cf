//! Content terms of a text, for lexical matching: lower-case words of three or more letters
//! that are not stop words, and each Chinese character.

use std::collections::HashSet;

pub(crate) fn is_cjk(s: &str) -> bool {
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
}
