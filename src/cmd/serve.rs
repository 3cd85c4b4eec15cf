//! `cairn serve`: the HTTP server. It opens the data dir, prints the address it listens on,
//! publishes itself in the data dir for commands that need it (see [`handoff`]), and
//! flushes the vector index in the background and on shutdown (Ctrl-C or SIGTERM).

use crate::app::App;
use crate::handoff;
use anyhow::Context;
use cairn_core::{Catalog, Config, DocumentStore};
use cairn_web::{Admin, AppState};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on, e.g. 127.0.0.1:7700 (port 0 picks a free port)
    #[arg(long, env = "CAIRN_ADDR", value_name = "HOST:PORT")]
    addr: Option<String>,
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

pub async fn run(mut config: Config, args: Args) -> anyhow::Result<ExitCode> {
    if let Some(addr) = args.addr {
        config.server.addr = addr;
    }
    let addr = config.server.addr.clone();
    let mut app = App::open(config).await?;
    // Requests may ask for reranking when a reranker is installed; `[rerank] enabled`
    // makes it the default and requires it.
    let required = app.config.rerank.enabled;
    app.load_reranker(required)?;
    app.load_generator()?;
    let catalog: Arc<dyn Catalog> = app.store.catalog();
    let store: Arc<dyn DocumentStore> = app.store.clone();
    let state = AppState {
        retriever: app.retriever.clone(),
        ingestor: app.ingestor.clone(),
        catalog,
        store,
        principal: app.principal(&[]),
        max_body_bytes: app.config.server.max_body_bytes,
        answer: app.config.answer.clone(),
        admin: None,
    };
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    // Commands that find the data dir held (`cairn reindex` from cron) hand their work to
    // this server through serve.json and its admin token.
    let info = handoff::ServeInfo {
        url: handoff::local_url(local),
        token: handoff::new_token()?,
        pid: std::process::id(),
    };
    handoff::publish(&app.config.data_dir, &info)?;
    let state = AppState {
        admin: Some(Admin::new(info.token.as_str())),
        ..state
    };
    tracing::info!(data_dir = %app.config.data_dir.display(), "serving");
    println!("cairn listening on http://{local}");

    // Background flush of the vector index snapshot; indexes are rebuilt from the catalog
    // after a crash anyway, this only shortens the catch-up.
    let flusher = {
        let store = app.store.clone();
        // Each index skips the write when nothing changed since its last flush.
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(30)).await;
                if let Err(e) = store.flush().await {
                    tracing::warn!(error = %e, "background flush failed");
                }
            }
        })
    };
    axum::serve(listener, cairn_web::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server error")?;
    flusher.abort();
    handoff::withdraw(&app.config.data_dir, &info);
    app.store.flush().await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
