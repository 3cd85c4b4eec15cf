//! Wiring: picks the concrete parts (BERT embedder, SQLite + tantivy + hnsw store) from the
//! configuration and hands them, as seam traits, to the library crates.

use anyhow::{Context, Result};
use cairn_core::config::{GenerateBackend, GraphConfig};
use cairn_core::{Catalog, Config, DocumentStore, Embedder, Generator, Principal, Reranker};
use cairn_graph::{GraphIndex, GraphSettings};
use cairn_index::{Store, StoreOptions};
use cairn_ingest::Ingestor;
use cairn_llm::EngineOptions;
use cairn_rerank::SentenceReranker;
use cairn_retrieve::Retriever;
use cairn_service::keys::KeyHasher;
use cairn_service::{Parts, Service};
use std::path::PathBuf;
use std::sync::Arc;

/// The `[rerank] model` that is no folder: each passage's best sentence, in the embedder's
/// space.
const SENTENCE_RERANKER: &str = "sentences";

pub struct App {
    pub config: Config,
    pub store: Arc<Store>,
    pub retriever: Retriever,
    pub ingestor: Arc<Ingestor>,
    /// The language model that writes answers, once loaded ([`App::load_generator`]).
    pub generator: Option<Arc<dyn Generator>>,
    /// The judge of whether passages answer a question, once loaded ([`App::load_judge`]).
    pub judge: Option<Arc<dyn Reranker>>,
}

/// Where the embedding model's folder is: a path as given, or a name under `models_dir`.
pub fn model_dir(config: &Config) -> PathBuf {
    model_path(config, &config.embed.model)
}

/// A model given by name (a folder under `models_dir`) or by path.
pub fn model_path(config: &Config, model: &str) -> PathBuf {
    let m = PathBuf::from(model);
    if m.is_absolute() || model.contains('/') {
        m
    } else {
        config.models_dir.join(m)
    }
}

/// The graph index's settings from `[graph]`.
fn graph_settings(c: &GraphConfig) -> GraphSettings {
    GraphSettings {
        assemble: cairn_graph::Settings {
            min_chunks: c.min_chunks.max(1),
            min_pair: c.min_pair.max(1),
        },
        walk: cairn_graph::WalkSettings {
            damping: c.damping,
            concept_share: c.concept_share,
            ..Default::default()
        },
        communities: cairn_graph::CommunitySettings {
            max_size: c.community_size.max(2),
            resolution: if c.community_resolution.is_finite() && c.community_resolution > 0.0 {
                c.community_resolution
            } else {
                1.0
            },
            ..Default::default()
        },
        cache: c.cache,
    }
}

impl App {
    /// Opens the data dir with every derived index, the concept graph included (built in
    /// memory from the catalog when `[graph] enabled`): for the commands that search.
    pub async fn open(config: Config) -> Result<App> {
        Self::open_with(config, true).await
    }

    /// Opens the data dir without building the concept graph, for commands that never read
    /// it (ingest, reindex, docs, keys): the graph keeps nothing on disk, so whichever
    /// process reads it builds it from the catalog, writes included.
    pub async fn open_without_graph(config: Config) -> Result<App> {
        Self::open_with(config, false).await
    }

    async fn open_with(config: Config, graph: bool) -> Result<App> {
        let dir = model_dir(&config);
        let embedder: Arc<dyn Embedder> = cairn_infer::load_embedder(
            &dir,
            config.embed.max_tokens,
            config.embed.batch_size,
            config.embed.queue,
        )
        .with_context(|| format!("loading the embedding model from {}", dir.display()))?;
        tracing::info!(
            model = embedder.model_id(),
            dims = embedder.dims(),
            "embedding model loaded"
        );
        let opts = StoreOptions {
            data_dir: config.data_dir.clone(),
            embedder_id: embedder.model_id().to_string(),
            dims: embedder.dims(),
        };
        let mut store = Store::open_embedded(opts)
            .await
            .with_context(|| format!("opening the data dir {}", config.data_dir.display()))?;
        if graph && config.graph.enabled {
            // The graph lives in memory: it is built from the catalog's concepts on start.
            let started = std::time::Instant::now();
            let graph = GraphIndex::with_settings(graph_settings(&config.graph));
            store = store.with_graph(Arc::new(graph))?;
            store.sync().await.context("building the concept graph")?;
            tracing::info!(
                took_ms = started.elapsed().as_millis() as u64,
                "concept graph loaded from the catalog"
            );
        }
        let store = Arc::new(store);
        let catalog: Arc<dyn Catalog> = store.catalog();
        let retriever = Retriever::new(
            catalog,
            store.indexes(),
            embedder.clone(),
            config.retrieve.clone(),
            config.server.max_query_chars,
        );
        let doc_store: Arc<dyn DocumentStore> = store.clone();
        let ingestor = Arc::new(Ingestor::new(embedder, doc_store, config.chunk.clone()));
        Ok(App {
            config,
            store,
            retriever,
            ingestor,
            generator: None,
            judge: None,
        })
    }

