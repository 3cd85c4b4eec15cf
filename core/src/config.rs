//! Configuration types. Layering (defaults → `cairn.toml` → `CAIRN_SECTION__KEY`
//! environment → flags) is done by the binary; these are the values and their defaults.

use crate::{DEFAULT_TENANT, Fusion};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the catalog and the indexes live.
    pub data_dir: PathBuf,
    /// The model folder: one sub-folder per model.
    pub models_dir: PathBuf,
    pub embed: EmbedConfig,
    pub chunk: ChunkConfig,
    pub retrieve: RetrieveConfig,
    pub rerank: RerankConfig,
    pub answer: AnswerConfig,
    pub generate: GenerateConfig,
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub ingest: IngestConfig,
    pub audit: AuditConfig,
    pub graph: GraphConfig,
    /// Tenant the CLI acts for (`--tenant`), and requests to a server run with `--no-auth`.
    pub tenant: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("data"),
            models_dir: PathBuf::from("models"),
            embed: EmbedConfig::default(),
            chunk: ChunkConfig::default(),
            retrieve: RetrieveConfig::default(),
            graph: GraphConfig::default(),
            rerank: RerankConfig::default(),
            answer: AnswerConfig::default(),
            generate: GenerateConfig::default(),
            server: ServerConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitsConfig::default(),
            ingest: IngestConfig::default(),
            audit: AuditConfig::default(),
            tenant: DEFAULT_TENANT.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedConfig {
    /// Model folder name under `models_dir`, or an absolute path to a BERT-family folder.
    pub model: String,
    /// Longest input in word pieces (MiniLM was trained on 256).
    pub max_tokens: usize,
    /// Most texts per forward pass.
    pub batch_size: usize,
    /// Pending requests the embedding worker queues before callers wait.
    pub queue: usize,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig {
            model: "minilm-l6".into(),
            max_tokens: 256,
            batch_size: 32,
            queue: 64,
        }
    }
}

/// How documents are cut into chunks. Changing any of it changes the chunker signature
/// recorded with each document, and `cairn reindex` re-chunks those documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChunkConfig {
    pub strategy: ChunkStrategy,
    /// Most word pieces in one chunk (at most the embedder's `max_tokens`).
    pub max_tokens: usize,
    /// Semantic: a chunk is not cut at a topic shift before it has this many word pieces.
    pub min_tokens: usize,
    /// Semantic: a topic shift is a drop in similarity between neighbouring sentences
    /// larger than this percentile (0-100) of the document's drops.
    pub percentile: f32,
    /// Semantic: sentences of the previous chunk repeated at the start of the next one
    /// (within one section, and only while the chunk stays within `max_tokens`).
    pub overlap: usize,
    /// Also embed each chunk's lines and sentences ([`crate::pieces`]) and store their
    /// vectors with the chunk, so the sentence reranker reads them instead of embedding
    /// them at query time. About doubles the embedding time of an ingest.
    pub piece_vectors: bool,
}

/// How a section is cut into chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChunkStrategy {
    /// Sentences are embedded and a chunk ends where neighbouring sentences stop being
    /// similar, within `min_tokens..=max_tokens`.
    Semantic,
    /// Paragraphs are packed up to `max_tokens` (fixed-size chunks).
    Pack,
}

impl ChunkConfig {
    /// Fixed-size chunks of at most `max_tokens` (the other settings at their defaults).
    pub fn pack(max_tokens: usize) -> Self {
        ChunkConfig {
            strategy: ChunkStrategy::Pack,
            max_tokens,
            ..ChunkConfig::default()
        }
    }
}

impl Default for ChunkConfig {
    fn default() -> Self {
        ChunkConfig {
            strategy: ChunkStrategy::Pack,
            max_tokens: 200,
            min_tokens: 50,
            percentile: 90.0,
            overlap: 0,
            piece_vectors: false,
        }
    }
}

