//! Serving a router over HTTP/1.1 with bounded resources.
//!
//! `axum::serve` accepts every connection and lets each wait for its request as long as it
//! likes. Here the dock's own process reads cameras: every connection is a file descriptor
//! taken from that budget, so connections are capped (a permit is taken *before* `accept`:
//! beyond the cap, new connections wait in the kernel's listen backlog and hold no descriptor
//! of ours) and each lives a bounded time: its request head must be complete within
//! [`Limits::header_timeout`] (hyper's `header_read_timeout`, timed from the connection's start),
//! there is no keep-alive, and the whole exchange ends by [`Limits::connection_timeout`].

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// What one server may take from the process.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// A connection whose request head is not complete this long after it was accepted is
    /// closed (a client that connects and sends nothing, or a byte now and then).
    pub header_timeout: Duration,
    /// A connection is closed this long after it was accepted, whatever it is doing (a client
    /// that reads its answer a byte at a time).
    pub connection_timeout: Duration,
    /// Largest request head, bytes (hyper's read buffer; at least 8 KiB).
    pub max_head_bytes: usize,
}

/// Serve `app` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        // Never closed, so this only waits.
        let permit = permits.clone().acquire_owned().await?;
        let sock = match listener.accept().await {
            Ok((sock, _)) => sock,
            Err(e) => {
                // EMFILE/ENFILE (the process is out of descriptors) or a connection reset
                // before it was accepted: wait a little rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(false)
                // hyper refuses (panics on) less than 8 KiB.
                .max_buf_size(limits.max_head_bytes.max(8 * 1024))
                .serve_connection(TokioIo::new(sock), service);
            // Errors are the client's (a timeout, a malformed request, a reset): nothing to
            // report beyond debugging, and never the request itself (it may hold a token).
            match tokio::time::timeout(limits.connection_timeout, conn).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, "connection ended"),
                Err(_) => tracing::debug!("connection closed at its time limit"),
            }
        });
    }
}
