//! Route handlers, one file per domain. Each takes the [`super::Authority`] and the request and returns
//! a response or an [`super::error::NaError`].

pub mod admin;
pub mod connectome;
pub mod discovery;
pub mod enroll;
pub mod feed;
pub mod offline_signing;
pub mod public;
pub mod trust;
