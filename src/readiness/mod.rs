//! The pilot-readiness gate (issue 7): one check per item of the pilot-readiness checklist and the
//! minimum managed surface (`operations.md` §1.1–1.2), each pass | warn | fail with a reason and
//! its evidence. "No evidence" is a fail, never a pass. The CLI gathers the facts (files, the
//! database, the ops ledger, a live probe); this module judges them and renders the report. It
//! starts no backup or drill.

pub mod checks;
pub mod profile;
pub mod redaction;
pub mod report;
