//! Citations in a generated answer, and how well the passages support each sentence.
//!
//! A generator is asked to cite passages as `[n]` (numbered from 1 in the prompt).
//! [`parse`] splits its text into sentences and reads each sentence's markers (`[2]`,
//! `[1, 3]`, `[1][3]`; markers that open a sentence belong to the one before, as in
//! "... tray 2. [1] Then ..."). A marker that names no passage is removed from the text and
//! counted. [`verify`] then scores each sentence against the passages it cites:
//! `0.5 * term recall + 0.5 * embedding cosine` (term recall: the share of the sentence's
//! content terms found in the passage), the best over its citations; a sentence citing
//! nothing has support 0, unless it is attributed: given `attribute_at`, a sentence without
//! markers is scored against every passage, and the best one becomes its citation when its
//! support reaches that level. The answer's grounding is the mean support of its sentences.

use crate::terms::{overlap, terms};
use cairn_core::sentences::{marker, sentences, without_list_number};
use cairn_core::{AnswerSentence, Embedder, Result};

/// A generated answer read for its citations.
#[derive(Debug, Clone, PartialEq)]
pub struct Cited {
    /// Each sentence without its markers, and the passages (1-based) it cites.
    pub sentences: Vec<(String, Vec<usize>)>,
    /// Markers that named no passage, removed.
    pub dropped: usize,
}

/// Reads the `[n]` markers of `answer`, given `passages` numbered passages.
pub fn parse(answer: &str, passages: usize) -> Cited {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    let mut dropped = 0;
    for (start, end) in sentences(answer) {
        let (text, cites, leading) = strip_markers(&answer[start..end], passages, &mut dropped);
        // Markers before any words belong to the sentence before.
        if let (Some(prev), false) = (out.last_mut(), leading.is_empty()) {
            for n in leading {
                if !prev.1.contains(&n) {
                    prev.1.push(n);
                }
            }
        }
        if !text.is_empty() {
            out.push((text, cites));
        }
    }
    Cited {
        sentences: out,
        dropped,
    }
}

/// Where to cut a generated answer once the model has begun a sentence that should not be
/// there: the one after its first `max_sentences` (0: no limit), or one that repeats an
/// earlier sentence word for word, whatever the list numbers before them (a small model
/// caught in a loop; known once the sentence after it begins). The cut is where that sentence's words begin, so the sentences kept
/// keep every marker [`parse`] gives them (markers that open a sentence belong to the one
/// before). `None` while neither has happened.
pub fn cut_at(answer: &str, max_sentences: usize) -> Option<usize> {
    // Where each sentence's words begin, and its text without markers.
    let mut seen: Vec<(usize, String)> = Vec::new();
    for (start, end) in sentences(answer) {
        let words = start + markers_before_words(&answer[start..end]);
        if words == end {
            continue;
        }
        if let Some(((at, last), earlier)) = seen.split_last()
            && earlier.iter().any(|(_, text)| text == last)
        {
            return Some(*at);
        }
        if max_sentences > 0 && seen.len() == max_sentences {
            return Some(words);
        }
        let (text, _, _) = strip_markers(&answer[start..end], usize::MAX, &mut 0);
        seen.push((words, without_list_number(&text).to_string()));
    }
    None
}

/// The length of the whitespace and `[n]` markers that open `s`.
fn markers_before_words(s: &str) -> usize {
    let mut at = 0;
    loop {
        at += s[at..].len() - s[at..].trim_start().len();
        match marker(&s[at..]) {
            Some((len, _)) => at += len,
            None => return at,
        }
    }
}

/// The sentence's text without markers, the valid passage numbers it cites after its first
/// word, and those it cites before any word.
fn strip_markers(
    s: &str,
    passages: usize,
    dropped: &mut usize,
) -> (String, Vec<usize>, Vec<usize>) {
    let mut text = String::new();
    let (mut cites, mut leading) = (Vec::new(), Vec::new());
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        text.push_str(&rest[..open]);
        rest = &rest[open..];
        let Some((len, numbers)) = marker(rest) else {
            // Not a marker (e.g. "[optional]"): keep it as text, up to its `]`.
            let end = rest.find(']').map_or(rest.len(), |c| c + 1);
            text.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        };
        let target = if text.trim().is_empty() {
            &mut leading
        } else {
            &mut cites
        };
        for n in numbers {
            if (1..=passages).contains(&n) {
                if !target.contains(&n) {
                    target.push(n);
                }
            } else {
                *dropped += 1;
            }
        }
        rest = &rest[len..];
    }
    text.push_str(rest);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = text.replace(" .", ".").replace(" ,", ",");
    (text, cites, leading)
}

