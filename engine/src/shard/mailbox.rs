//! Message passing between shards (and from the compile thread): an mpsc
//! channel plus an eventfd that the receiving shard keeps a READ armed on in
//! its io_uring, so that a message wakes a shard sleeping in io_uring_enter.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use super::ShardMsg;

/// The sending side: cloneable, one per (sender, shard) pair.
#[derive(Clone)]
pub struct ShardHandle {
    tx: Sender<ShardMsg>,
    wake: Arc<OwnedFd>,
}

/// The receiving side, owned by the shard.
pub struct Mailbox {
    /// Messages.
    pub rx: Receiver<ShardMsg>,
    /// The eventfd to arm a READ on.
    pub wake: Arc<OwnedFd>,
}

/// A connected handle and mailbox. Errors: eventfd creation.
pub fn mailbox() -> io::Result<(ShardHandle, Mailbox)> {
    // SAFETY: eventfd(2) returns a new descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
    let (tx, rx) = mpsc::channel();
    Ok((
        ShardHandle {
            tx,
            wake: wake.clone(),
        },
        Mailbox { rx, wake },
    ))
}

impl ShardHandle {
    /// Sends `msg` and wakes the shard. False when the shard has stopped.
    pub fn send(&self, msg: ShardMsg) -> bool {
        if self.tx.send(msg).is_err() {
            return false;
        }
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a local to our eventfd; a full counter
        // (EAGAIN) still leaves the shard awake, so the result is ignored.
        unsafe {
            libc::write(
                self.wake.as_raw_fd(),
                &one as *const u64 as *const libc::c_void,
                8,
            )
        };
        true
    }
}