/// Reranking the fused candidates with a model that reads query and passage together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RerankConfig {
    /// Rerank searches that do not say (a request's `rerank` overrides it).
    pub enabled: bool,
    /// The reranker: `sentences` (each passage's sentence closest to the query, embedded
    /// by the index's embedder; no other model), or a model folder name under `models_dir`
    /// or a path. A folder with a `.gguf` file is an LLM reranker (P("yes") to "does the
    /// passage answer the query?"); a BERT sequence-classification folder is a
    /// cross-encoder.
    pub model: String,
    /// How many fused candidates are reranked.
    pub candidates: usize,
    /// Drop reranked hits scoring below this (none by default).
    pub min_score: Option<f32>,
    /// Maximal marginal relevance: 1.0 is pure relevance, lower values trade relevance for
    /// passages that differ from those already picked. Off by default.
    pub mmr_lambda: Option<f32>,
    /// Pairs per forward pass.
    pub batch_size: usize,
    /// Longest passage the reranker reads, in its tokens (longer ones are cut).
    pub max_passage_tokens: usize,
    /// Order by `reranker score + fused_weight · fused score`, so the fused ranking stays
    /// a signal; 0 orders by the reranker alone (for a cross-encoder you trust).
    pub fused_weight: f32,
    /// Questions in these languages (`zh`, `en`) keep the fused order: the default
    /// embedder reads Chinese poorly, so its sentences would only add noise there.
    pub skip_langs: Vec<String>,
}

impl Default for RerankConfig {
    fn default() -> Self {
        RerankConfig {
            enabled: false,
            model: "sentences".into(),
            candidates: 50,
            min_score: None,
            mmr_lambda: None,
            batch_size: 8,
            max_passage_tokens: 256,
            fused_weight: 5.0,
            skip_langs: vec!["zh".into()],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrieveConfig {
    pub fusion: Fusion,
    /// The k of reciprocal rank fusion.
    pub rrf_k: f32,
    /// Weight of BM25 in fusion, 0..=1 (dense gets 1 - this). In RRF the lists count
    /// `2 * weight` each, so 0.5 is plain RRF.
    pub bm25_weight: f32,
    /// `bm25_weight` for queries in a given language (`en`, `zh`), which wins over the
    /// general one. The default embedder is English-first, so Chinese queries lean on BM25.
    pub lang_bm25_weight: BTreeMap<String, f32>,
    /// Candidates each retriever returns before fusion.
    pub candidates: usize,
    pub default_top_k: usize,
    pub max_top_k: usize,
    /// Weight of the graph's list in `mix` mode, beside BM25 and dense, whose weights sum
    /// to 1: low, so the graph adds passages that hybrid lacks more than it reorders what
    /// hybrid found.
    pub graph_weight: f32,
    /// How many of the hybrid hits (fused BM25 and dense) seed the graph's walk.
    pub graph_seeds: usize,
}

impl Default for RetrieveConfig {
    fn default() -> Self {
        RetrieveConfig {
            fusion: Fusion::Rrf,
            // Tuned on the tune split of eval/debian (eval/debian/RESULTS.md): a small k
            // lets a retriever's first hits count, and Chinese queries, which the default
            // English-first embedder reads poorly, lean on BM25.
            rrf_k: 10.0,
            bm25_weight: 0.5,
            lang_bm25_weight: BTreeMap::from([("zh".to_string(), 0.9)]),
            candidates: 50,
            default_top_k: 10,
            max_top_k: 100,
            // Chosen on the tune split of eval/multihop (eval/multihop/RESULTS.md): up to
            // 0.3 mix keeps hybrid's all-evidence@10, above it loses it.
            graph_weight: 0.2,
            graph_seeds: 10,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub addr: String,
    /// Largest request body (an upload of one or more files), bytes.
    pub max_body_bytes: usize,
    /// Longest query, characters.
    pub max_query_chars: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: "127.0.0.1:7700".into(),
            max_body_bytes: 32 * 1024 * 1024,
            max_query_chars: 2000,
        }
    }
}

/// How the server knows who calls it (`[auth]`). API keys are always accepted; `cairn
/// serve --no-auth` (loopback only) lets requests without one act as an admin of `tenant`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Proxy mode: the name of a header (e.g. `X-Forwarded-User`) that a proxy in front
    /// (an OIDC gateway) sets to the signed-in user; a request carrying it acts as that
    /// user, with the tenant, groups and role of the headers below. Empty: off. Anyone
    /// who can reach the server without the proxy can set these headers, so turn it on
    /// only when the server listens where nothing but the proxy reaches it.
    pub trusted_header: String,
    /// Proxy mode: the header naming the user's tenant (absent: `tenant`).
    pub tenant_header: String,
    /// Proxy mode: the header with the user's groups, comma-separated.
    pub groups_header: String,
    /// Proxy mode: the header with the user's role (`reader`, `writer`, `admin`; absent:
    /// `reader`).
    pub role_header: String,
    /// The file holding the secret that API keys are hashed under (32 bytes, made on
    /// first use). Empty: `keys.secret` in the data dir. Servers sharing one catalog
    /// must share it.
    pub secret_file: PathBuf,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            trusted_header: String::new(),
            tenant_header: "X-Cairn-Tenant".into(),
            groups_header: "X-Cairn-Groups".into(),
            role_header: "X-Cairn-Role".into(),
            secret_file: PathBuf::new(),
        }
    }
}

