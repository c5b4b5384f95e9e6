//! Files on disk: never half-written, never overwritten by surprise, secrets created private.
//!
//! `atomic` writes through a temporary file, fsync and rename; `private` creates files with mode 0600
//! from the start; `lock` holds the advisory lock that marks a database as served by a live `gm serve`;
//! `space` measures a filesystem's free share.

pub mod atomic;
pub mod lock;
pub mod private;
pub(crate) mod space;
