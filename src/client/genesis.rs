//! The NA key that NA-signed objects (treaties, revocation feeds) must verify against:
//! `network_authority.public_key` of the NA's own `GET /genesis` (`na-wire.md` §9.3).
//!
//! Not a trust anchor by itself (the genesis comes from the same server); callers say so when
//! they report a check against it. Reads nothing but the one public route.

use crate::crypto::keys::PublicKey;
use crate::model::genesis::Genesis;
use crate::model::SignedObject;

use super::{ClientError, NaClient};

/// The NA public key named by the NA's own `GET /genesis`.
pub(crate) fn na_public_key(na: &NaClient) -> Result<PublicKey, ClientError> {
    let reply = na.get_object(&na.deadline(), "/genesis")?;
    let genesis = Genesis::from_value(&reply.body).map_err(|e| reply.bad(e.to_string()))?;
    PublicKey::from_b64(&genesis.network_authority.public_key)
        .map_err(|e| reply.bad(format!("network_authority.public_key: {e}")))
}