/// How much one caller may ask of the server (`[limits]`). The upload and body limit is
/// `[server] max_body_bytes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests per second each key (each proxy user; all `--no-auth` requests together)
    /// may make on average: a token bucket refilled at this rate. 0: no limit. Over it:
    /// 429 with `Retry-After`.
    pub requests_per_second: f64,
    /// How many requests a key may make at once before the rate applies (the bucket's
    /// size).
    pub burst: u32,
    /// A request that has not answered in this many seconds is cancelled with 503 and
    /// `Retry-After` (streams count until their first byte). 0: no limit.
    pub request_timeout_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            requests_per_second: 100.0,
            burst: 200,
            request_timeout_secs: 120,
        }
    }
}

/// Reading files on the server's disk (`[ingest]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Folders under which an admin key may have the server read files (`POST
    /// /v1/admin/reindex`, re-indexing a document that came from a path). Empty: none;
    /// the CLI on the server's machine (and `cairn reindex` handing its run to the
    /// server) may read any path its user can.
    pub roots: Vec<PathBuf>,
}

/// What the audit log keeps of a search or a question (`[audit] queries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditQueries {
    /// The text as asked.
    Text,
    /// Its sha256 (hex): repeated questions can be matched, the text is not kept.
    Hash,
    /// Nothing of the query.
    Off,
}

/// The concept graph (`[graph]`): built from each chunk's concepts at ingest (no language
/// model), held in memory, assembled per caller from the chunks they may read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphConfig {
    /// Keep the graph and offer the `graph` and `mix` search modes.
    pub enabled: bool,
    /// A concept is in the graph when at least this many chunks mention it.
    pub min_chunks: usize,
    /// Two concepts are joined when at least this many sentences mention both.
    pub min_pair: usize,
    /// The walk's probability of following an edge rather than restarting at a seed.
    pub damping: f32,
    /// The share of the walk's restarts that go to the question's concepts; the rest go to
    /// the hybrid hits that seed it.
    pub concept_share: f32,
    /// Assembled graphs kept for reuse (one per distinct set of readable chunks).
    pub cache: usize,
    /// A community with more concepts than this is split again, one level down.
    pub community_size: usize,
    /// Leiden's resolution for the top level of communities: higher, smaller ones.
    pub community_resolution: f64,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            enabled: true,
            min_chunks: 2,
            min_pair: 2,
            damping: 0.5,
            // Chosen on the tune split of eval/multihop: the graph mode's best nDCG@10 and
            // all-evidence@10 of 0.25, 0.5, 0.75.
            concept_share: 0.25,
            cache: 8,
            community_size: 40,
            community_resolution: 1.0,
        }
    }
}

/// The audit log (`[audit]`): every write (upload, delete, re-index, key changes) and
/// every read (search, ask, document reads) with who, when, what and how many results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    pub queries: AuditQueries,
    /// Lines older than this many days are removed (0: kept forever).
    pub retention_days: u32,
    /// Also log reads (search, ask, list, show); writes are always logged.
    pub reads: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            queries: AuditQueries::Hash,
            retention_days: 90,
            reads: true,
        }
    }
}

/// Who writes answers (`[generate] backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GenerateBackend {
    /// Picked per machine when answers are first needed (`serve` logs the pick and why): a
    /// packaged generator where it answers in time (a GPU: the 1.5B or the 0.5B; a CPU of
    /// at least 8 cores: the 0.5B), extractive answers otherwise. `model` is not read.
    Auto,
    /// No language model: answers quote the passages' best sentences.
    Extractive,
    /// A GGUF model (llama / qwen2 family) run by cairn itself, on the CPU or a CUDA GPU.
    Local,
    /// An OpenAI-compatible server: vLLM, TGI, Ollama, OpenAI, or another cairn.
    Openai,
}

