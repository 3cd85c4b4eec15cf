//! Eval sets: the questions, their relevance judgments (qrels) and the documents to search.
//!
//! [`load`] reads a folder in one of two layouts, told apart by whether `corpus.jsonl` exists:
//!
//! - **BEIR**: `corpus.jsonl` (`{"_id", "title", "text"}` per line), `queries.jsonl`
//!   (`{"_id", "text", ...}`) and `qrels/<split>.tsv` (`query-id corpus-id score`,
//!   tab-separated, after a header line). A query without a `split` field of its own takes the name of the qrels
//!   file it is judged in (`test` for `qrels/test.tsv`), so [`EvalSet::queries_in`] selects
//!   BEIR's splits. Should a query be judged in several files, it takes the first name in
//!   alphabetical order and its judgments are merged.
//! - **Folder**: `queries.jsonl` (`_id` or `id`, `text`), judgments in TREC format
//!   (`query-id iteration doc-id grade`, whitespace separated) in `qrels.txt` and/or in
//!   `qrels/*.txt` and `qrels/*.tsv` (all read and merged; file names do not set splits),
//!   and the documents as files in `docs/`, or in the folder named by `docs` in an optional
//!   `eval.json` (`{"name": "...", "docs": "path"}`, relative to the eval folder or
//!   absolute).
//!
//! In both layouts, `eval.json` may name the set (the default is the folder's name); query
//! lines may carry `split` and `lang`, and other fields (`note`, `metadata`, ...) are
//! ignored. A query with no split is in split [`DEFAULT_SPLIT`]. Queries that have no
//! judgments are kept: they are "no answer" questions, for the caller to report apart.
//!
//! Grades are whole numbers; a negative grade (some TREC collections mark spam with -2)
//! reads as 0, judged not relevant. When a file judges the same (query, document) pair twice,
//! the later line wins, as it does in trec_eval and pytrec_eval.

use crate::error::{EvalError, Result};
use crate::lines::for_each_line;
use crate::metrics::QrelsByQuery;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

/// The split of a query whose `split` field is absent.
pub const DEFAULT_SPLIT: &str = "test";

/// An eval set: questions, judgments and the corpus they are judged against.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalSet {
    /// From `eval.json`'s `name`, else the folder's name.
    pub name: String,
    /// In file order.
    pub queries: Vec<Query>,
    /// Query id → judgments. May hold query ids that `queries` lacks; a query that has no
    /// entry here has no judged documents.
    pub qrels: QrelsByQuery,
    pub corpus: Corpus,
}

/// One question of an eval set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: String,
    pub text: String,
    /// The split given in the file (or, in the BEIR layout, by the qrels file that judges
    /// the query); see [`Query::split`] for the effective one.
    pub split: Option<String>,
    /// A language tag such as `en` or `zh`, when the file gives one.
    pub lang: Option<String>,
}

/// The documents an eval set is judged against.
#[derive(Debug, Clone, PartialEq)]
pub enum Corpus {
    /// The documents of `corpus.jsonl`, in file order.
    Beir(Vec<CorpusDoc>),
    /// A folder of document files (Markdown, PDF, ...) to ingest as they are. The qrels
    /// should name documents by their path relative to this folder (`hr/leave.md`); the
    /// caller maps those ids to what it ingested.
    Folder(PathBuf),
}

/// One document of a BEIR corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusDoc {
    pub id: String,
    /// Empty when the corpus gives none.
    pub title: String,
    pub text: String,
}

impl Query {
    /// The effective split: the `split` field, or [`DEFAULT_SPLIT`] when there is none.
    pub fn split(&self) -> &str {
        self.split.as_deref().unwrap_or(DEFAULT_SPLIT)
    }
}

impl EvalSet {
    /// The queries whose effective split ([`Query::split`]) is `split`, in file order.
    pub fn queries_in<'a>(&'a self, split: &'a str) -> impl Iterator<Item = &'a Query> + 'a {
        self.queries.iter().filter(move |q| q.split() == split)
    }

    /// Every effective split of the queries, sorted, each once.
    pub fn splits(&self) -> Vec<&str> {
        let splits: BTreeSet<&str> = self.queries.iter().map(Query::split).collect();
        splits.into_iter().collect()
    }
}

