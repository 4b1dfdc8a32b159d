//! Sockets and the readiness loop: epoll, UDP receive-socket pairs read with
//! `recvmmsg`, non-blocking TCP connections, and kernel receive timestamps.
//!
//! Linux only (epoll, recvmmsg, SO_TIMESTAMPNS, SO_RCVBUFFORCE).

pub mod epoll;
pub mod tcp;
pub mod timestamp;
pub mod udp;
