//! A treaty's derived lifecycle (`na-wire.md` §11.3, upstream 0.17.4+ / 1.x): `active`,
//! `expiring_soon`, `expired`, `revoked` or `replaced`, with an expiry risk, computed from the
//! stored row (status, revocation reason and time) and the signed `expires_at` at a given `now`.
//!
//! A pure function of its inputs: it reads no store and no clock, and changes no acceptance
//! decision (§11.2 decides acceptance; this is visibility only, as in upstream's dashboard).

use chrono::{DateTime, Utc};

use crate::json::Value;

use super::fields::object;
use super::timestamp::ModelTime;

/// Hours before expiry at which a treaty becomes `expiring_soon` (upstream's
/// `DEFAULT_EXPIRY_WARNING_HOURS`).
pub(crate) const EXPIRY_WARNING_HOURS: i64 = 72;
/// Seconds before expiry at which the risk becomes `high`.
const HIGH_RISK_SECONDS: i64 = 24 * 3600;

/// Revocation reason prefixes that name a successor (`renewed_by:<id>`, `replaced_by:<id>`, §11.1).
const SUCCESSOR_PREFIXES: [&str; 2] = ["replaced_by:", "renewed_by:"];

/// The derived state of a treaty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LifecycleState {
    /// Stored active, more than 72 h left.
    Active,
    /// Stored active, 72 h or less left.
    ExpiringSoon,
    /// Stored active, past `expires_at`.
    Expired,
    /// Revoked for a reason that names no successor.
    Revoked,
    /// Revoked with `renewed_by:<id>` or `replaced_by:<id>`.
    Replaced,
}

impl LifecycleState {
    /// The wire string.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LifecycleState::Active => "active",
            LifecycleState::ExpiringSoon => "expiring_soon",
            LifecycleState::Expired => "expired",
            LifecycleState::Revoked => "revoked",
            LifecycleState::Replaced => "replaced",
        }
    }
}

/// How close a treaty is to lapsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExpiryRisk {
    /// Revoked or replaced: expiry no longer matters.
    None,
    /// More than 72 h left.
    Low,
    /// 72 h or less left.
    Medium,
    /// 24 h or less left.
    High,
    /// Past `expires_at`.
    Expired,
}

impl ExpiryRisk {
    /// The wire string.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ExpiryRisk::None => "none",
            ExpiryRisk::Low => "low",
            ExpiryRisk::Medium => "medium",
            ExpiryRisk::High => "high",
            ExpiryRisk::Expired => "expired",
        }
    }
}

/// A treaty's derived lifecycle, with the stored facts it was derived from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TreatyLifecycle {
    /// The derived state.
    pub state: LifecycleState,
    /// The expiry risk.
    pub expiry_risk: ExpiryRisk,
    /// The successor named by a `renewed_by:` / `replaced_by:` reason.
    pub replacement_treaty_id: Option<String>,
    /// Whole seconds left (never negative); `None` when revoked.
    pub seconds_until_expiry: Option<i64>,
    /// The signed `expires_at`.
    pub expires_at: ModelTime,
    /// The stored revocation reason.
    pub revocation_reason: Option<String>,
    /// The stored revocation time, as the NA rendered it.
    pub revoked_at: Option<String>,
}

impl TreatyLifecycle {
    /// Derives the lifecycle of a treaty whose stored row has `status`, `revocation_reason` and
    /// `revoked_at`, at `now`. The first matching rule of §11.3 wins.
    pub(crate) fn derive(
        status: &str,
        revocation_reason: Option<&str>,
        revoked_at: Option<&str>,
        expires_at: &ModelTime,
        now: DateTime<Utc>,
    ) -> TreatyLifecycle {
        // TimeDelta::num_seconds truncates toward zero, as upstream's int(total_seconds()) does.
        let seconds = (expires_at.to_utc() - now).num_seconds();
        let replacement = revocation_reason.and_then(successor_of);
        let (state, expiry_risk) = if status == "revoked" {
            let state = if replacement.is_some() { LifecycleState::Replaced } else { LifecycleState::Revoked };
            (state, ExpiryRisk::None)
        } else if seconds <= 0 {
            (LifecycleState::Expired, ExpiryRisk::Expired)
        } else if seconds <= HIGH_RISK_SECONDS {
            (LifecycleState::ExpiringSoon, ExpiryRisk::High)
        } else if seconds <= EXPIRY_WARNING_HOURS * 3600 {
            (LifecycleState::ExpiringSoon, ExpiryRisk::Medium)
        } else {
            (LifecycleState::Active, ExpiryRisk::Low)
        };
        let revoked = status == "revoked";
        TreatyLifecycle {
            state,
            expiry_risk,
            replacement_treaty_id: if revoked { replacement } else { None },
            seconds_until_expiry: if revoked { None } else { Some(seconds.max(0)) },
            expires_at: *expires_at,
            revocation_reason: revocation_reason.map(str::to_string),
            revoked_at: revoked_at.map(str::to_string),
        }
    }