/// Reads the eval set in folder `path`, in the BEIR or the folder layout (see the module
/// documentation). An error names the file and, for a malformed line, the line number.
pub fn load(path: impl AsRef<Path>) -> Result<EvalSet> {
    let dir = path.as_ref();
    let meta = fs::metadata(dir).map_err(|e| EvalError::io(dir, e))?;
    if !meta.is_dir() {
        return Err(EvalError::layout(
            dir,
            "not a folder (an eval set is a folder with queries.jsonl, qrels and documents)",
        ));
    }
    let manifest = read_manifest(dir)?;
    let name = manifest.name.unwrap_or_else(|| folder_name(dir));

    let queries_path = dir.join("queries.jsonl");
    if !queries_path.is_file() {
        return Err(EvalError::layout(dir, "no queries.jsonl in this folder"));
    }
    let mut queries = load_queries(&queries_path)?;
    if queries.is_empty() {
        return Err(EvalError::layout(&queries_path, "holds no queries"));
    }

    let corpus_path = dir.join("corpus.jsonl");
    let (qrels, corpus) = if corpus_path.is_file() {
        if manifest.docs.is_some() {
            return Err(EvalError::layout(
                dir,
                "eval.json names a docs folder, but the folder also has corpus.jsonl (BEIR \
                 layout): remove one of the two",
            ));
        }
        let files = qrels_files(&dir.join("qrels"), &["tsv"])?;
        if files.is_empty() {
            return Err(EvalError::layout(
                dir,
                "no qrels: the BEIR layout expects qrels/<split>.tsv",
            ));
        }
        let mut qrels = QrelsByQuery::new();
        let mut split_of: HashMap<String, String> = HashMap::new();
        for file in &files {
            let split = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            for (qid, judged) in load_qrels_beir(file)? {
                split_of.entry(qid.clone()).or_insert_with(|| split.clone());
                qrels.entry(qid).or_default().extend(judged);
            }
        }
        for q in queries.iter_mut().filter(|q| q.split.is_none()) {
            q.split = split_of.get(&q.id).cloned();
        }
        (qrels, Corpus::Beir(load_corpus(&corpus_path)?))
    } else {
        let docs = dir.join(manifest.docs.as_deref().unwrap_or(Path::new("docs")));
        if !docs.is_dir() {
            return Err(EvalError::layout(
                dir,
                format!(
                    "no documents: neither corpus.jsonl (BEIR layout) nor the folder {} \
                     (folder layout; eval.json's \"docs\" may name another)",
                    docs.display()
                ),
            ));
        }
        let mut files = Vec::new();
        let single = dir.join("qrels.txt");
        if single.is_file() {
            files.push(single);
        }
        files.extend(qrels_files(&dir.join("qrels"), &["txt", "tsv"])?);
        if files.is_empty() {
            return Err(EvalError::layout(
                dir,
                "no qrels: the folder layout expects qrels.txt or qrels/*.txt (TREC format)",
            ));
        }
        let mut qrels = QrelsByQuery::new();
        for file in &files {
            for (qid, judged) in load_qrels_trec(file)? {
                qrels.entry(qid).or_default().extend(judged);
            }
        }
        (qrels, Corpus::Folder(docs))
    };
    Ok(EvalSet {
        name,
        queries,
        qrels,
        corpus,
    })
}

/// Reads a `queries.jsonl`: one JSON object per line with the id in `_id` (or `id`; a
/// string or a number) and a non-empty `text`; `split` and `lang` are optional, other
/// fields are ignored. A query id may appear only once.
pub fn load_queries(path: impl AsRef<Path>) -> Result<Vec<Query>> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(rename = "_id")]
        beir_id: Option<Value>,
        id: Option<Value>,
        text: String,
        split: Option<String>,
        lang: Option<String>,
    }
    let mut queries = Vec::new();
    let mut line_of: HashMap<String, usize> = HashMap::new();
    for_each_line(path.as_ref(), |number, line| {
        let raw: Raw = serde_json::from_str(line).map_err(json_error)?;
        let id = json_id(raw.beir_id.or(raw.id))?;
        if raw.text.trim().is_empty() {
            return Err(format!("query {id:?} has an empty text"));
        }
        if let Some(first) = line_of.insert(id.clone(), number) {
            return Err(format!(
                "query id {id:?} appears twice (first on line {first})"
            ));
        }
        queries.push(Query {
            id,
            text: raw.text,
            split: raw.split,
            lang: raw.lang,
        });
        Ok(())
    })?;
    Ok(queries)
}

