//! The pilot-readiness gate (issue 7): one check per item of the pilot-readiness checklist and the
//! minimum managed surface (`operations.md` §1.1–1.2), each pass | warn | fail with a reason and
//! its evidence. "No evidence" is a fail, never a pass. The CLI resolves flags and gm.toml into
//! [`gather::Sources`]; [`gather`] reads the facts (files, the database and the ops ledger
//! read-only, a live probe), [`checks`] judges them and [`report`] renders the report. It starts no
//! backup or drill.

pub mod checks;
pub mod error;
pub(crate) mod gather;
pub mod profile;
pub mod redaction;
pub mod report;
pub(crate) mod tls;
