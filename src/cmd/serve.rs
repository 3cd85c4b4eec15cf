//! `cairn serve`: the HTTP server. It opens the data dir, prints the address it listens on,
//! publishes itself in the data dir for commands that need it (see [`handoff`]), and
//! flushes the vector index in the background and on shutdown (Ctrl-C or SIGTERM).

use crate::app::App;
use crate::handoff;
use anyhow::Context;
use cairn_core::{Actor, Config, Principal, Role};
use cairn_web::limits::RateLimit;
use cairn_web::{AppState, Auth, Proxy};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on, e.g. 127.0.0.1:7700 (port 0 picks a free port)
    #[arg(long, env = "CAIRN_ADDR", value_name = "HOST:PORT")]
    addr: Option<String>,
    /// Let requests without an API key act as an admin of the configured tenant (for one
    /// person on this machine; refused unless the address is a loopback one)
    #[arg(long)]
    no_auth: bool,
}

/// Whether every address `addr` resolves to is a loopback one.
fn is_loopback(addr: &str) -> anyhow::Result<bool> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve the address {addr}"))?
        .collect();
    Ok(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()))
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
    // Metrics from the start: loading models and catching up indexes count too.
    let _ = cairn_web::observe::recorder();
    let addr = config.server.addr.clone();
    if args.no_auth && !is_loopback(&addr)? {
        return Err(cairn_core::Error::user(format!(
            "--no-auth is refused on {addr}: it is not a loopback address, so anyone who can reach it would act as an admin; make API keys (cairn keys create) instead"
        ))
        .into());
    }
    let mut app = App::open(config).await?;
    // Requests may ask for reranking when a reranker is installed; `[rerank] enabled`
    // makes it the default and requires it.
    let required = app.config.rerank.enabled;
    app.load_reranker(required)?;
    app.load_generator()?;
    app.load_judge()?;
    let service = app.service()?;
    let tenant = app.config.tenant.clone();
    let open = args.no_auth.then(|| {
        Principal::new(tenant.clone(), Vec::new())
            .with_role(Role::Admin)
            .with_actor(Actor::Open)
    });
    let auth_cfg = &app.config.auth;
    let proxy = (!auth_cfg.trusted_header.is_empty()).then(|| Proxy {
        user_header: auth_cfg.trusted_header.clone(),
        tenant_header: auth_cfg.tenant_header.clone(),
        groups_header: auth_cfg.groups_header.clone(),
        role_header: auth_cfg.role_header.clone(),
        default_tenant: tenant.clone(),
    });
    if let Some(p) = &proxy {
        tracing::warn!(header = %p.user_header, "proxy mode: requests carrying this header act as the user it names; only the proxy may reach this server");
    }
    if open.is_some() {
        tracing::warn!(tenant = %tenant, "--no-auth: requests without a key act as an admin of this tenant");
    } else if !service.has_keys().await? {
        tracing::warn!(
            "no API keys yet: requests are refused until an admin makes one with `cairn keys create --role admin` (works while the server runs)"
        );
    }
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
    // The data dir's token stands for the machine's local admin: only who can read the
    // data dir has it.
    let machine = Principal::local(tenant, Vec::new());
    let state = AppState {
        service: service.clone(),
        auth: Auth {
            open,
            local_token: Some((info.token.as_str().into(), machine)),
            proxy,
        },
        limits: RateLimit::new(
            app.config.limits.requests_per_second,
            app.config.limits.burst,
        ),
        request_timeout: Duration::from_secs(app.config.limits.request_timeout_secs),
        max_body_bytes: app.config.server.max_body_bytes,
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
    // The audit log's retention, at start and then daily.
    let pruner = {
        let service = service.clone();
        tokio::spawn(async move {
            loop {
                match service.prune_audit().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(lines = n, "audit lines past retention removed"),
                    Err(e) => tracing::warn!(error = %e, "pruning the audit log failed"),
                }
                tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
            }
        })
    };
    axum::serve(listener, cairn_web::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server error")?;
    flusher.abort();
    pruner.abort();
    service.auditor().flush().await;
    handoff::withdraw(&app.config.data_dir, &info);
    app.store.flush().await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
