//! Configuration layering: defaults → `cairn.toml` (or `--config`) → `CAIRN_SECTION__KEY`
//! environment variables → command-line flags.

use anyhow::{Context, Result};
use cairn_core::Config;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use std::path::Path;

/// Top-level keys of [`Config`]; other `CAIRN_*` variables (e.g. `CAIRN_LOG`) are not config.
const KEYS: &[&str] = &[
    "data_dir",
    "models_dir",
    "embed",
    "chunk",
    "retrieve",
    "rerank",
    "answer",
    "generate",
    "server",
    "auth",
    "limits",
    "ingest",
    "audit",
    "graph",
    "tenant",
];

pub fn load(file: Option<&Path>) -> Result<Config> {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    match file {
        Some(path) => {
            anyhow::ensure!(
                path.exists(),
                "config file {} does not exist",
                path.display()
            );
            fig = fig.merge(Toml::file_exact(path));
        }
        None => fig = fig.merge(Toml::file("cairn.toml")),
    }
    let env = Env::prefixed("CAIRN_").split("__").filter(|k| {
        // Keys arrive with `__` already turned into `.`, in their original case.
        let first = k.as_str().split('.').next().unwrap_or_default();
        KEYS.iter().any(|key| key.eq_ignore_ascii_case(first))
    });
    fig = fig.merge(env);
    fig.extract().context("invalid configuration")
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment's Jail API returns its own large error type
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_and_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("cairn.toml", "tenant = \"acme\"\n[embed]\nbatch_size = 8\n")?;
            jail.set_env("CAIRN_EMBED__BATCH_SIZE", "16");
            jail.set_env("CAIRN_LOG", "debug"); // not config: ignored
            let c = load(None).map_err(|e| e.to_string())?;
            assert_eq!(c.tenant, "acme");
            assert_eq!(c.embed.batch_size, 16);
            assert_eq!(c.embed.max_tokens, 256);
            Ok(())
        });
    }

    /// Every section of the configuration can be set from the environment: a section
    /// missing from `KEYS` would silently ignore its `CAIRN_SECTION__KEY` variables.
    #[test]
    fn every_section_is_read_from_the_environment() {
        let defaults = serde_json::to_value(Config::default()).unwrap();
        let mut sections: Vec<&str> = defaults
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        sections.sort();
        let mut keys = KEYS.to_vec();
        keys.sort();
        assert_eq!(keys, sections);
        figment::Jail::expect_with(|jail| {
            jail.set_env("CAIRN_GRAPH__ENABLED", "false");
            let c = load(None).map_err(|e| e.to_string())?;
            assert!(!c.graph.enabled);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_rejected() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("cairn.toml", "[embed]\nbatchsize = 8\n")?;
            assert!(load(None).is_err());
            Ok(())
        });
    }
}
