//! The customer's own signing policy (`signer-policy.toml`): which kinds `gm signer run` signs
//! without a human, which roles a certificate may grant, how long what it signs may stay valid,
//! how far an object's `issued_at` may be from the signer's clock, and how many signatures a
//! minute it gives at most. It decides on one [`Subject`]; the CRL sequence floor is
//! [`super::state`], and it must not trust anything the NA says that it can check itself.
//!
//! Every refusal names the rule (the policy field) and the value that broke it, because the NA
//! shows it to the operator as is (the HTTP error body and the NA log).

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::model::Kind;

use super::subject::{signable_kind, Subject, SIGNABLE};

/// The largest policy file read.
const MAX_POLICY_BYTES: u64 = 64 * 1024;

/// The commented template `gm signer init` writes; `NETWORK_NAME` is replaced.
pub(crate) const TEMPLATE: &str = r#"# gm signer policy: what `gm signer run` signs for the NA without asking a human.
# Everything not allowed here is refused, and the refusal (rule and value) reaches the NA operator.
# Unknown keys are an error, so a typo never loosens the policy. Restart the signer after a change.

# The network this signer signs for; must equal the genesis' network_name (and every
# certificate's network_name).
network_name = "NETWORK_NAME"

# The kinds signed automatically: cert (joins and renewals), crl, policy, attestation, treaty, feed.
# Treaties are kept manual here: the signer refuses them, and you sign them offline with
# `gm sign treaty` after reviewing them. Add "treaty" to sign them automatically.
auto_sign = ["cert", "crl", "policy", "attestation", "feed"]

# Every role of a certificate must be listed. A trailing * matches any suffix
# ("role:service:*" allows every service role).
allowed_roles = ["role:client", "role:anchor", "role:bridge", "role:service:*"]

# The longest certificate validity (expires_at - issued_at), in hours. gm serve issues
# 168 hours unless a join asks for other.
max_validity_hours = 720

# Optional caps (hours) for attestations and treaties (expires_at - issued_at) and for a CRL's
# next_update - issued_at. Absent: no cap.
# max_attestation_validity_hours = 8760
# max_treaty_validity_hours = 8760
# max_crl_validity_hours = 168

# issued_at must be within this many seconds of this machine's clock (keep NTP running on both
# hosts). Defaults to 300.
max_clock_skew_seconds = 300

# At most this many signatures a minute (a token bucket: a burst of this size, refilled evenly).
# A compromised NA cannot mint more than this. Defaults to 6000.
max_signatures_per_minute = 6000
"#;

/// The policy file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    network_name: String,
    auto_sign: Vec<String>,
    allowed_roles: Vec<String>,
    max_validity_hours: u32,
    max_attestation_validity_hours: Option<u32>,
    max_treaty_validity_hours: Option<u32>,
    max_crl_validity_hours: Option<u32>,
    #[serde(default = "default_skew")]
    max_clock_skew_seconds: u32,
    #[serde(default = "default_rate")]
    max_signatures_per_minute: u32,
}

fn default_skew() -> u32 {
    300
}

fn default_rate() -> u32 {
    6000
}

/// A checked policy.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    file: PolicyFile,
    auto: Vec<Kind>,
}

impl Policy {
    /// Reads and checks the policy at `path`.
    pub(crate) fn load(path: &Path) -> Result<Policy, String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read the policy {}: {e}", path.display()))?;
        if meta.len() > MAX_POLICY_BYTES {
            return Err(format!("the policy {} is over {MAX_POLICY_BYTES} bytes", path.display()));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read the policy {}: {e}", path.display()))?;
        Policy::parse(&text).map_err(|e| format!("the policy {} is invalid: {e}", path.display()))
    }

