//! Line-by-line reading shared by every text format of this crate: blank lines are
//! skipped, a UTF-8 byte-order mark and `\r\n` endings are tolerated, and a failure on a
//! line becomes [`EvalError::Malformed`] with the file name and line number.

use crate::error::{EvalError, Result};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Calls `f(line_number, line)` for every non-blank line of `path` (line numbers are
/// 1-based). An `Err(reason)` from `f` stops reading and is reported at that line.
pub(crate) fn for_each_line(
    path: &Path,
    mut f: impl FnMut(usize, &str) -> Result<(), String>,
) -> Result<()> {
    let file = File::open(path).map_err(|e| EvalError::io(path, e))?;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        if reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| EvalError::io(path, e))?
            == 0
        {
            return Ok(());
        }
        number += 1;
        let malformed = |reason: String| EvalError::Malformed {
            path: path.to_owned(),
            line: number,
            reason,
        };
        let text = std::str::from_utf8(&buf).map_err(|_| malformed("not valid UTF-8".into()))?;
        let text = if number == 1 {
            text.strip_prefix('\u{feff}').unwrap_or(text)
        } else {
            text
        };
        let text = text.trim_end_matches(['\n', '\r']);
        if !text.trim().is_empty() {
            f(number, text).map_err(malformed)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_blank_lines_and_bom_and_numbers_lines_from_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, "\u{feff}a\r\n\n   \nb\nc").unwrap();
        let mut seen = Vec::new();
        for_each_line(&path, |n, l| {
            seen.push((n, l.to_string()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [(1, "a".into()), (4, "b".into()), (5, "c".into())] as [(usize, String); 3]
        );
    }

    #[test]
    fn reports_the_failing_line_and_invalid_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.txt");
        std::fs::write(&path, "ok\n\nbad\n").unwrap();
        let err = for_each_line(&path, |_, l| {
            if l == "bad" {
                Err("no good".into())
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(err.to_string(), format!("{}:3: no good", path.display()));

        std::fs::write(&path, b"ok\n\xff\xfe\n").unwrap();
        let err = for_each_line(&path, |_, _| Ok(())).unwrap_err();
        assert!(matches!(err, EvalError::Malformed { line: 2, .. }), "{err}");
    }

    #[test]
    fn missing_file_is_an_io_error_naming_it() {
        let err = for_each_line(Path::new("/nonexistent/qrels.txt"), |_, _| Ok(())).unwrap_err();
        assert!(matches!(err, EvalError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/qrels.txt"));
    }
}
