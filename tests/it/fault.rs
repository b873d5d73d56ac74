//! A fault proxy: a TCP proxy between the service and Postgres that can go
//! half-open (every socket stays open, no byte is forwarded any more: what
//! a NAT or conntrack flush, a failover or a dead load balancer does) and
//! heal (new connections pass again; the stalled ones stay dead, as their
//! flows are gone).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct FaultProxy {
    pub port: u16,
    stalled: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free port and forwards to `upstream` (host:port).
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let stalled = Arc::new(AtomicBool::new(false));
        let upstream = upstream.to_owned();
        let state = stalled.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let (upstream, state) = (upstream.clone(), state.clone());
                conns.spawn(async move {
                    if state.load(Ordering::SeqCst) {
                        // Accepted, never answered.
                        let _held = inbound;
                        return std::future::pending::<()>().await;
                    }
                    let Ok(outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let dead = Arc::new(AtomicBool::new(false));
                    let (mut sr, mut sw) = outbound.into_split();
                    let (mut cr, mut cw) = inbound.into_split();
                    let up = pump(&mut cr, &mut sw, &state, &dead);
                    let down = pump(&mut sr, &mut cw, &state, &dead);
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                    }
                });
            }
        });
        FaultProxy {
            port,
            stalled,
            task,
        }
    }

    /// Half-open: nothing more is forwarded on any connection, old or new;
    /// every socket stays open.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// New connections pass again; the ones the stall caught stay dead.
    pub fn heal(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }

    /// `db_url` with its host and port replaced by the proxy's.
    pub fn url(&self, db_url: &str) -> String {
        crate::support::via_port(db_url, self.port)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to` until either closes; once the proxy stalls, this
/// connection is dead: what it reads is dropped, and it never returns (so
/// both sockets stay open) until the proxy is dropped.
async fn pump(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    stalled: &AtomicBool,
    dead: &AtomicBool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if stalled.load(Ordering::SeqCst) {
            dead.store(true, Ordering::SeqCst);
        }
        if dead.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stalled.load(Ordering::SeqCst) || dead.load(Ordering::SeqCst) {
            dead.store(true, Ordering::SeqCst);
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