/// The language model that writes answers (`[generate]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerateConfig {
    pub backend: GenerateBackend,
    /// `local`: a folder name under `models_dir`, or a path to a `.gguf` file or a folder
    /// holding one. `openai`: the model name sent to the server.
    pub model: String,
    /// `openai`: the server's base URL, up to and including `/v1`.
    pub base_url: String,
    /// `openai`: the environment variable holding the API key (none is sent when unset).
    pub api_key_env: String,
    /// `openai`: seconds to wait for the server before answering 504.
    pub timeout_secs: u64,
    /// The most tokens of one answer.
    pub max_tokens: usize,
    /// The most sentences of one generated answer: generation stops when the model begins
    /// the next one (the instruction asks for one to three; small models run on). 0: no
    /// limit.
    pub max_sentences: usize,
    /// 0 is greedy (the default: answers should not vary).
    pub temperature: f32,
    /// `local`: the most sequences decoded together.
    pub max_batch: usize,
    /// `local`: requests waiting beyond the running batch; more get 503.
    pub max_queue: usize,
    /// `local`: prompt tokens read per step, so long prompts do not stall running answers.
    pub prefill_chunk: usize,
    /// A generated sentence whose support (0..=1) is below this is flagged unsupported.
    pub min_support: f32,
    /// Leave unsupported sentences out of the answer instead of flagging them.
    pub drop_unsupported: bool,
    /// When fewer than this share of a generated answer's sentences are supported, the
    /// answer is replaced by quotes from the passages (and says so in its `note`).
    pub min_supported_share: f32,
    /// Also ask the generator, for each sentence that passes `min_support`, whether its
    /// cited passages entail it (a yes/no question); a "no" flags it unsupported. One short
    /// generation per sentence, run concurrently (batched by the local engine).
    pub entailment: bool,
    /// Give a sentence the model wrote without a citation the passage that supports it best,
    /// when that support reaches `min_support` (the sentence is then marked `attributed`:
    /// cairn, not the model, cited it). Small models often leave out their markers.
    pub attribute: bool,
    /// Tell the model it may reply that the passages do not answer the question (an
    /// abstention). Off, the gate and the calibrated confidence alone decide whether to
    /// answer, and the model is asked to answer from the passages it is given.
    pub model_may_decline: bool,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            backend: GenerateBackend::Auto,
            model: "qwen2.5-coder-0.5b".into(),
            base_url: "http://127.0.0.1:8000/v1".into(),
            api_key_env: "OPENAI_API_KEY".into(),
            timeout_secs: 120,
            max_tokens: 256,
            // The instruction asks for one to three; 3 was the best limit on the tune split
            // of eval/debian (eval/debian/RESULTS.md).
            max_sentences: 3,
            temperature: 0.0,
            max_batch: 8,
            max_queue: 64,
            prefill_chunk: 256,
            min_support: 0.5,
            // Chosen on the tune split of eval/debian (eval/debian/RESULTS.md): with the 0.5B,
            // dropping changed no written answer and no first citation, and left out the 11
            // of 139 sentences its citations did not support.
            drop_unsupported: true,
            min_supported_share: 0.5,
            entailment: false,
            attribute: true,
            // Chosen on the tune split of eval/debian (eval/debian/RESULTS.md, 2026-12-07):
            // offered the way out, Qwen2.5-0.5B took it for 54 of 63 answerable questions.
            model_may_decline: false,
        }
    }
}