    /// Parses and checks policy text.
    pub(crate) fn parse(text: &str) -> Result<Policy, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        let mut auto = Vec::new();
        for name in &file.auto_sign {
            let kind = signable_kind(name).ok_or_else(|| {
                let known: Vec<&str> = SIGNABLE.iter().map(|k| k.name()).collect();
                format!("auto_sign names {name:?}, which is not one of {}", known.join(", "))
            })?;
            auto.push(kind);
        }
        if file.network_name.trim().is_empty() {
            return Err("network_name is empty".into());
        }
        if auto.contains(&Kind::Cert) && file.allowed_roles.is_empty() {
            return Err("auto_sign includes cert but allowed_roles is empty (no certificate could be signed)".into());
        }
        if file.max_validity_hours == 0 {
            return Err("max_validity_hours must be at least 1".into());
        }
        if file.max_signatures_per_minute == 0 {
            return Err("max_signatures_per_minute must be at least 1".into());
        }
        Ok(Policy { file, auto })
    }

    /// The network this policy signs for.
    pub(crate) fn network_name(&self) -> &str {
        &self.file.network_name
    }

    /// `max_signatures_per_minute`.
    pub(crate) fn max_signatures_per_minute(&self) -> u32 {
        self.file.max_signatures_per_minute
    }

    /// Whether `kind` is signed without a human; `Err` names the rule.
    pub(crate) fn admit_kind(&self, name: &str) -> Result<Kind, String> {
        let Some(kind) = signable_kind(name) else {
            return Err(format!("kind {name:?} is not a kind a remote signer signs"));
        };
        if !self.auto.contains(&kind) {
            return Err(format!(
                "kind {name:?} is not in auto_sign ({}): the customer signs it offline (gm sign {name}) or adds it to auto_sign",
                self.file.auto_sign.join(", ")
            ));
        }
        Ok(kind)
    }

    /// Judges `subject` at `now`; `Err` names the rule and the value that broke it.
    pub(crate) fn check(&self, subject: &Subject, now: DateTime<Utc>) -> Result<(), String> {
        if let Some(name) = &subject.network_name {
            if name != &self.file.network_name {
                return Err(format!(
                    "network_name {name:?} is not the policy's network_name {:?}",
                    self.file.network_name
                ));
            }
        }
        if subject.kind == Kind::Cert {
            if let Some(role) = subject.roles.iter().find(|r| !self.role_allowed(r)) {
                return Err(format!("role {role:?} is not in allowed_roles ({})", self.file.allowed_roles.join(", ")));
            }
        }
        let skew = (subject.issued_at - now).num_seconds().abs();
        if skew > i64::from(self.file.max_clock_skew_seconds) {
            return Err(format!(
                "issued_at {} is {skew} s from the signer's clock ({}), over max_clock_skew_seconds = {}",
                subject.issued_at.to_rfc3339(),
                now.to_rfc3339(),
                self.file.max_clock_skew_seconds
            ));
        }
        self.check_validity(subject)
    }

    fn role_allowed(&self, role: &str) -> bool {
        self.file.allowed_roles.iter().any(|allowed| match allowed.strip_suffix('*') {
            Some(prefix) => role.starts_with(prefix),
            None => role == allowed,
        })
    }

    fn check_validity(&self, subject: &Subject) -> Result<(), String> {
        let (rule, cap) = match subject.kind {
            Kind::Cert => ("max_validity_hours", Some(self.file.max_validity_hours)),
            Kind::Attestation => ("max_attestation_validity_hours", self.file.max_attestation_validity_hours),
            Kind::Treaty => ("max_treaty_validity_hours", self.file.max_treaty_validity_hours),
            Kind::Crl => ("max_crl_validity_hours", self.file.max_crl_validity_hours),
            _ => return Ok(()),
        };
        let Some(until) = subject.valid_until else { return Ok(()) };
        let seconds = (until - subject.issued_at).num_seconds();
        if seconds <= 0 {
            return Err(format!(
                "it ends ({}) before it is issued ({})",
                until.to_rfc3339(),
                subject.issued_at.to_rfc3339()
            ));
        }
        match cap {
            Some(hours) if seconds > i64::from(hours) * 3600 => {
                let asked = seconds as f64 / 3600.0;
                Err(format!("validity {asked:.1} h exceeds {rule} = {hours}"))
            }
            _ => Ok(()),
        }
    }
}

/// The token bucket of `max_signatures_per_minute`: a burst of one minute's worth, refilled evenly.
#[derive(Debug)]
pub(crate) struct SignatureBudget {
    per_minute: u32,
    tokens: f64,
    last: Instant,
}

impl SignatureBudget {
    /// A full bucket at `now`.
    pub(crate) fn new(per_minute: u32, now: Instant) -> SignatureBudget {
        SignatureBudget { per_minute, tokens: f64::from(per_minute), last: now }
    }

