//! `cairn-eval`: measuring how well cairn finds the documents that answer a question. It
//! reads eval sets (BEIR or a folder of documents with TREC qrels), scores rankings with
//! nDCG, recall and MRR as trec_eval defines them, writes TREC run files for outside tools,
//! and sums each search mode up in one table row. Pure library: it runs no search itself.
//!
//! ```
//! use cairn_eval::{Qrels, QrelsByQuery, metrics, report};
//!
//! let judged: Qrels = [("d1".to_string(), 2), ("d2".to_string(), 1)].into();
//! let ranked = vec!["d3".to_string(), "d1".to_string(), "d2".to_string()];
//! assert_eq!(metrics::mrr_at(&ranked, &judged, 10), 0.5);
//! assert_eq!(metrics::recall_at(&ranked, &judged, 2), 0.5);
//!
//! let qrels: QrelsByQuery = [("q1".to_string(), judged)].into();
//! let row = report::evaluate("bm25", &[("q1".into(), ranked, 12.5)], &qrels);
//! assert_eq!(row.queries, 1);
//! print!("{}", report::render_table(&[row]));
//! ```

pub mod data;
mod error;
mod lines;
pub mod metrics;
pub mod report;
pub mod trec;

pub use data::{Corpus, CorpusDoc, EvalSet, Query, load, load_qrels_beir, load_qrels_trec};
pub use error::{EvalError, Result};
pub use metrics::{Qrels, QrelsByQuery};
pub use report::{ModeReport, evaluate, render_table};