/// Reads a BEIR `corpus.jsonl`: one JSON object per line with `_id` (or `id`), `text` and
/// an optional `title`; other fields are ignored.
pub fn load_corpus(path: impl AsRef<Path>) -> Result<Vec<CorpusDoc>> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(rename = "_id")]
        beir_id: Option<Value>,
        id: Option<Value>,
        title: Option<String>,
        text: String,
    }
    let mut docs = Vec::new();
    for_each_line(path.as_ref(), |_, line| {
        let raw: Raw = serde_json::from_str(line).map_err(json_error)?;
        docs.push(CorpusDoc {
            id: json_id(raw.beir_id.or(raw.id))?,
            title: raw.title.unwrap_or_default(),
            text: raw.text,
        });
        Ok(())
    })?;
    Ok(docs)
}

/// Reads judgments in TREC format: `query-id iteration doc-id grade` per line, whitespace
/// separated (the iteration column is ignored).
pub fn load_qrels_trec(path: impl AsRef<Path>) -> Result<QrelsByQuery> {
    let mut all = QrelsByQuery::new();
    for_each_line(path.as_ref(), |_, line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [qid, _iteration, doc, grade] = fields[..] else {
            return Err(format!(
                "expected 4 fields `query-id iteration doc-id grade`, found {}",
                fields.len()
            ));
        };
        let grade = parse_grade(grade)?;
        all.entry(qid.to_string())
            .or_default()
            .insert(doc.to_string(), grade);
        Ok(())
    })?;
    Ok(all)
}

/// Reads judgments in BEIR format: `query-id corpus-id score` per line, tab-separated. The
/// first line is a header (`query-id corpus-id score`) and is skipped when its last field
/// is not a number.
pub fn load_qrels_beir(path: impl AsRef<Path>) -> Result<QrelsByQuery> {
    let mut all = QrelsByQuery::new();
    let mut first = true;
    for_each_line(path.as_ref(), |_, line| {
        if std::mem::take(&mut first)
            && line
                .split_whitespace()
                .last()
                .is_some_and(|s| s.parse::<i64>().is_err())
        {
            return Ok(());
        }
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        let [qid, doc, grade] = fields[..] else {
            return Err(format!(
                "expected 3 tab-separated fields `query-id corpus-id score`, found {}",
                fields.len()
            ));
        };
        if qid.is_empty() || doc.is_empty() {
            return Err("empty query id or corpus id".into());
        }
        let grade = parse_grade(grade)?;
        all.entry(qid.to_string())
            .or_default()
            .insert(doc.to_string(), grade);
        Ok(())
    })?;
    Ok(all)
}

/// The optional `eval.json` of an eval folder.
#[derive(Debug, Default, Deserialize)]
struct Manifest {
    name: Option<String>,
    docs: Option<PathBuf>,
}

fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("eval.json");
    if !path.is_file() {
        return Ok(Manifest::default());
    }
    let text = fs::read_to_string(&path).map_err(|e| EvalError::io(&path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| EvalError::layout(&path, format!("invalid eval.json: {e}")))
}

/// The files directly in `dir` whose extension is one of `exts`, sorted by name; none when
/// `dir` does not exist. Hidden files (`.name`) are left out.
fn qrels_files(dir: &Path, exts: &[&str]) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| EvalError::io(dir, e))? {
        let path = entry.map_err(|e| EvalError::io(dir, e))?.path();
        let visible = path
            .file_name()
            .is_some_and(|n| !n.to_string_lossy().starts_with('.'));
        let wanted = path
            .extension()
            .is_some_and(|e| exts.iter().any(|x| e == *x));
        if visible && wanted && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn folder_name(dir: &Path) -> String {
    fs::canonicalize(dir)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string())
}