/// Scores each sentence against the passages it cites (`passages[n - 1]` is passage `n`),
/// and cites for the sentences without markers the best passage whose support reaches
/// `attribute_at` (when given); returns the sentences with their support and the answer's
/// grounding.
pub async fn verify(
    cited: &Cited,
    passages: &[&str],
    embedder: &dyn Embedder,
    attribute_at: Option<f32>,
) -> Result<(Vec<AnswerSentence>, f32)> {
    if cited.sentences.is_empty() {
        return Ok((Vec::new(), 0.0));
    }
    let mut texts: Vec<String> = cited.sentences.iter().map(|(t, _)| t.clone()).collect();
    texts.extend(passages.iter().map(|p| p.to_string()));
    let vectors = embedder.embed(texts).await?.vectors;
    let (sent_vecs, passage_vecs) = vectors.split_at(cited.sentences.len());
    let mut out = Vec::with_capacity(cited.sentences.len());
    for ((text, cites), v) in cited.sentences.iter().zip(sent_vecs) {
        let want = terms(text);
        let support_of = |n: usize| {
            let i = n.checked_sub(1)?;
            let p = passages.get(i)?;
            let cosine: f32 = v.iter().zip(&passage_vecs[i]).map(|(a, b)| a * b).sum();
            Some(0.5 * overlap(&want, p) + 0.5 * cosine.max(0.0))
        };
        let support = cites
            .iter()
            .filter_map(|&n| support_of(n))
            .fold(0.0f32, f32::max);
        // The best passage for a sentence without markers; the first one on ties.
        let attributed = match attribute_at {
            Some(at) if cites.is_empty() => (1..=passages.len())
                .filter_map(|n| Some((n, support_of(n)?)))
                .fold(None, |best: Option<(usize, f32)>, (n, s)| match best {
                    Some((_, b)) if b >= s => best,
                    _ => Some((n, s)),
                })
                .filter(|&(_, s)| s >= at),
            _ => None,
        };
        out.push(AnswerSentence {
            text: text.clone(),
            citations: attributed.map_or_else(|| cites.clone(), |(n, _)| vec![n]),
            support: attributed.map_or(support, |(_, s)| s),
            relevance: 0.0,
            supported: true,
            entailed: None,
            attributed: attributed.is_some(),
        });
    }
    let grounding = out.iter().map(|s| s.support).sum::<f32>() / out.len() as f32;
    Ok((out, grounding))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_attach_to_their_sentences_and_bad_ones_are_dropped() {
        let c = parse(
            "E1147 means a paper jam [1]. Open tray 2 and remove the sheet. [2][7] \
             Restart it [1, 2]. Options are [optional] here.",
            2,
        );
        assert_eq!(c.dropped, 1, "[7] names no passage");
        let got: Vec<(&str, Vec<usize>)> = c
            .sentences
            .iter()
            .map(|(t, n)| (t.as_str(), n.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("E1147 means a paper jam.", vec![1]),
                ("Open tray 2 and remove the sheet.", vec![2]),
                ("Restart it.", vec![1, 2]),
                ("Options are [optional] here.", vec![]),
            ]
        );
        // Markers written against the full stop, in English and Chinese.
        let c = parse("Open tray 2.[2] Restart it.[1] 再试一次。[1]完成。", 2);
        let got: Vec<(&str, &[usize])> = c
            .sentences
            .iter()
            .map(|(t, n)| (t.as_str(), n.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                ("Open tray 2.", &[2][..]),
                ("Restart it.", &[1]),
                ("再试一次。", &[1]),
                ("完成。", &[])
            ]
        );
    }

    #[test]
    fn answers_are_cut_where_the_next_sentence_begins() {
        let text = "E1147 means a paper jam [1]. Open tray 2. [2][1] Restart it [1, 2]. Done";
        assert_eq!(cut_at(text, 0), None, "no limit");
        let one = cut_at(text, 1).expect("a second sentence");
        assert_eq!(&text[one..one + 4], "Open");
        let two = cut_at(text, 2).expect("a third sentence");
        assert!(text[two..].starts_with("Restart"), "{}", &text[two..]);
        // The markers that opened the third sentence stay with the second.
        let kept = parse(&text[..two], 2);
        assert_eq!(kept.sentences.len(), 2);
        assert_eq!(kept.sentences[1], ("Open tray 2.".to_string(), vec![2, 1]));
        assert_eq!(cut_at(text, 4), None, "four sentences only");
        // A sentence of markers alone has not begun.
        assert_eq!(cut_at("Open tray 2. [2]", 1), None);
        assert_eq!(cut_at("Open tray 2. [2] ", 1), None);
        // Chinese full stops end sentences too.
        let zh = "打开纸盒。[1]取出纸张。";
        assert_eq!(&zh[cut_at(zh, 1).unwrap()..], "取出纸张。");
    }

    #[test]
    fn a_repeated_sentence_is_cut_once_it_is_complete() {
        let looped = "Open tray 2 [1]. Remove the sheet [2]. Open tray 2 [1]. Remove";
        let at = cut_at(looped, 0).expect("a loop");
        assert_eq!(&looped[..at], "Open tray 2 [1]. Remove the sheet [2]. ");
        // Not before the repeat is complete: it may still go on differently.
        assert_eq!(
            cut_at("Open tray 2 [1]. Remove the sheet. Open tray", 0),
            None
        );
        assert_eq!(
            cut_at("Open tray 2 [1]. Open tray 2 and close it. Go", 0),
            None
        );
        let listed = "1. Open tray 2 [1]. 2. Open tray 2 [1]. 3. Open";
        assert_eq!(cut_at(listed, 0), Some(listed.find("2. Open").unwrap()));
        // The limit counts the sentences before the repeat.
        assert_eq!(
            cut_at(looped, 1).map(|at| &looped[at..at + 6]),
            Some("Remove")
        );
    }

    const WORDS: crate::BagOfWords =
        crate::BagOfWords(&["jam", "tray", "sheet", "coffee", "badge"]);

    #[tokio::test]
    async fn supported_sentences_score_high_and_unsupported_ones_low() {
        let passages = [
            "A paper jam in tray 2 is cleared by removing the sheet from tray 2.",
            "Coffee is free on Fridays.",
        ];
        let cited = parse(
            "Clear the jam by removing the sheet from tray 2 [1]. \
             Badge photos are taken on Mondays [2]. Nobody cites this one.",
            2,
        );
        let (sentences, grounding) = verify(&cited, &passages, &WORDS, None).await.unwrap();
        assert_eq!(sentences.len(), 3);
        assert!(sentences[0].support > 0.8, "{sentences:?}");
        assert!(sentences[1].support < 0.2, "{sentences:?}");
        assert_eq!(sentences[2].support, 0.0);
        let mean = sentences.iter().map(|s| s.support).sum::<f32>() / 3.0;
        assert!((grounding - mean).abs() < 1e-6);
    }

    /// A sentence without markers cites the passage that supports it best, if that support
    /// is high enough; sentences with markers keep theirs, supported or not.
    #[tokio::test]
    async fn sentences_without_markers_are_attributed_to_their_best_passage() {
        let passages = [
            "Coffee is free on Fridays.",
            "A paper jam in tray 2 is cleared by removing the sheet from tray 2.",
        ];
        let cited = parse(
            "Clear the jam by removing the sheet from tray 2. \
             Badge photos are taken on Mondays. Coffee is free on Fridays [2].",
            2,
        );
        let (sentences, _) = verify(&cited, &passages, &WORDS, Some(0.5)).await.unwrap();
        let got: Vec<(Vec<usize>, bool)> = sentences
            .iter()
            .map(|s| (s.citations.clone(), s.attributed))
            .collect();
        assert_eq!(
            got,
            [(vec![2], true), (vec![], false), (vec![2], false)],
            "{sentences:?}"
        );
        assert!(sentences[0].support > 0.8, "{sentences:?}");
        assert_eq!(sentences[1].support, 0.0);
        assert!(
            sentences[2].support < 0.5,
            "the model's own marker is kept and scored"
        );
        // Off: nothing is attributed.
        let (sentences, _) = verify(&cited, &passages, &WORDS, None).await.unwrap();
        assert!(sentences.iter().all(|s| !s.attributed));
        assert!(sentences[0].citations.is_empty() && sentences[0].support == 0.0);
    }
}