    /// Takes one signature at `now`; `Err` names the rule.
    pub(crate) fn take(&mut self, now: Instant) -> Result<(), String> {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        let cap = f64::from(self.per_minute);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * cap / 60.0).min(cap);
        if self.tokens < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - self.tokens) * 60.0 / cap);
            return Err(format!(
                "rate limit max_signatures_per_minute = {} reached (next signature in {} ms)",
                self.per_minute,
                wait.as_millis().max(1)
            ));
        }
        self.tokens -= 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 5, 20, 0, 0).unwrap()
    }

    fn policy() -> Policy {
        Policy::parse(&TEMPLATE.replace("NETWORK_NAME", "acme")).unwrap()
    }

    fn cert(roles: &[&str], hours: i64) -> Subject {
        Subject {
            kind: Kind::Cert,
            object_id: "c1".into(),
            sequence: None,
            canonical: b"{}".to_vec(),
            issued_at: now(),
            valid_until: Some(now() + chrono::Duration::hours(hours)),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            network_name: Some("acme".into()),
            revoked: Vec::new(),
        }
    }

    #[test]
    fn the_template_signs_a_client_certificate_within_the_rules() {
        assert_eq!(policy().check(&cert(&["role:client", "role:service:dns"], 168), now()), Ok(()));
    }

    #[test]
    fn a_role_outside_allowed_roles_is_refused_naming_it() {
        let err = policy().check(&cert(&["role:client", "role:operator"], 168), now()).unwrap_err();
        assert!(err.starts_with("role \"role:operator\" is not in allowed_roles ("), "{err}");
    }

    #[test]
    fn a_validity_over_the_cap_is_refused_naming_the_rule() {
        let err = policy().check(&cert(&["role:client"], 721), now()).unwrap_err();
        assert_eq!(err, "validity 721.0 h exceeds max_validity_hours = 720");
        let err = policy().check(&cert(&["role:client"], -1), now()).unwrap_err();
        assert!(err.contains("before it is issued"), "{err}");
    }

    #[test]
    fn issued_at_beyond_the_skew_is_refused_both_ways() {
        let p = policy();
        let c = cert(&["role:client"], 1);
        assert!(p.check(&c, now() + chrono::Duration::seconds(300)).is_ok());
        let err = p.check(&c, now() + chrono::Duration::seconds(301)).unwrap_err();
        assert!(err.contains("301 s from the signer's clock") && err.contains("max_clock_skew_seconds = 300"), "{err}");
        assert!(p.check(&c, now() - chrono::Duration::seconds(400)).is_err());
    }

    #[test]
    fn another_network_is_refused() {
        let mut c = cert(&["role:client"], 1);
        c.network_name = Some("other".into());
        let err = policy().check(&c, now()).unwrap_err();
        assert_eq!(err, "network_name \"other\" is not the policy's network_name \"acme\"");
    }

    #[test]
    fn kinds_outside_auto_sign_and_unknown_kinds_are_refused() {
        let p = policy();
        assert_eq!(p.admit_kind("cert"), Ok(Kind::Cert));
        let err = p.admit_kind("treaty").unwrap_err();
        assert!(err.starts_with("kind \"treaty\" is not in auto_sign (cert, crl, policy, attestation, feed)"), "{err}");
        assert_eq!(p.admit_kind("genesis").unwrap_err(), "kind \"genesis\" is not a kind a remote signer signs");
        assert!(p.admit_kind("nonsense").is_err());
    }

    #[test]
    fn optional_caps_apply_only_when_set() {
        let mut attestation = cert(&[], 24 * 400);
        attestation.kind = Kind::Attestation;
        attestation.network_name = None;
        assert!(policy().check(&attestation, now()).is_ok());
        let capped = Policy::parse(&format!(
            "{}\nmax_attestation_validity_hours = 8760\n",
            TEMPLATE.replace("NETWORK_NAME", "acme")
        ))
        .unwrap();
        let err = capped.check(&attestation, now()).unwrap_err();
        assert_eq!(err, "validity 9600.0 h exceeds max_attestation_validity_hours = 8760");
    }

    #[test]
    fn invalid_policies_are_refused_with_the_field_named() {
        let base = TEMPLATE.replace("NETWORK_NAME", "acme");
        let err = Policy::parse(&format!("{base}\nsign_everything = true\n")).unwrap_err();
        assert!(err.contains("sign_everything"), "{err}");
        let err = Policy::parse(&base.replace("\"feed\"]", "\"feed\", \"genesis\"]")).unwrap_err();
        assert!(err.starts_with("auto_sign names \"genesis\""), "{err}");
        let err = Policy::parse(&base.replace("max_validity_hours = 720", "")).unwrap_err();
        assert!(err.contains("max_validity_hours"), "{err}");
        let err = Policy::parse(&base.replace("max_signatures_per_minute = 6000", "max_signatures_per_minute = 0"))
            .unwrap_err();
        assert_eq!(err, "max_signatures_per_minute must be at least 1");
        let defaults = Policy::parse(
            &base.replace("max_clock_skew_seconds = 300", "").replace("max_signatures_per_minute = 6000", ""),
        )
        .unwrap();
        assert_eq!((defaults.file.max_clock_skew_seconds, defaults.max_signatures_per_minute()), (300, 6000));
    }

    #[test]
    fn the_rate_limit_allows_a_burst_then_refills_evenly() {
        let start = Instant::now();
        let mut budget = SignatureBudget::new(60, start);
        for _ in 0..60 {
            budget.take(start).unwrap();
        }
        let err = budget.take(start).unwrap_err();
        assert!(err.starts_with("rate limit max_signatures_per_minute = 60 reached"), "{err}");
        // One a second comes back.
        assert!(budget.take(start + Duration::from_millis(500)).is_err());
        assert!(budget.take(start + Duration::from_millis(1000)).is_ok());
        assert!(budget.take(start + Duration::from_millis(1100)).is_err());
        // A long pause refills no more than one minute's worth.
        let later = start + Duration::from_secs(3600);
        for _ in 0..60 {
            budget.take(later).unwrap();
        }
        assert!(budget.take(later).is_err());
    }
}
