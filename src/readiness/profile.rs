//! The sovereign profile (`profile.toml` in the gm home): the human decisions the pilot-readiness
//! report needs as evidence and cannot measure (`operations.md` §1.2 attestation items, §1.4, §1.5):
//! the sovereign's name and policy intent, the NA key custody model, who holds the operator keys,
//! incident-response contacts, the responsibility matrix with who accepted it and when, and the
//! out-of-scope acknowledgement. Unknown keys are rejected so a typo never reads as "missing".

use serde::Deserialize;

/// The nine areas of the responsibility matrix (`operations.md` §1.4), with upstream's split.
pub(crate) const AREAS: [(&str, &str, &str); 9] = [
    ("hosting", "runs the runtime, systemd, ingress and logs", "approves hosting region and availability needs"),
    (
        "genesis",
        "stores and deploys the approved signed genesis",
        "owns the sovereign name, the root trust decision and the policy intent",
    ),
    ("na_key", "custody according to the chosen model", "approves the custody model and the rotation policy"),
    ("operator_keys", "installs the approved operator public keys", "decides who may perform admin actions"),
    ("database", "backs up, restores, monitors disk and locks", "sets retention and incident-disclosure needs"),
    ("treaties", "carries out approved treaty operations", "decides which sovereigns to recognise"),
    ("feeds", "imports approved feeds and checks the results", "decides which issuer feeds are trusted"),
    (
        "audit_exports",
        "produces redacted exports and incident bundles",
        "reviews trust decisions and compliance evidence",
    ),
    ("incident_response", "runs the runbooks and preserves evidence", "makes authority and disclosure decisions"),
];

/// The three NA key custody models (`operations.md` §1.5).
pub(crate) const CUSTODY_MODELS: [&str; 3] = ["customer-held", "managed", "split"];

/// `profile.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// `[sovereign]`.
    #[serde(default)]
    pub sovereign: Sovereign,
    /// `[custody]`.
    #[serde(default)]
    pub custody: Custody,
    /// `[[contacts]]`.
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// `[responsibility.AREA]`, one per area of [`AREAS`].
    #[serde(default)]
    pub responsibility: std::collections::BTreeMap<String, Responsibility>,
    /// `[scope]`.
    #[serde(default)]
    pub scope: Scope,
    /// `[waivers.*]`: risks the customer accepted for a limited time.
    #[serde(default)]
    pub waivers: Waivers,
}

/// `[waivers]`: each one turns a failing readiness check into a warning until it expires.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waivers {
    /// `[waivers.legacy_admin_signatures]`: the NA still accepts version-1 admin signatures (for
    /// upstream 0.16 operator CLIs), which can be replayed on other admin routes.
    pub legacy_admin_signatures: Option<Waiver>,
}

/// One accepted risk: why, who accepted it, when, and until when.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// Why the risk is accepted (e.g. which upstream 0.16 tooling still needs it).
    #[serde(default)]
    pub reason: String,
    /// Who accepted it on the customer side.
    #[serde(default)]
    pub accepted_by: String,
    /// When (YYYY-MM-DD or RFC 3339).
    #[serde(default)]
    pub accepted_at: String,
    /// When it lapses (YYYY-MM-DD, the end of that day UTC, or RFC 3339).
    #[serde(default)]
    pub expires_at: String,
}

impl Waiver {
    /// Why this waiver does not count at `now` (a field not filled in, an expiry that is not a date
    /// or has passed), or its expiry when it is in force.
    pub(crate) fn in_force(&self, now: chrono::DateTime<chrono::Utc>) -> Result<chrono::DateTime<chrono::Utc>, String> {
        for (field, value) in
            [("reason", &self.reason), ("accepted_by", &self.accepted_by), ("accepted_at", &self.accepted_at)]
        {
            if value.trim().is_empty() || value.contains("FILL IN") {
                return Err(format!("{field} is not filled in"));
            }
        }
        let text = self.expires_at.trim();
        let expires = chrono::DateTime::parse_from_rfc3339(text).map(|t| t.to_utc()).or_else(|_| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.succ_opt())
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
                .ok_or_else(|| format!("expires_at {text:?} is not a date (YYYY-MM-DD or RFC 3339)"))
        })?;
        if expires <= now {
            return Err(format!("expired at {}", expires.to_rfc3339()));
        }
        Ok(expires)
    }
}

/// `[sovereign]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sovereign {
    /// The customer's sovereign name (the genesis network name).
    #[serde(default)]
    pub name: String,
    /// The policy intent, in the customer's words.
    #[serde(default)]
    pub policy_intent: String,
}

