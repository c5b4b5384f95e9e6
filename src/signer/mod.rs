//! The customer-held custody model's remote signer: the `gm-signer/1` protocol ([`wire`]) spoken by
//! both ends, and the customer's side (`gm signer run`): the signer's own policy, its durable
//! CRL-sequence state and its append-only signing log. The NA end (the pool of signer sessions
//! `gm serve` signs through) is `na::remote_signer`.
//!
//! The signer holds the genesis NA private key on the customer's machine and dials out to the NA,
//! so the signing host opens no port. It must not import `na`: it trusts nothing the NA says
//! beyond what it can check itself (its policy, its state, the object it is asked to sign).

pub(crate) mod daemon;
pub(crate) mod host_key;
pub(crate) mod log;
pub(crate) mod policy;
pub(crate) mod state;
pub(crate) mod subject;
pub(crate) mod wire;