/// An id field's value as a string: a JSON string (non-empty) or a number.
fn json_id(value: Option<Value>) -> Result<String, String> {
    match value {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) => Err("the id is empty".into()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        None | Some(Value::Null) => Err("no `_id` (or `id`) field".into()),
        Some(_) => Err("the id must be a string or a number".into()),
    }
}

/// A JSON error without serde_json's "at line 1" (the line is the file's, reported apart).
fn json_error(e: serde_json::Error) -> String {
    let message = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    match message.strip_suffix(&position) {
        Some(m) => format!("invalid JSON: {m} (column {})", e.column()),
        None => format!("invalid JSON: {message}"),
    }
}

fn parse_grade(s: &str) -> Result<u32, String> {
    let grade: i64 = s
        .parse()
        .map_err(|_| format!("grade {s:?} is not a whole number"))?;
    u32::try_from(grade.max(0)).map_err(|_| format!("grade {grade} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tempfile::TempDir;

    /// A temporary folder holding `files` (path → content).
    fn fixture(files: &[(&str, &str)]) -> TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, content).unwrap();
        }
        dir
    }

    fn grades(set: &EvalSet, qid: &str) -> Vec<(String, u32)> {
        let mut v: Vec<_> = set.qrels[qid]
            .iter()
            .map(|(d, &g)| (d.clone(), g))
            .collect();
        v.sort();
        v
    }

    fn malformed_line(err: &EvalError) -> (String, usize) {
        match err {
            EvalError::Malformed { path, line, .. } => (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                *line,
            ),
            other => panic!("expected a malformed-line error, got {other:?}"),
        }
    }

    const BEIR_CORPUS: &str = concat!(
        r#"{"_id": "d1", "title": "VPN", "text": "Rotate the key monthly.", "metadata": {}}"#,
        "\n",
        r#"{"_id": "d2", "text": "Holidays are in the HR handbook."}"#,
        "\n\n",
        r#"{"_id": 3, "title": null, "text": ""}"#,
        "\n",
    );
    const BEIR_QUERIES: &str = concat!(
        r#"{"_id": "q1", "text": "how do I rotate the VPN key?", "metadata": {}}"#,
        "\n",
        r#"{"_id": "q2", "text": "vacation days", "split": "dev", "lang": "en"}"#,
        "\n",
        r#"{"_id": "q3", "text": "training question"}"#,
        "\n",
        r#"{"_id": "q4", "text": "unanswerable"}"#,
        "\n",
    );

    #[test]
    fn loads_the_beir_layout() {
        let dir = fixture(&[
            ("corpus.jsonl", BEIR_CORPUS),
            ("queries.jsonl", BEIR_QUERIES),
            (
                "qrels/test.tsv",
                "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\t3\t0\nq2\td2\t1\n",
            ),
            ("qrels/train.tsv", "query-id\tcorpus-id\tscore\nq3\td2\t1\n"),
        ]);
        let set = load(dir.path()).unwrap();
        assert_eq!(set.name, folder_name(dir.path()));
        assert_eq!(
            set.corpus,
            Corpus::Beir(vec![
                CorpusDoc {
                    id: "d1".into(),
                    title: "VPN".into(),
                    text: "Rotate the key monthly.".into()
                },
                CorpusDoc {
                    id: "d2".into(),
                    title: "".into(),
                    text: "Holidays are in the HR handbook.".into()
                },
                CorpusDoc {
                    id: "3".into(),
                    title: "".into(),
                    text: "".into()
                },
            ])
        );
        assert_eq!(grades(&set, "q1"), [("3".into(), 0), ("d1".into(), 2)]);
        assert_eq!(grades(&set, "q3"), [("d2".into(), 1)]);
        assert!(!set.qrels.contains_key("q4"));

        // q1 takes its split from qrels/test.tsv, q2 keeps its own, q3 is train, and q4
        // (judged nowhere) falls back to the default split.
        let ids = |split| -> Vec<&str> { set.queries_in(split).map(|q| q.id.as_str()).collect() };
        assert_eq!(ids("test"), ["q1", "q4"]);
        assert_eq!(ids("dev"), ["q2"]);
        assert_eq!(ids("train"), ["q3"]);
        assert_eq!(set.splits(), ["dev", "test", "train"]);
        assert_eq!(set.queries[1].lang.as_deref(), Some("en"));
        assert_eq!(set.queries[3].split, None);
    }

    #[test]
    fn loads_the_folder_layout_with_docs_from_eval_json() {
        let root = fixture(&[
            (
                "set/eval.json",
                r#"{"name": "handbook-zh", "docs": "../corpus"}"#,
            ),
            (
                "set/queries.jsonl",
                concat!(
                    r#"{"id": "q1", "text": "年假有几天", "lang": "zh", "note": "HR"}"#,
                    "\n",
                    r#"{"id": "q2", "text": "who wrote this?", "split": "dev"}"#,
                    "\n",
                ),
            ),
            ("set/qrels.txt", "q1 0 hr/leave.md 2\nq1 0 hr/other.md 0\n"),
            (
                "set/qrels/extra.txt",
                "q1\t0\thr/leave.md\t3\n\nq2 Q0 about.md -2\n",
            ),
            ("set/qrels/.notes.txt", "not qrels at all"),
            ("corpus/hr/leave.md", "# Leave\n"),
        ]);
        let dir = root.path().join("set");
        let set = load(&dir).unwrap();
        assert_eq!(set.name, "handbook-zh");
        assert_eq!(set.corpus, Corpus::Folder(dir.join("../corpus")));
        // qrels/extra.txt is read after qrels.txt, so its grade for hr/leave.md wins.
        assert_eq!(
            grades(&set, "q1"),
            [("hr/leave.md".into(), 3), ("hr/other.md".into(), 0)]
        );
        // A negative grade reads as "judged, not relevant".
        assert_eq!(grades(&set, "q2"), [("about.md".into(), 0)]);
        assert_eq!(
            set.queries[0],
            Query {
                id: "q1".into(),
                text: "年假有几天".into(),
                split: None,
                lang: Some("zh".into()),
            }
        );
        assert_eq!(set.splits(), ["dev", "test"]);

        // An absolute docs path is taken as it is.
        let absolute = root.path().join("corpus");
        let manifest = format!(r#"{{"docs": {:?}}}"#, absolute.display().to_string());
        fs::write(dir.join("eval.json"), manifest).unwrap();
        assert_eq!(load(&dir).unwrap().corpus, Corpus::Folder(absolute));
    }

    #[test]
    fn folder_layout_defaults_to_docs_and_the_folder_name() {
        let dir = fixture(&[
            ("queries.jsonl", r#"{"_id": "q1", "text": "vpn"}"#),
            ("qrels/test.tsv", "q1 0 vpn.md 1\n"),
            ("docs/vpn.md", "# VPN\n"),
        ]);
        let set = load(dir.path()).unwrap();
        assert_eq!(set.corpus, Corpus::Folder(dir.path().join("docs")));
        assert_eq!(set.name, folder_name(dir.path()));
        assert_eq!(grades(&set, "q1"), [("vpn.md".into(), 1)]);
        // File names under qrels/ do not set splits in the folder layout.
        assert_eq!(set.queries[0].split, None);
    }

    #[test]
    fn malformed_lines_name_the_file_and_line() {
        let dir = fixture(&[]);
        let write = |name: &str, content: &str| {
            let path = dir.path().join(name);
            fs::write(&path, content).unwrap();
            path
        };

        let p = write(
            "q.jsonl",
            "{\"_id\": \"q1\", \"text\": \"a\"}\n\n{\"_id\": \"q2\"\n",
        );
        let err = load_queries(&p).unwrap_err();
        assert_eq!(malformed_line(&err), ("q.jsonl".into(), 3));
        assert!(err.to_string().contains("invalid JSON"), "{err}");

        let p = write("q.jsonl", "{\"text\": \"no id\"}\n");
        let err = load_queries(&p).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("q.jsonl:1: no `_id` (or `id`) field")
        );

        let p = write("q.jsonl", "{\"_id\": \"q1\"}\n");
        let err = load_queries(&p).unwrap_err();
        assert!(err.to_string().contains("missing field `text`"), "{err}");

        let p = write("q.jsonl", "{\"_id\": \"q1\", \"text\": \"   \"}\n");
        assert!(
            load_queries(&p)
                .unwrap_err()
                .to_string()
                .contains("empty text")
        );

        let p = write(
            "q.jsonl",
            "{\"_id\": \"q1\", \"text\": \"a\"}\n{\"_id\": \"q1\", \"text\": \"b\"}\n",
        );
        let err = load_queries(&p).unwrap_err();
        assert_eq!(malformed_line(&err), ("q.jsonl".into(), 2));
        assert!(err.to_string().contains("first on line 1"), "{err}");

        let p = write("qrels.txt", "q1 0 d1 1\nq1 0 d2\n");
        let err = load_qrels_trec(&p).unwrap_err();
        assert_eq!(malformed_line(&err), ("qrels.txt".into(), 2));
        assert!(err.to_string().contains("expected 4 fields"), "{err}");

        let p = write("qrels.txt", "q1 0 d1 high\n");
        let err = load_qrels_trec(&p).unwrap_err();
        assert!(err.to_string().contains("not a whole number"), "{err}");

        let p = write("test.tsv", "query-id\tcorpus-id\tscore\nq1 d1 1\n");
        let err = load_qrels_beir(&p).unwrap_err();
        assert_eq!(malformed_line(&err), ("test.tsv".into(), 2));
        assert!(err.to_string().contains("tab-separated"), "{err}");

        // A header is only skipped on the first line.
        let p = write("test.tsv", "q1\td1\t1\nquery-id\tcorpus-id\tscore\n");
        assert_eq!(malformed_line(&load_qrels_beir(&p).unwrap_err()).1, 2);

        let p = write("corpus.jsonl", "{\"_id\": [1], \"text\": \"\"}\n");
        let err = load_corpus(&p).unwrap_err();
        assert!(err.to_string().contains("string or a number"), "{err}");
    }

    #[test]
    fn beir_qrels_without_a_header_are_read_from_the_first_line() {
        let dir = fixture(&[("test.tsv", "q1\td1\t1\r\nq1\td2\t2\r\n")]);
        let qrels = load_qrels_beir(dir.path().join("test.tsv")).unwrap();
        assert_eq!(qrels["q1"].len(), 2);
        assert_eq!(qrels["q1"]["d2"], 2);
    }

    #[test]
    fn layout_errors_say_what_is_missing() {
        let queries = r#"{"_id": "q1", "text": "vpn"}"#;
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[], "no queries.jsonl"),
            (&[("queries.jsonl", "\n\n")], "holds no queries"),
            (&[("queries.jsonl", queries)], "no documents"),
            (
                &[("queries.jsonl", queries), ("docs/a.md", "a")],
                "expects qrels.txt",
            ),
            (
                &[("queries.jsonl", queries), ("corpus.jsonl", "")],
                "expects qrels/<split>.tsv",
            ),
            (
                &[
                    ("queries.jsonl", queries),
                    ("corpus.jsonl", ""),
                    ("eval.json", r#"{"docs": "docs"}"#),
                ],
                "remove one of the two",
            ),
        ];
        for (files, expected) in cases {
            let dir = fixture(files);
            let err = load(dir.path()).unwrap_err();
            assert!(matches!(err, EvalError::Layout { .. }), "{err:?}");
            assert!(
                err.to_string().contains(expected),
                "{err} lacks {expected:?}"
            );
        }

        let dir = fixture(&[("eval.json", "{\"name\": 3}")]);
        let err = load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("invalid eval.json"), "{err}");

        let err = load(dir.path().join("missing")).unwrap_err();
        assert!(matches!(err, EvalError::Io { .. }), "{err:?}");
        let err = load(dir.path().join("eval.json")).unwrap_err();
        assert!(err.to_string().contains("not a folder"), "{err}");
    }
}