/// `[custody]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Custody {
    /// `customer-held`, `managed` or `split`.
    #[serde(default)]
    pub model: String,
    /// Who holds the operator private keys (a team or person on the customer side).
    #[serde(default)]
    pub operator_keys_held_by: String,
    /// Who approved the model, and when (RFC 3339 or a date).
    #[serde(default)]
    pub approved_by: String,
    /// When.
    #[serde(default)]
    pub approved_at: String,
}

/// `[[contacts]]`: an incident-response contact.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Role (incident commander, customer security, …).
    #[serde(default)]
    pub role: String,
    /// How to reach them (phone, e-mail, pager).
    #[serde(default)]
    pub channel: String,
}

/// `[responsibility.AREA]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Responsibility {
    /// What the managed operator does.
    #[serde(default)]
    pub operator: String,
    /// What the customer does.
    #[serde(default)]
    pub customer: String,
    /// The operator-side owner (a person or team).
    #[serde(default)]
    pub operator_owner: String,
    /// The customer-side owner.
    #[serde(default)]
    pub customer_owner: String,
    /// Who accepted this line on the customer side.
    #[serde(default)]
    pub accepted_by: String,
    /// When.
    #[serde(default)]
    pub accepted_at: String,
}

/// `[scope]`: billing, multi-tenancy and active-active HA are not part of the pilot.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// The customer acknowledged the exclusions.
    #[serde(default)]
    pub out_of_scope_acknowledged: bool,
    /// By whom.
    #[serde(default)]
    pub acknowledged_by: String,
    /// When.
    #[serde(default)]
    pub acknowledged_at: String,
}

/// Which part of the profile a problem is in (the readiness check it fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Sovereign name and policy intent.
    Sovereign,
    /// Custody model.
    Custody,
    /// Incident contacts.
    Contacts,
    /// Responsibility matrix.
    Matrix,
    /// Out-of-scope acknowledgement.
    Scope,
}

/// A missing or wrong profile entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The part.
    pub part: Part,
    /// The TOML key.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl Profile {
    /// Parses `profile.toml` text.
    pub fn parse(text: &str) -> Result<Profile, String> {
        toml::from_str(text).map_err(|e| e.message().to_string())
    }

    /// Every missing or invalid entry; empty when the profile is complete.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut need = |part: Part, field: &str, value: &str| {
            if value.trim().is_empty() || value.contains("FILL IN") {
                out.push(Problem { part, field: field.to_string(), problem: "not filled in".to_string() });
            }
        };
        need(Part::Sovereign, "sovereign.name", &self.sovereign.name);
        need(Part::Sovereign, "sovereign.policy_intent", &self.sovereign.policy_intent);
        need(Part::Custody, "custody.operator_keys_held_by", &self.custody.operator_keys_held_by);
        need(Part::Custody, "custody.approved_by", &self.custody.approved_by);
        need(Part::Custody, "custody.approved_at", &self.custody.approved_at);
        for (i, c) in self.contacts.iter().enumerate() {
            need(Part::Contacts, &format!("contacts[{i}].name"), &c.name);
            need(Part::Contacts, &format!("contacts[{i}].role"), &c.role);
            need(Part::Contacts, &format!("contacts[{i}].channel"), &c.channel);
        }
        for (area, _, _) in AREAS {
            let r = self.responsibility.get(area).cloned().unwrap_or_default();
            for (key, value) in [
                ("operator", &r.operator),
                ("customer", &r.customer),
                ("operator_owner", &r.operator_owner),
                ("customer_owner", &r.customer_owner),
                ("accepted_by", &r.accepted_by),
                ("accepted_at", &r.accepted_at),
            ] {
                need(Part::Matrix, &format!("responsibility.{area}.{key}"), value);
            }
        }
        need(Part::Scope, "scope.acknowledged_by", &self.scope.acknowledged_by);
        need(Part::Scope, "scope.acknowledged_at", &self.scope.acknowledged_at);
        if !CUSTODY_MODELS.contains(&self.custody.model.as_str()) {
            out.push(Problem {
                part: Part::Custody,
                field: "custody.model".into(),
                problem: format!("{:?} is not one of customer-held, managed, split", self.custody.model),
            });
        }
        if self.contacts.is_empty() {
            out.push(Problem {
                part: Part::Contacts,
                field: "contacts".into(),
                problem: "no incident-response contact".into(),
            });
        }
        for area in self.responsibility.keys() {
            if !AREAS.iter().any(|(a, _, _)| a == area) {
                out.push(Problem {
                    part: Part::Matrix,
                    field: format!("responsibility.{area}"),
                    problem: "not an area of the matrix".into(),
                });
            }
        }
        if !self.scope.out_of_scope_acknowledged {
            out.push(Problem {
                part: Part::Scope,
                field: "scope.out_of_scope_acknowledged".into(),
                problem:
                    "billing, multi-tenancy and active-active HA are out of scope: the customer must acknowledge it"
                        .into(),
            });
        }
        out
    }
}

