//! Cutting text into the pieces that are embedded one by one.

use crate::{Embedder, Error, Result};

/// The pieces a passage is read in by the sentence reranker (and embedded in at ingest when
/// `[chunk] piece_vectors` is on): its lines (extracted PDF text breaks lines inside
/// sentences, and then a line is the unit), each cut again after a sentence or clause mark
/// followed by white space. Trimmed, never empty.
pub fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut start = 0;
        let mut chars = line.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let ends = matches!(c, '.' | '!' | '?' | ';' | ':' | '。' | '！' | '？' | '；');
            if ends && chars.peek().is_some_and(|(_, next)| next.is_whitespace()) {
                let end = i + c.len_utf8();
                out.push(&line[start..end]);
                start = end;
            }
        }
        out.push(&line[start..]);
    }
    out.into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Embeds the `whole` texts as they are and the [`pieces`] of each of `texts` (`None`: none
/// of it), in one call to `embedder`. Returns the vectors of `whole`, and for each of `texts`
/// the vectors of its pieces one after another (empty for `None`). Ingest and the sentence
/// reranker both embed pieces this way, so stored and query-time vectors are the same.
pub async fn embed_pieces(
    embedder: &dyn Embedder,
    whole: Vec<String>,
    texts: &[Option<&str>],
) -> Result<(Vec<Vec<f32>>, Vec<Vec<f32>>)> {
    let wholes = whole.len();
    let mut inputs = whole;
    let mut owner = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        for piece in text.map(pieces).unwrap_or_default() {
            inputs.push(piece.to_string());
            owner.push(i);
        }
    }
    let count = inputs.len();
    let embedded = embedder.embed(inputs).await?;
    if embedded.vectors.len() != count {
        return Err(Error::internal(format!(
            "the embedder {} returned {} vectors for {count} texts",
            embedder.model_id(),
            embedded.vectors.len()
        )));
    }
    let mut vectors = embedded.vectors;
    let of_pieces = vectors.split_off(wholes);
    let mut flat = vec![Vec::new(); texts.len()];
    for (vector, i) in of_pieces.into_iter().zip(owner) {
        flat[i].extend(vector);
    }
    Ok((vectors, flat))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_lines_cut_after_sentence_marks() {
        let text =
            "Press Ctrl-Alt-F3. Then log in;  type reset\nto fix it: done\n\n  \nv1.2 is out";
        assert_eq!(
            pieces(text),
            [
                "Press Ctrl-Alt-F3.",
                "Then log in;",
                "type reset",
                "to fix it:",
                "done",
                "v1.2 is out"
            ]
        );
        assert_eq!(pieces("完成。 下一步"), ["完成。", "下一步"]);
        assert!(pieces(" \n ").is_empty());
    }
}