    /// Loads the configured reranker and lets searches use it (`sentences` needs no model
    /// beyond the embedder). When its model is not installed: an error if `required`,
    /// otherwise a note in the log (searches that ask for reranking then get a clear error).
    pub fn load_reranker(&mut self, required: bool) -> Result<()> {
        let name = self.config.rerank.model.clone();
        let Some(reranker) = self.reranker_named(&name, required)? else {
            tracing::info!(model = %name, "no reranker installed; reranking is off");
            return Ok(());
        };
        tracing::info!(model = reranker.model_id(), "reranker loaded");
        self.retriever =
            self.retriever
                .clone()
                .with_reranker(name, Some(reranker), self.config.rerank.clone());
        Ok(())
    }

    /// The reranker `name` (`sentences`, or a model folder or path): `None` when its folder
    /// is missing and it is not `required`.
    fn reranker_named(&self, name: &str, required: bool) -> Result<Option<Arc<dyn Reranker>>> {
        if name == SENTENCE_RERANKER {
            return Ok(Some(Arc::new(
                SentenceReranker::new(self.retriever.embedder()).with_catalog(self.store.catalog()),
            )));
        }
        let dir = model_path(&self.config, name);
        if !dir.exists() && !required {
            return Ok(None);
        }
        let device = cairn_infer::pick_device()?;
        let reranker = cairn_infer::load_reranker(
            &dir,
            &device,
            self.config.rerank.batch_size,
            self.config.rerank.max_passage_tokens,
        )
        .with_context(|| format!("loading the reranker from {}", dir.display()))?;
        Ok(Some(reranker))
    }

    /// Loads `[answer] judge`, the model whose best score among an answer's passages is
    /// the `judge` signal of its confidence; nothing when it is empty. A judge that is not
    /// installed is a warning: confidences then take the calibration's `judge_absent`, and
    /// tell answerable questions from unanswerable ones less well.
    pub fn load_judge(&mut self) -> Result<()> {
        let name = self.config.answer.judge.clone();
        if name.is_empty() {
            return Ok(());
        }
        match self.reranker_named(&name, false)? {
            Some(judge) => {
                tracing::info!(model = judge.model_id(), "answerability judge loaded");
                self.judge = Some(judge);
            }
            None => tracing::warn!(
                path = %model_path(&self.config, &name).display(),
                "[answer] judge is not installed (scripts/install-models installs it): \
                 confidences leave out its signal"
            ),
        }
        Ok(())
    }

    /// Loads the configured generator (`[generate] backend`): the local GGUF model, or the
    /// client of an OpenAI-compatible server; nothing for extractive answers. A local model
    /// that is not installed is an error naming the folder.
    pub fn load_generator(&mut self) -> Result<()> {
        let mut cfg = self.config.generate.clone();
        // `auto` looks at the device to choose; the local model then runs on the same one
        // (picking a CUDA device again would open a second context).
        let mut device = None;
        if cfg.backend == GenerateBackend::Auto {
            let picked = cairn_infer::pick_device()?;
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let pick = pick_generator(!picked.is_cpu(), cores, |name| {
                model_path(&self.config, name).exists()
            });
            device = Some(picked);
            tracing::info!(
                "[generate] backend = \"auto\": {} ({})",
                pick.model.map_or_else(
                    || "extractive answers".to_string(),
                    |m| format!("written by {m}")
                ),
                pick.reason
            );
            match pick.model {
                Some(model) => {
                    cfg.backend = GenerateBackend::Local;
                    cfg.model = model.to_string();
                }
                None => return Ok(()),
            }
        }
        let generator: Arc<dyn Generator> = match cfg.backend {
            GenerateBackend::Auto => unreachable!("resolved above"),
            GenerateBackend::Extractive => {
                tracing::info!(
                    "answers are extractive (quoted passages): set [generate] backend = \"local\" or \"openai\" for written answers"
                );
                return Ok(());
            }
            GenerateBackend::Local => {
                let path = model_path(&self.config, &cfg.model);
                let device = match device {
                    Some(device) => device,
                    None => cairn_infer::pick_device()?,
                };
                let options = EngineOptions {
                    max_batch: cfg.max_batch,
                    max_queue: cfg.max_queue,
                    prefill_chunk: cfg.prefill_chunk,
                };
                if device.is_cpu() {
                    tracing::info!(kernels = cairn_llm::cpu_kernels(), "quantized CPU kernels");
                }
                Arc::new(
                    cairn_infer::LocalGenerator::load(&path, &device, options).with_context(
                        || format!("loading the generator from {}", path.display()),
                    )?,
                )
            }
            GenerateBackend::Openai => Arc::new(cairn_generate::OpenAiGenerator::from_config(&cfg)),
        };
        tracing::info!(
            model = generator.model_id(),
            context = generator.context_tokens(),
            "generator ready"
        );
        self.generator = Some(generator);
        Ok(())
    }