/// A profile template for `gm profile init`: the matrix prefilled with upstream's split, every
/// decision left as `FILL IN` so an unfilled profile fails its checks.
pub(crate) fn template(sovereign: &str, model: &str) -> String {
    let mut t = format!(
        "# Sovereign profile: the decisions the pilot-readiness report (`gm readiness`) cannot measure.\n\
         # Replace every FILL IN; `gm profile check` lists what is missing.\n\n\
         [sovereign]\nname = {sovereign:?}\npolicy_intent = \"FILL IN: the customer's policy intent, in their words\"\n\n\
         [custody]\n# customer-held | managed | split (split: the operator runs the NA, the customer controls the operator keys)\n\
         model = {model:?}\noperator_keys_held_by = \"FILL IN\"\napproved_by = \"FILL IN\"\napproved_at = \"FILL IN: YYYY-MM-DD\"\n\n\
         [[contacts]]\nname = \"FILL IN\"\nrole = \"incident commander\"\nchannel = \"FILL IN: phone / e-mail / pager\"\n\n\
         [scope]\n# Billing, multi-tenancy and active-active HA are not part of the pilot.\n\
         out_of_scope_acknowledged = false\nacknowledged_by = \"FILL IN\"\nacknowledged_at = \"FILL IN\"\n\n\
         # Only if the NA must keep accepting upstream 0.16 operator CLIs (version-1 admin signatures,\n\
         # which can be replayed on other admin routes): the readiness check admin_auth then warns\n\
         # instead of failing, until expires_at.\n\
         # [waivers.legacy_admin_signatures]\n# reason = \"FILL IN: which 0.16 tooling still needs it\"\n\
         # accepted_by = \"FILL IN\"\n# accepted_at = \"FILL IN: YYYY-MM-DD\"\n# expires_at = \"FILL IN: YYYY-MM-DD\"\n"
    );
    for (area, operator, customer) in AREAS {
        t.push_str(&format!(
            "\n[responsibility.{area}]\noperator = {operator:?}\ncustomer = {customer:?}\noperator_owner = \"FILL IN\"\ncustomer_owner = \"FILL IN\"\naccepted_by = \"FILL IN\"\naccepted_at = \"FILL IN\"\n"
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled() -> String {
        template("acme-mesh", "split")
            .replace("\"FILL IN: the customer's policy intent, in their words\"", "\"admit only acme devices\"")
            .replace("\"FILL IN: YYYY-MM-DD\"", "\"2026-11-20\"")
            .replace("\"FILL IN: phone / e-mail / pager\"", "\"+1 555 0100\"")
            .replace("out_of_scope_acknowledged = false", "out_of_scope_acknowledged = true")
            .replace("\"FILL IN\"", "\"Jane Doe\"")
    }

    #[test]
    fn a_fresh_template_parses_and_lists_every_decision_as_missing() {
        let p = Profile::parse(&template("acme-mesh", "split")).unwrap_or_default();
        let problems = p.problems();
        assert!(problems.iter().any(|x| x.field == "sovereign.policy_intent"));
        assert!(problems.iter().any(|x| x.field == "responsibility.incident_response.accepted_by"));
        assert!(problems.iter().any(|x| x.field == "scope.out_of_scope_acknowledged"));
        assert!(!problems.iter().any(|x| x.field == "custody.model"), "split is valid");
        assert_eq!(problems.iter().filter(|x| x.part == Part::Matrix).count(), 9 * 4);
    }

    #[test]
    fn a_filled_profile_has_no_problem_and_mistakes_are_named() {
        let p = Profile::parse(&filled()).unwrap_or_default();
        assert_eq!(p.problems(), []);
        let p = Profile::parse(&filled().replace("model = \"split\"", "model = \"shared\"")).unwrap_or_default();
        assert_eq!(p.problems().first().map(|x| x.field.as_str()), Some("custody.model"));
        assert!(Profile::parse(&filled().replace("[scope]", "[scope]\ncolour = 1")).is_err(), "unknown keys refused");
        let p = Profile::parse(&(filled() + "\n[responsibility.billing]\noperator = \"x\"\n")).unwrap_or_default();
        assert!(p.problems().iter().any(|x| x.field == "responsibility.billing"));
    }
}
