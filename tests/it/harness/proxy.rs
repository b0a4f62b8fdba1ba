//! A TCP proxy in front of the test's PostgreSQL server, to cut the database off from a
//! running server the ways a network does:
//!
//! - [`Mode::Forward`]: bytes flow both ways;
//! - [`Mode::Refuse`]: the port is closed (a connect is refused) and every open connection is
//!   reset, as when the database host is up but PostgreSQL is not;
//! - [`Mode::Blackhole`]: packets are dropped: a new connection is accepted but never reaches
//!   PostgreSQL, and open connections stop carrying bytes in either direction (nothing is
//!   closed; what is in flight waits, as in the kernel's buffers during a partition).
//!
//! Back to [`Mode::Forward`], held connections carry on (a partition that heals) and the port
//! is listened on again.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Forward,
    Refuse,
    Blackhole,
}

pub struct Proxy {
    port: u16,
    mode: watch::Sender<Mode>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The accept loop owns the connections' tasks: aborting it drops them all.
        self.task.abort();
    }
}

impl Proxy {
    /// Listens on a random port of 127.0.0.1 and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let (mode, rx) = watch::channel(Mode::Forward);
        let task = tokio::spawn(serve(listener, port, upstream, rx));
        Proxy { port, mode, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

async fn serve(
    listener: TcpListener,
    port: u16,
    upstream: SocketAddr,
    mut mode: watch::Receiver<Mode>,
) {
    let mut connections = JoinSet::new();
    let mut listener = Some(listener);
    loop {
        while connections.try_join_next().is_some() {}
        if *mode.borrow_and_update() == Mode::Refuse {
            // Closed port, and every connection reset (each client socket has a zero linger).
            listener = None;
            connections.abort_all();
            if mode.changed().await.is_err() {
                return;
            }
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => listener.insert(rebind(port).await),
        };
        tokio::select! {
            accepted = l.accept() => {
                if let Ok((client, _)) = accepted {
                    let _ = client.set_zero_linger();
                    connections.spawn(carry(client, upstream, mode.clone()));
                }
            }
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// The same port again (after a refusal), retried briefly in case the old socket lingers.
async fn rebind(port: u16) -> TcpListener {
    for _ in 0..100 {
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)).await {
            return l;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("cannot listen on the proxy's port {port} again");
}

/// Waits until bytes may flow.
async fn forwarding(mode: &mut watch::Receiver<Mode>) {
    let _ = mode.wait_for(|m| *m == Mode::Forward).await;
}

/// One client connection: reaches PostgreSQL only while forwarding, then carries bytes both
/// ways.
async fn carry(client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    forwarding(&mut mode).await;
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        pump(client_read, server_write, mode.clone()),
        pump(server_read, client_write, mode),
    );
}

/// Copies one direction, holding the bytes while not forwarding.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        forwarding(&mut mode).await;
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        forwarding(&mut mode).await;
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