    /// The 1.x lifecycle object: `{"expires_at", "expiry_risk", "replacement_treaty_id",
    /// "revocation_reason", "revoked_at", "seconds_until_expiry", "state"}`.
    pub(crate) fn to_value(&self) -> Value {
        let text = |s: &Option<String>| s.as_deref().map_or(Value::Null, Value::from);
        Value::Object(object(vec![
            ("expires_at", Value::from(self.expires_at.render_isoformat())),
            ("expiry_risk", Value::from(self.expiry_risk.as_str())),
            ("replacement_treaty_id", text(&self.replacement_treaty_id)),
            ("revocation_reason", text(&self.revocation_reason)),
            ("revoked_at", text(&self.revoked_at)),
            ("seconds_until_expiry", self.seconds_until_expiry.map_or(Value::Null, Value::from)),
            ("state", Value::from(self.state.as_str())),
        ]))
    }
}

/// The successor id of a `renewed_by:<id>` / `replaced_by:<id>` reason; `None` for any other
/// reason or an empty id.
pub(crate) fn successor_of(reason: &str) -> Option<String> {
    SUCCESSOR_PREFIXES
        .iter()
        .find_map(|prefix| reason.strip_prefix(prefix))
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
    }

    #[test]
    fn lifecycle_follows_the_first_matching_rule() {
        // (stored status, reason, expires_at - now in ms, state, risk, seconds, replacement)
        type Case =
            (&'static str, Option<&'static str>, i64, &'static str, &'static str, Option<i64>, Option<&'static str>);
        let cases: [Case; 13] = [
            ("revoked", Some("renewed_by:t2"), 3_600_000, "replaced", "none", None, Some("t2")),
            ("revoked", Some("replaced_by:t3"), -3_600_000, "replaced", "none", None, Some("t3")),
            ("revoked", Some("replaced_by:"), 3_600_000, "revoked", "none", None, None),
            ("revoked", Some("unspecified"), 3_600_000, "revoked", "none", None, None),
            ("revoked", None, 900_000_000, "revoked", "none", None, None),
            ("active", Some("renewed_by:t2"), 900_000_000, "active", "low", Some(900_000), None),
            ("active", None, 0, "expired", "expired", Some(0), None),
            ("active", None, 500, "expired", "expired", Some(0), None),
            ("active", None, -86_400_000, "expired", "expired", Some(0), None),
            ("active", None, 86_400_000, "expiring_soon", "high", Some(86_400), None),
            ("active", None, 86_401_000, "expiring_soon", "medium", Some(86_401), None),
            ("active", None, 72 * 3_600_000, "expiring_soon", "medium", Some(259_200), None),
            ("suspended", None, 72 * 3_600_000 + 1_000, "active", "low", Some(259_201), None),
        ];
        for (status, reason, ms, state, risk, seconds, replacement) in cases {
            let expires_at = ModelTime::from_utc(now() + Duration::milliseconds(ms));
            let life = TreatyLifecycle::derive(status, reason, None, &expires_at, now());
            let case = format!("{status} {reason:?} {ms} ms");
            assert_eq!(life.state.as_str(), state, "{case}");
            assert_eq!(life.expiry_risk.as_str(), risk, "{case}");
            assert_eq!(life.seconds_until_expiry, seconds, "{case}");
            assert_eq!(life.replacement_treaty_id.as_deref(), replacement, "{case}");
        }
    }

    #[test]
    fn lifecycle_object_has_the_upstream_keys() {
        let expires_at = ModelTime::from_utc(now() + Duration::hours(2));
        let life = TreatyLifecycle::derive(
            "revoked",
            Some("renewed_by:t2"),
            Some("2026-03-02T09:00:00+00:00"),
            &expires_at,
            now(),
        );
        assert_eq!(
            crate::crypto::canonical::canonical_string(&life.to_value()),
            "{\"expires_at\":\"2026-03-02T12:00:00+00:00\",\"expiry_risk\":\"none\",\"replacement_treaty_id\":\"t2\",\"revocation_reason\":\"renewed_by:t2\",\"revoked_at\":\"2026-03-02T09:00:00+00:00\",\"seconds_until_expiry\":null,\"state\":\"replaced\"}"
        );
    }
}
