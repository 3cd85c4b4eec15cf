//! TREC run files, the format trec_eval, pytrec_eval and ranx read: one line per retrieved
//! document, `query-id Q0 doc-id rank score run-name`, whitespace separated, ranks from 1.
//!
//! trec_eval orders each query's documents by score, not by the rank column, so the scores
//! written for a ranking should not increase down the list (ties are broken by document
//! id there). A caller with ranks but no scores can write `-(rank as f64)`.

use crate::error::Result;
use crate::lines::for_each_line;
use std::io::{self, Write};
use std::path::Path;

/// One line of a run file.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLine {
    pub query_id: String,
    pub doc_id: String,
    /// 1-based.
    pub rank: usize,
    pub score: f64,
    pub run_name: String,
}

/// Writes one query's ranking (document id and score, best first) as run-file lines, ranks
/// from 1. Fails with [`io::ErrorKind::InvalidInput`], before writing anything, when an id or
/// the run name is empty or holds whitespace (the format could not be read back), or a score
/// is not finite.
pub fn write_ranking<W: Write, S: AsRef<str>>(
    out: &mut W,
    run_name: &str,
    query_id: &str,
    ranked: &[(S, f64)],
) -> io::Result<()> {
    check_field("run name", run_name)?;
    check_field("query id", query_id)?;
    for (doc, score) in ranked {
        check_field("document id", doc.as_ref())?;
        if !score.is_finite() {
            return Err(invalid(format!(
                "score {score} of document {} is not a finite number",
                doc.as_ref()
            )));
        }
    }
    for (i, (doc, score)) in ranked.iter().enumerate() {
        writeln!(
            out,
            "{query_id} Q0 {} {} {score} {run_name}",
            doc.as_ref(),
            i + 1
        )?;
    }
    Ok(())
}

/// Reads a run file back, line by line in file order. A line must have the six fields, a
/// whole-number rank ≥ 1 and a finite score.
pub fn read_run(path: impl AsRef<Path>) -> Result<Vec<RunLine>> {
    let mut lines = Vec::new();
    for_each_line(path.as_ref(), |_, line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [query_id, _q0, doc_id, rank, score, run_name] = fields[..] else {
            return Err(format!(
                "expected 6 fields `query-id Q0 doc-id rank score run-name`, found {}",
                fields.len()
            ));
        };
        let rank = rank
            .parse()
            .ok()
            .filter(|&r: &usize| r >= 1)
            .ok_or_else(|| format!("rank {rank:?} is not a whole number from 1"))?;
        let score = score
            .parse()
            .ok()
            .filter(|s: &f64| s.is_finite())
            .ok_or_else(|| format!("score {score:?} is not a finite number"))?;
        lines.push(RunLine {
            query_id: query_id.into(),
            doc_id: doc_id.into(),
            rank,
            score,
            run_name: run_name.into(),
        });
        Ok(())
    })?;
    Ok(lines)
}

fn check_field(what: &str, value: &str) -> io::Result<()> {
    if value.is_empty() || value.chars().any(char::is_whitespace) {
        return Err(invalid(format!(
            "{what} {value:?} cannot go in a TREC run file (empty or holds whitespace)"
        )));
    }
    Ok(())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EvalError;

    #[test]
    fn writes_the_trec_format_and_reads_it_back() {
        let mut out = Vec::new();
        write_ranking(&mut out, "bm25", "q1", &[("d3", 12.5), ("d1", 7.0)]).unwrap();
        write_ranking(&mut out, "bm25", "q2", &[("doc/a.md", 0.03125)]).unwrap();
        write_ranking::<_, &str>(&mut out, "bm25", "q3", &[]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "q1 Q0 d3 1 12.5 bm25\nq1 Q0 d1 2 7 bm25\nq2 Q0 doc/a.md 1 0.03125 bm25\n"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.txt");
        std::fs::write(&path, &text).unwrap();
        let lines = read_run(&path).unwrap();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1],
            RunLine {
                query_id: "q1".into(),
                doc_id: "d1".into(),
                rank: 2,
                score: 7.0,
                run_name: "bm25".into(),
            }
        );
        assert_eq!(lines[2].score, 0.03125);
    }

    #[test]
    fn refuses_what_the_format_cannot_hold() {
        let mut out = Vec::new();
        let cases = [
            write_ranking(&mut out, "my run", "q1", &[("d1", 1.0)]),
            write_ranking(&mut out, "run", "", &[("d1", 1.0)]),
            write_ranking(&mut out, "run", "q1", &[("d1", 1.0), ("a b.md", 0.5)]),
            write_ranking(&mut out, "run", "q1", &[("d1", f64::NAN)]),
        ];
        for result in cases {
            let err = result.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
        }
        assert!(out.is_empty(), "nothing is written for a refused ranking");
    }

    #[test]
    fn malformed_run_lines_are_reported_with_their_number() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.txt");
        for (content, reason) in [
            ("q1 Q0 d1 1 0.5 run\nq1 Q0 d2 2 0.4\n", "expected 6 fields"),
            ("q1 Q0 d1 1 0.5 run\nq1 Q0 d2 0 0.4 run\n", "rank \"0\""),
            ("q1 Q0 d1 1 0.5 run\nq1 Q0 d2 2 inf run\n", "score \"inf\""),
        ] {
            std::fs::write(&path, content).unwrap();
            let err = read_run(&path).unwrap_err();
            assert!(
                matches!(err, EvalError::Malformed { line: 2, .. }),
                "{err:?}"
            );
            assert!(err.to_string().contains(reason), "{err}");
        }
    }
}
