//! The HTTP server over a launched runtime: bound, served, and stopped gracefully (the requests
//! in flight finish, then the writer stores its last group).

use crate::runtime::{self, config::ServeConfig, App, StopHandle};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::sync::Arc;

/// A running service.
pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    stop: StopHandle,
    server: tokio::task::JoinHandle<Result<()>>,
}

impl Running {
    /// Stops accepting, finishes the requests in flight, and waits for the writer's last group.
    pub async fn stop(self) -> Result<()> {
        let Running {
            app, stop, server, ..
        } = self;
        // The writer ends when the last sender (held by `App`) is gone.
        drop(app);
        stop.request_stop();
        server.await.context("the server task failed")?
    }
}

/// Launches the runtime and starts serving (returns once listening).
pub async fn start(config: ServeConfig) -> Result<Running> {
    let listen = config.listen;
    let (app, background) = runtime::launch(config).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let router = super::router(app.clone());
    let stop = background.stop_handle();
    let mut stopping = stop.stopping();
    let server = tokio::spawn({
        let app = app.clone();
        async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopping.wait_for(|s| *s).await;
                })
                .await
                .context("the HTTP server failed")?;
            background.finish(app).await;
            Ok(())
        }
    });
    tracing::info!(%addr, "tarifa serve is listening");
    Ok(Running {
        addr,
        app,
        stop,
        server,
    })
}

/// Runs until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn serve(config: ServeConfig) -> Result<()> {
    let running = start(config).await?;
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await?;
    tracing::info!("shutting down: finishing the requests in flight");
    running.stop().await
}
