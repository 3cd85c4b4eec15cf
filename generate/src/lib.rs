//! `cairn-generate`: answers drawn from retrieved passages, each sentence citing the exact
//! passage (document, page, byte span) behind it, and an honest abstention when the
//! passages do not answer.
//!
//! This first step is the extractive answerer ([`extractive`]), the fallback when no
//! language model is configured: it quotes the passages' sentences that best answer the
//! question, so every claim is verbatim from a document and fully supported. Generation
//! with an LLM (local or OpenAI-compatible), citation parsing and verification build on the
//! same [`cairn_core::Answer`] shape.

pub mod extractive;
mod sentences;

pub use extractive::extractive;