    /// The CLI's principal: the machine's local admin, acting for the configured tenant
    /// and `groups`.
    pub fn principal(&self, groups: &[String]) -> Principal {
        Principal::local(self.config.tenant.clone(), groups.to_vec())
    }

    /// The service over this app's store and models (starts the audit writer).
    pub fn service(&self) -> Result<Service> {
        let keys = self.store.keys().context("the store keeps no API keys")?;
        let audit = self.store.audit().context("the store keeps no audit log")?;
        let hasher = KeyHasher::load_or_create(&secret_file(&self.config))?;
        let doc_store: Arc<dyn DocumentStore> = self.store.clone();
        Ok(Service::new(Parts {
            retriever: self.retriever.clone(),
            ingestor: self.ingestor.clone(),
            catalog: self.store.catalog(),
            store: doc_store,
            keys,
            audit,
            hasher,
            answer: self.config.answer.clone(),
            generator: self.generator.clone(),
            judge: self.judge.clone(),
            generate: self.config.generate.clone(),
            audit_config: self.config.audit.clone(),
            roots: self.config.ingest.roots.clone(),
            operator_tenant: self.config.tenant.clone(),
        }))
    }
}

/// The packaged generator for machines with a GPU.
const LARGE_GENERATOR: &str = "qwen2.5-coder-1.5b";
/// The packaged generator for CPUs (and GPUs without the large one).
const SMALL_GENERATOR: &str = "qwen2.5-coder-0.5b";
/// Cores from which `auto` lets the small generator write answers on the CPU. On 2 cores an
/// answer over five passages took 9.4 s at p50 (release build, eval/debian/RESULTS.md), most
/// of it reading the prompt, which scales with cores (1.7× from one thread to two): from
/// about 8 cores it should come well within the 8 s target (extrapolated, not measured).
const AUTO_MIN_CORES: usize = 8;

/// What `[generate] backend = "auto"` runs on a machine with `cores` CPU cores and a GPU
/// or not, given which models are `installed`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GeneratorPick {
    /// The local model, or `None` for extractive answers.
    model: Option<&'static str>,
    /// Why, in words, for the log.
    reason: String,
}

fn pick_generator(gpu: bool, cores: usize, installed: impl Fn(&str) -> bool) -> GeneratorPick {
    let pick = |model, reason: String| GeneratorPick { model, reason };
    let (small, large) = (installed(SMALL_GENERATOR), installed(LARGE_GENERATOR));
    if gpu && large {
        return pick(Some(LARGE_GENERATOR), "a GPU is present".into());
    }
    if gpu && small {
        return pick(
            Some(SMALL_GENERATOR),
            format!(
                "a GPU is present, and {LARGE_GENERATOR} is not installed \
                 (scripts/install-models {LARGE_GENERATOR})"
            ),
        );
    }
    if !small {
        return pick(
            None,
            format!("{SMALL_GENERATOR} is not installed (scripts/install-models installs it)"),
        );
    }
    if cores >= AUTO_MIN_CORES {
        return pick(
            Some(SMALL_GENERATOR),
            format!("no GPU, {cores} CPU cores (at least {AUTO_MIN_CORES})"),
        );
    }
    pick(
        None,
        format!(
            "no GPU and {cores} CPU cores: {SMALL_GENERATOR} would take over 8 s an answer \
             here; set [generate] backend = \"local\" to have it write answers anyway"
        ),
    )
}

/// The file of the key-hashing secret: `[auth] secret_file`, or `keys.secret` in the data
/// dir.
pub fn secret_file(config: &Config) -> PathBuf {
    if config.auth.secret_file.as_os_str().is_empty() {
        config.data_dir.join("keys.secret")
    } else {
        config.auth.secret_file.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_the_generator_the_machine_can_run_in_time_and_says_why() {
        let all = |_: &str| true;
        let small_only = |name: &str| name == SMALL_GENERATOR;
        let none = |_: &str| false;

        let gpu = pick_generator(true, 2, all);
        assert_eq!(gpu.model, Some(LARGE_GENERATOR), "{gpu:?}");
        let gpu_small = pick_generator(true, 2, small_only);
        assert_eq!(gpu_small.model, Some(SMALL_GENERATOR));
        assert!(gpu_small.reason.contains("not installed"), "{gpu_small:?}");

        let many = pick_generator(false, 16, all);
        assert_eq!(
            many.model,
            Some(SMALL_GENERATOR),
            "the CPU never gets the 1.5B"
        );
        assert!(many.reason.contains("16 CPU cores"), "{many:?}");

        let few = pick_generator(false, 2, all);
        assert_eq!(few.model, None, "{few:?}");
        assert!(few.reason.contains("2 CPU cores") && few.reason.contains("backend = \"local\""));

        let missing = pick_generator(true, 64, none);
        assert_eq!(missing.model, None);
        assert!(
            missing.reason.contains("scripts/install-models"),
            "{missing:?}"
        );
    }
}
