//! The inputs of the suites: passages from `bench/corpus/fetch`, questions from the judged
//! sets under `eval/`.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// The corpus folder: `--corpus`, or `~/.cache/cairn/bench/corpus`.
pub fn dir(args: &super::Args) -> PathBuf {
    args.corpus.clone().unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/cairn/bench/corpus")
    })
}

/// The corpus's passages in file order (the first `--passages` of them when set).
pub fn passages(args: &super::Args) -> Result<Vec<String>> {
    let path = dir(args).join("passages.jsonl");
    let file = std::fs::File::open(&path).with_context(|| {
        format!(
            "opening {}: run bench/corpus/fetch first (it downloads the Debian documentation \
             packages the benchmarks read)",
            path.display()
        )
    })?;
    #[derive(serde::Deserialize)]
    struct Line {
        text: String,
    }
    let limit = args.passages.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for line in std::io::BufReader::new(file).lines().take(limit) {
        let line: Line = serde_json::from_str(&line?)
            .with_context(|| format!("{}: a line is not a passage", path.display()))?;
        out.push(line.text);
    }
    if out.is_empty() {
        bail!("{} holds no passages", path.display());
    }
    Ok(out)
}

/// How many passages [`passages`] would return, without parsing them.
pub fn count(args: &super::Args) -> Result<usize> {
    let path = dir(args).join("passages.jsonl");
    let file = std::fs::File::open(&path)
        .with_context(|| format!("opening {}: run bench/corpus/fetch first", path.display()))?;
    let limit = args.passages.unwrap_or(usize::MAX);
    let mut n = 0;
    for line in std::io::BufReader::new(file).lines().take(limit) {
        line?;
        n += 1;
    }
    Ok(n)
}

/// The English questions of the judged sets under `eval/` (written as users phrase them).
pub fn questions() -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Question {
        text: String,
        lang: String,
    }
    let eval = super::bench_dir().with_file_name("eval");
    let mut out = Vec::new();
    for set in ["debian", "multihop"] {
        let path = eval.join(set).join("queries.jsonl");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let q: Question = serde_json::from_str(line)
                .with_context(|| format!("{}: a line is not a question", path.display()))?;
            if q.lang == "en" {
                out.push(q.text.replace('\n', " "));
            }
        }
    }
    Ok(out)
}

/// Writes the questions to `queries.txt` in the corpus folder, for the peers (once, by the
/// parent, before any worker runs); its path.
pub fn write_questions(args: &super::Args, questions: &[String]) -> Result<PathBuf> {
    let file = dir(args).join("queries.txt");
    std::fs::write(&file, questions.join("\n") + "\n")
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(file)
}
