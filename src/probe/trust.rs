//! The probe's trust checks: `/genesis` must be signed by the pinned root key, and `/crl` by the NA
//! key that genesis names and not past its `next_update` (`na-wire.md` §7.2, §7.6, `deviations.md`
//! D4). A probe that only reads status codes would miss an NA serving a swapped genesis or a stale
//! or forged CRL; these checks are what a node would refuse.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::client::{Deadline, NaClient};
use crate::clock::Clock;
use crate::crypto::keys::PublicKey;
use crate::crypto::signature::SignatureCheck;
use crate::model::crl::Crl;
use crate::model::genesis::Genesis;
use crate::model::timestamp::pydantic_utc;
use crate::model::SignedObject;

use super::finding::{fail, get_object, Finding, Outcome, ProbeOptions};

/// gm re-issues its CRL when less than this is left before `next_update` (D4), so a CRL served
/// closer to expiry than this means the NA is not refreshing it.
const CRL_REFRESH_WINDOW_HOURS: i64 = 12;

/// `GET /genesis`: the root signatures verify with the pinned root key, and the block names that
/// key. Without a pinned key only self-consistency can be checked, which an attacker who swaps the
/// genesis also passes, so the check is WARNING, never OK.
pub(crate) fn check_genesis(
    client: &NaClient,
    deadline: &Deadline,
    options: &ProbeOptions,
    latency: &mut Option<Duration>,
) -> Finding {
    let genesis = match fetch_genesis(client, deadline, latency) {
        Ok(genesis) => genesis,
        Err(finding) => return finding,
    };
    let count = genesis.signatures.len();
    let Some(pinned) = &options.root_public_key else {
        return match genesis.check_root_signatures() {
            SignatureCheck::Valid => (
                Outcome::Warn,
                format!(
                    "root key not pinned (pass --root-public-key): {count} signature(s) verify only with the block's own root key {}",
                    genesis.root_public_key
                ),
            ),
            other => fail(signature_problem(&other, "the block's own root key")),
        };
    };
    match genesis.check_signatures(std::slice::from_ref(pinned)) {
        SignatureCheck::Valid if genesis.root_public_key == pinned.to_b64() => {
            (Outcome::Pass, format!("{count} root signature(s) verify with the pinned root key"))
        }
        SignatureCheck::Valid => fail(format!(
            "signed by the pinned root key but names root key {}, not the pinned one",
            genesis.root_public_key
        )),
        other if genesis.root_public_key != pinned.to_b64() => fail(format!(
            "{}; the genesis names root key {}, not the pinned {}",
            signature_problem(&other, "the pinned root key"),
            genesis.root_public_key,
            pinned.to_b64()
        )),
        other => fail(signature_problem(&other, "the pinned root key")),
    }
}

/// `GET /crl`: `signatures[0]` verifies with the NA key of the served genesis (itself checked
/// against the pinned root key when one is given), and `next_update` has not passed.
pub(crate) fn check_crl(
    client: &NaClient,
    deadline: &Deadline,
    options: &ProbeOptions,
    clock: &dyn Clock,
    latency: &mut Option<Duration>,
) -> Finding {
    let na_key = match genesis_na_key(client, deadline, options) {
        Ok(key) => key,
        Err(reason) => return (Outcome::Unknown, format!("cannot get the NA key: {reason}")),
    };
    let reply = match get_object(client, deadline, "/crl", latency) {
        Ok(reply) => reply,
        Err(finding) => return finding,
    };
    let crl = match Crl::from_value(&reply.body) {
        Ok(crl) => crl,
        Err(e) => return fail(e.to_string()),
    };
    let check = crl.check_signatures(&[na_key]);
    if !check.is_valid() {
        return fail(format!("sequence {}: {}", crl.sequence, signature_problem(&check, "the genesis NA key")));
    }
    let now = clock.now();
    let next_update = crl.next_update.to_utc();
    if next_update <= now {
        return fail(format!(
            "sequence {} expired: next_update {} passed {} ago",
            crl.sequence,
            pydantic_utc(next_update),
            span(now, next_update)
        ));
    }
    let left = span(next_update, now);
    if next_update - now < chrono::Duration::hours(CRL_REFRESH_WINDOW_HOURS) {
        return (
            Outcome::Warn,
            format!(
                "sequence {} expires in {left} (next_update {}): the NA is not re-issuing it",
                crl.sequence,
                pydantic_utc(next_update)
            ),
        );
    }
    (Outcome::Pass, format!("sequence {} signed by the genesis NA key, next_update in {left}", crl.sequence))
}

fn fetch_genesis(client: &NaClient, deadline: &Deadline, latency: &mut Option<Duration>) -> Result<Genesis, Finding> {
    let reply = get_object(client, deadline, "/genesis", latency)?;
    Genesis::from_value(&reply.body).map_err(|e| fail(e.to_string()))
}

/// The NA public key named by the served genesis; with a pinned root key, only from a genesis
/// that key signed (else a forged genesis could vouch for a forged CRL).
fn genesis_na_key(client: &NaClient, deadline: &Deadline, options: &ProbeOptions) -> Result<PublicKey, String> {
    let mut ignored = None;
    let genesis = fetch_genesis(client, deadline, &mut ignored).map_err(|(_, reason)| format!("/genesis: {reason}"))?;
    if let Some(pinned) = &options.root_public_key {
        if !genesis.check_signatures(std::slice::from_ref(pinned)).is_valid() {
            return Err("the served genesis is not signed by the pinned root key".to_string());
        }
    }
    PublicKey::from_b64(&genesis.network_authority.public_key)
        .map_err(|e| format!("genesis network_authority.public_key: {e}"))
}

fn signature_problem(check: &SignatureCheck, key: &str) -> String {
    match check {
        SignatureCheck::Valid => format!("verifies with {key}"),
        SignatureCheck::Unsigned => "unsigned (no signatures)".to_string(),
        SignatureCheck::Invalid { index: Some(i) } => format!("signature {i} does not verify with {key}"),
        SignatureCheck::Invalid { index: None } => format!("no signature verifies with {key}"),
    }
}

/// `later - earlier` in the largest whole unit that fits: `3 d`, `5 h`, `12 min`, `40 s`.
fn span(later: DateTime<Utc>, earlier: DateTime<Utc>) -> String {
    let d = later - earlier;
    if d.num_days() >= 2 {
        format!("{} d", d.num_days())
    } else if d.num_hours() >= 1 {
        format!("{} h", d.num_hours())
    } else if d.num_minutes() >= 1 {
        format!("{} min", d.num_minutes())
    } else {
        format!("{} s", d.num_seconds().max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_in_one_unit() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(span(t0 + chrono::Duration::hours(23), t0), "23 h");
        assert_eq!(span(t0 + chrono::Duration::days(3), t0), "3 d");
        assert_eq!(span(t0 + chrono::Duration::seconds(90), t0), "1 min");
        assert_eq!(span(t0, t0 + chrono::Duration::seconds(5)), "0 s");
    }
}
