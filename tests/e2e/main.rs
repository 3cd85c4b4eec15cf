//! End-to-end tests of the whole system: the real `cairn` binary, on the real models and
//! storage, over the small corpus the project ships in `tests/fixtures/corpus`.

mod acl;
mod ask;
mod auth;
mod cli;
mod crash;
mod eval;
mod generate;
mod graph;
mod leak;
mod models;
mod openapi;
mod pdf;
mod reindex;
mod rerank;
mod rest;
mod support;