/// How answers are made from the retrieved passages (`[answer]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnswerConfig {
    /// Passages read, best first.
    pub max_passages: usize,
    /// Sentences quoted at most (extractive answers).
    pub max_sentences: usize,
    /// The answer abstains when its calibrated confidence (`calibration`: the probability,
    /// 0..=1, that the passages answer the question) is below this.
    pub abstain_below: f32,
    /// When even the best sentence matches the question less than this (0..=1: 0.75 *
    /// embedding cosine + 0.25 * share of the question's terms), the answer abstains too.
    /// Off (0) by default: `abstain_below` weighs this score with the passages' closeness.
    pub min_score: f32,
    /// Sentences scoring within this of the best one are quoted too.
    pub margin: f32,
    /// When no passage read comes closer to the question than this embedding cosine (the
    /// dense retriever's score of the passage), the answer abstains too, whatever its best
    /// sentence scored: a sentence can echo the question's words while the passages are about
    /// something else. Off (0) by default: `abstain_below` weighs the closeness with the
    /// best sentence's score. 0 turns the check off; it is skipped for hits without a dense score
    /// (`bm25` mode), and when the passages read contain every identifier the question
    /// names (words with letters and digits: "FIN-88R"), which embeddings place poorly.
    pub min_dense: f32,
    /// `min_dense` for questions written in Chinese, Japanese or Korean script. Off (0) by
    /// default: the default embedder is English-first, its cosines between Chinese texts are
    /// all high, and Chinese fusion leans on BM25, so the hits' dense scores do not tell an
    /// answering passage from an unrelated one (eval/debian/RESULTS.md).
    pub min_dense_cjk: f32,
    /// Names in the question: in one written in CJK script, its words in Latin script
    /// (programs, packages, protocols: "怎样用 ufw 放行端口"); in any other, words
    /// capitalised where no sentence begins or with a capital after their first letter
    /// ("enroll a MOK key", "a Gantt chart", "WireGuard"). When no passage the caller may
    /// read mentions one of them, the answer abstains and names it: the documents are not
    /// about it. (Embeddings place such questions close to passages on neighbouring topics.)
    pub unknown_names: bool,
    /// A reranker that judges whether the passages read answer the question: a model
    /// folder (a cross-encoder, or a GGUF model asked "does the passage answer the
    /// query?") or `sentences`, named as for `[rerank] model`. Its best score among the
    /// passages is the `judge` signal of the confidence. Empty: no judge.
    pub judge: String,
    /// Passages shown with an abstention.
    pub closest: usize,
    /// The model that turns an answer's signals into its confidence.
    pub calibration: Calibration,
    /// The same for questions written in Chinese, Japanese or Korean script, whose signals
    /// run on other scales (the default embedder's cosines between Chinese texts are all
    /// high; the judge's logits are lower).
    pub calibration_cjk: Calibration,
    /// Answers whose confidence is below this (0..=1) are marked `needs_review`, with the
    /// reason; 0 turns it off.
    pub review_below: f32,
}

/// The confidence of an answer: `σ(intercept + best_sentence · s + closest_dense · d +
/// judge · j)`, a logistic regression over the answer's signals
/// (`cairn_core::AnswerSignals`) giving the probability that the passages answer the
/// question. Fitted on the tune split of
/// `eval/debian` (`eval/debian/fit-calibration`, `eval/debian/RESULTS.md`); refit it for
/// another embedder or corpus. A signal that was not measured (no dense score in `bm25`
/// mode) takes its `*_absent` value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Calibration {
    pub intercept: f32,
    /// Weight of the best sentence's score.
    pub best_sentence: f32,
    /// Weight of the closest passage's embedding cosine.
    pub closest_dense: f32,
    /// The cosine assumed when no passage has a dense score.
    pub closest_dense_absent: f32,
    /// Weight of the answerability judge's score (`[answer] judge`); 0 without one.
    pub judge: f32,
    /// The judge's score assumed when there is none.
    pub judge_absent: f32,
}

impl Calibration {
    /// The probability that the passages answer the question, from the answer's signals
    /// (see the type's documentation).
    pub fn confidence(&self, signals: &crate::AnswerSignals) -> f32 {
        let dense = signals.closest_dense.unwrap_or(self.closest_dense_absent);
        let judge = signals.judge.unwrap_or(self.judge_absent);
        let z = self.intercept
            + self.best_sentence * signals.best_sentence
            + self.closest_dense * dense
            + self.judge * judge;
        1.0 / (1.0 + (-z).exp())
    }
}

impl Default for AnswerConfig {
    fn default() -> Self {
        AnswerConfig {
            max_passages: 5,
            max_sentences: 3,
            // Chosen on the tune split of eval/debian (eval/debian/RESULTS.md, 2026-12-07).
            abstain_below: 0.7,
            min_score: 0.0,
            margin: 0.08,
            min_dense: 0.0,
            min_dense_cjk: 0.0,
            // Checked on the tune split of eval/debian (eval/debian/RESULTS.md).
            unknown_names: true,
            judge: String::new(),
            closest: 3,
            calibration: Calibration::default(),
            // Not fitted apart yet: the per-script fits did not win on tune
            // (eval/debian/RESULTS.md, 2026-12-07).
            calibration_cjk: Calibration::default(),
            // A round figure, checked on the tune split (eval/debian/RESULTS.md, 2026-12-07).
            review_below: 0.8,
        }
    }
}

impl Default for Calibration {
    fn default() -> Self {
        // Fitted on the tune split of eval/debian (eval/debian/RESULTS.md, 2026-12-07).
        Calibration {
            intercept: -7.809,
            best_sentence: 1.873,
            closest_dense: 16.874,
            closest_dense_absent: 0.612,
            judge: 0.0,
            judge_absent: 0.0,
        }
    }
}
