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
        for (field, value, form) in
            [("accepted_by", &self.accepted_by, Form::Name), ("accepted_at", &self.accepted_at, Form::Date)]
        {
            if let Err(expected) = form.check(value) {
                return Err(format!("{field} {value:?} is not {expected}"));
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
    /// NA key rotation policy: days between planned rotations of the NA key (a new genesis NA
    /// block, `gm genesis create/sign`), 1 to 1825.
    #[serde(default)]
    pub rotation_interval_days: Option<u32>,
    /// NA key rotation policy: the runbook the rotation follows (a file path or URL).
    #[serde(default)]
    pub rotation_runbook: String,
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
    /// What is wrong (for a value of the wrong form: the expected form and what was found).
    pub problem: String,
    /// True when the entry is absent or not filled in; false when it is there in the wrong form.
    pub missing: bool,
}

impl Profile {
    /// Parses `profile.toml` text.
    pub fn parse(text: &str) -> Result<Profile, String> {
        toml::from_str(text).map_err(|e| e.message().to_string())
    }

    /// Every missing or invalid entry; empty when the profile is complete. Each value is checked
    /// by its type ([`Form`]): names, dates, contact channels, runbook references and enums; a
    /// problem names the field path and the expected form.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut need = |part: Part, field: &str, value: &str, form: Form| {
            if value.trim().is_empty() || value.contains("FILL IN") {
                out.push(Problem {
                    part,
                    field: field.to_string(),
                    problem: "not filled in".to_string(),
                    missing: true,
                });
            } else if let Err(expected) = form.check(value) {
                out.push(Problem {
                    part,
                    field: field.to_string(),
                    problem: format!("expected {expected}, found {value:?}"),
                    missing: false,
                });
            }
        };
        need(Part::Sovereign, "sovereign.name", &self.sovereign.name, Form::SovereignName);
        need(Part::Sovereign, "sovereign.policy_intent", &self.sovereign.policy_intent, Form::Text);
        need(Part::Custody, "custody.operator_keys_held_by", &self.custody.operator_keys_held_by, Form::Name);
        need(Part::Custody, "custody.approved_by", &self.custody.approved_by, Form::Name);
        need(Part::Custody, "custody.approved_at", &self.custody.approved_at, Form::Date);
        need(Part::Custody, "custody.rotation_runbook", &self.custody.rotation_runbook, Form::Runbook);
        for (i, c) in self.contacts.iter().enumerate() {
            need(Part::Contacts, &format!("contacts[{i}].name"), &c.name, Form::Name);
            need(Part::Contacts, &format!("contacts[{i}].role"), &c.role, Form::Name);
            need(Part::Contacts, &format!("contacts[{i}].channel"), &c.channel, Form::Channel);
        }
        for (area, _, _) in AREAS {
            let r = self.responsibility.get(area).cloned().unwrap_or_default();
            for (key, value, form) in [
                ("operator", &r.operator, Form::Text),
                ("customer", &r.customer, Form::Text),
                ("operator_owner", &r.operator_owner, Form::Name),
                ("customer_owner", &r.customer_owner, Form::Name),
                ("accepted_by", &r.accepted_by, Form::Name),
                ("accepted_at", &r.accepted_at, Form::Date),
            ] {
                need(Part::Matrix, &format!("responsibility.{area}.{key}"), value, form);
            }
        }
        need(Part::Scope, "scope.acknowledged_by", &self.scope.acknowledged_by, Form::Name);
        need(Part::Scope, "scope.acknowledged_at", &self.scope.acknowledged_at, Form::Date);
        if !CUSTODY_MODELS.contains(&self.custody.model.as_str()) {
            out.push(Problem {
                part: Part::Custody,
                field: "custody.model".into(),
                problem: format!("expected one of customer-held, managed, split, found {:?}", self.custody.model),
                missing: self.custody.model.trim().is_empty(),
            });
        }
        match self.custody.rotation_interval_days {
            None | Some(0) => out.push(Problem {
                part: Part::Custody,
                field: "custody.rotation_interval_days".into(),
                problem: "not filled in".into(),
                missing: true,
            }),
            Some(d) if d > MAX_ROTATION_DAYS => out.push(Problem {
                part: Part::Custody,
                field: "custody.rotation_interval_days".into(),
                problem: format!("expected a whole number of days from 1 to {MAX_ROTATION_DAYS}, found {d}"),
                missing: false,
            }),
            Some(_) => {}
        }
        if self.contacts.is_empty() {
            out.push(Problem {
                part: Part::Contacts,
                field: "contacts".into(),
                problem: "no incident-response contact".into(),
                missing: true,
            });
        }
        for area in self.responsibility.keys() {
            if !AREAS.iter().any(|(a, _, _)| a == area) {
                out.push(Problem {
                    part: Part::Matrix,
                    field: format!("responsibility.{area}"),
                    problem: format!(
                        "expected one of the nine areas ({}), found {area:?}",
                        AREAS.iter().map(|(a, _, _)| *a).collect::<Vec<_>>().join(", ")
                    ),
                    missing: false,
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
                missing: true,
            });
        }
        out
    }
}

/// The longest NA key rotation interval the profile accepts (5 years).
pub(crate) const MAX_ROTATION_DAYS: u32 = 1825;

/// The form a profile value must have, checked by [`Form::check`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Form {
    /// The sovereign (genesis network) name.
    SovereignName,
    /// A person, team or role.
    Name,
    /// Free text in the customer's words (policy intent, duties).
    Text,
    /// A date: YYYY-MM-DD or RFC 3339, between 2000 and 2099.
    Date,
    /// How to reach someone: e-mail, phone or URL.
    Channel,
    /// Where a runbook lives: a file path or a URL.
    Runbook,
}

/// Values that fill a field without saying anything.
const PLACEHOLDERS: [&str; 14] =
    ["tbd", "tba", "n/a", "na", "none", "nobody", "unknown", "todo", "x", "xx", "xxx", "test", "?", "-"];

impl Form {
    /// `Err(the expected form)` when `value` does not have this form.
    pub(crate) fn check(self, value: &str) -> Result<(), &'static str> {
        let v = value.trim();
        let placeholder = PLACEHOLDERS.contains(&v.to_lowercase().as_str());
        let control = v.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
        let letters = v.chars().filter(|c| c.is_alphabetic()).count();
        let ok = !placeholder
            && !control
            && match self {
                Form::SovereignName => {
                    (3..=64).contains(&v.len())
                        && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
                        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
                        && letters >= 1
                }
                Form::Name => {
                    (2..=100).contains(&v.chars().count())
                        && letters >= 2
                        && !v.contains(['\n', '\t'])
                        && v.chars().all(|c| c.is_alphanumeric() || " .'-,&()/@+_".contains(c))
                }
                Form::Text => (5..=4000).contains(&v.chars().count()) && letters >= 3,
                Form::Date => date(v).is_some_and(|d| (2000..=2099).contains(&chrono::Datelike::year(&d))),
                Form::Channel => v.split([',', ';']).all(|part| channel(part.trim())),
                Form::Runbook => runbook(v),
            };
        if ok {
            return Ok(());
        }
        Err(match self {
            Form::SovereignName => {
                "a network name of 3 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (the genesis network name)"
            }
            Form::Name => "a person, team or role of 2 to 100 characters (letters, digits, spaces and . ' - , & ( ) / @ + _)",
            Form::Text => "a sentence in the customer's words (at least 5 characters)",
            Form::Date => "a date, YYYY-MM-DD or RFC 3339 (e.g. 2026-11-20), between 2000 and 2099",
            Form::Channel => {
                "an e-mail address, a phone number (e.g. +1 555 0100) or a URL (https://…, mailto:…, tel:…), several separated by ','"
            }
            Form::Runbook => "a runbook file path (e.g. runbooks/na-key-rotation.md) or URL (https://…)",
        })
    }
}

/// A date as YYYY-MM-DD or RFC 3339.
fn date(v: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .or_else(|| chrono::DateTime::parse_from_rfc3339(v).ok().map(|t| t.date_naive()))
}

/// An e-mail address, a phone number or a URL.
fn channel(v: &str) -> bool {
    let email = v.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && !v.contains(char::is_whitespace)
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && v.matches('@').count() == 1
    });
    let digits = v.chars().filter(char::is_ascii_digit).count();
    let phone = (7..=20).contains(&digits)
        && v.trim_start_matches('+').chars().all(|c| c.is_ascii_digit() || " -().".contains(c));
    email
        || phone
        || url(v)
        || v.strip_prefix("mailto:").is_some_and(channel)
        || v.strip_prefix("tel:").is_some_and(channel)
}

/// An http(s) URL with a host.
fn url(v: &str) -> bool {
    let rest = v.strip_prefix("https://").or_else(|| v.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        host.len() >= 3 && host.contains('.') || host.starts_with("localhost")
    }) && !v.contains(char::is_whitespace)
}

/// A runbook reference: an http(s) URL, or a file path naming a document.
fn runbook(v: &str) -> bool {
    let file = !v.contains(['\n', '\t'])
        && [".md", ".txt", ".pdf", ".html", ".adoc", ".rst"].iter().any(|x| v.to_lowercase().ends_with(x))
        && v.len() > 4;
    url(v) || file
}

/// The responsibility matrix as JSON, one object per area of [`AREAS`] in their order (an area
/// not written down has empty fields): what `gm profile show --json` prints and what the
/// readiness report's `responsibility_matrix_sha256` digests (as canonical JSON).
pub(crate) fn matrix_value(p: &Profile) -> crate::json::Value {
    use crate::json::{Map, Value};
    Value::Array(
        AREAS
            .iter()
            .map(|(area, _, _)| {
                let r = p.responsibility.get(*area).cloned().unwrap_or_default();
                let mut m = Map::new();
                m.insert("area", *area);
                m.insert("operator", r.operator.as_str());
                m.insert("customer", r.customer.as_str());
                m.insert("operator_owner", r.operator_owner.as_str());
                m.insert("customer_owner", r.customer_owner.as_str());
                m.insert("accepted_by", r.accepted_by.as_str());
                m.insert("accepted_at", r.accepted_at.as_str());
                Value::Object(m)
            })
            .collect(),
    )
}

/// A profile template for `gm profile init`: the matrix prefilled with upstream's split, every
/// decision left as `FILL IN` so an unfilled profile fails its checks.
pub(crate) fn template(sovereign: &str, model: &str) -> String {
    let mut t = format!(
        "# Sovereign profile: the decisions the pilot-readiness report (`gm readiness`) cannot measure.\n\
         # Replace every FILL IN; `gm profile check` lists what is missing.\n\n\
         [sovereign]\nname = {sovereign:?}\npolicy_intent = \"FILL IN: the customer's policy intent, in their words\"\n\n\
         [custody]\n# customer-held | managed | split (split: the operator runs the NA, the customer controls the operator keys)\n\
         model = {model:?}\noperator_keys_held_by = \"FILL IN\"\napproved_by = \"FILL IN\"\napproved_at = \"FILL IN: YYYY-MM-DD\"\n\
         # NA key rotation policy: days between planned NA key rotations (1 to {MAX_ROTATION_DAYS}; 0 = not decided),\n\
         # and the runbook the rotation follows (a file path or an https:// URL).\n\
         rotation_interval_days = 0\nrotation_runbook = \"FILL IN: runbook path or URL\"\n\n\
         [[contacts]]\nname = \"FILL IN\"\nrole = \"incident commander\"\nchannel = \"FILL IN: phone / e-mail / pager\"\n\n\
         [scope]\n# Billing, multi-tenancy and active-active HA are not part of the pilot.\n\
         out_of_scope_acknowledged = false\nacknowledged_by = \"FILL IN\"\nacknowledged_at = \"FILL IN: YYYY-MM-DD\"\n\n\
         # Only if the NA must keep accepting upstream 0.16 operator CLIs (version-1 admin signatures,\n\
         # which can be replayed on other admin routes): the readiness check admin_auth then warns\n\
         # instead of failing, until expires_at.\n\
         # [waivers.legacy_admin_signatures]\n# reason = \"FILL IN: which 0.16 tooling still needs it\"\n\
         # accepted_by = \"FILL IN\"\n# accepted_at = \"FILL IN: YYYY-MM-DD\"\n# expires_at = \"FILL IN: YYYY-MM-DD\"\n"
    );
    for (area, operator, customer) in AREAS {
        t.push_str(&format!(
            "\n[responsibility.{area}]\noperator = {operator:?}\ncustomer = {customer:?}\noperator_owner = \"FILL IN\"\ncustomer_owner = \"FILL IN\"\naccepted_by = \"FILL IN\"\naccepted_at = \"FILL IN: YYYY-MM-DD\"\n"
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
            .replace("rotation_interval_days = 0", "rotation_interval_days = 365")
            .replace("\"FILL IN: runbook path or URL\"", "\"runbooks/na-key-rotation.md\"")
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
        for field in ["custody.rotation_interval_days", "custody.rotation_runbook"] {
            assert!(problems.iter().any(|x| x.field == field && x.missing), "{field}: {problems:?}");
        }
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

    /// Values of the wrong type are named with their field path and the expected form.
    #[test]
    fn each_field_is_validated_by_type_and_the_problem_names_path_and_form() {
        let problem = |from: &str, to: &str| -> Problem {
            let text = filled().replacen(from, to, 1);
            assert_ne!(text, filled(), "{from} is in the filled template");
            let p = Profile::parse(&text).unwrap_or_default();
            let mut problems = p.problems();
            assert_eq!(problems.len(), 1, "{to}: {problems:?}");
            problems.remove(0)
        };
        let x = problem("name = \"acme-mesh\"", "name = \"x\"");
        assert_eq!(x.field, "sovereign.name");
        assert!(!x.missing);
        assert!(x.problem.starts_with("expected a network name of 3 to 64"), "{}", x.problem);
        assert!(x.problem.ends_with("found \"x\""), "{}", x.problem);
        let x = problem("approved_at = \"2026-11-20\"", "approved_at = \"whenever\"");
        assert_eq!(x.field, "custody.approved_at");
        assert_eq!(
            x.problem,
            "expected a date, YYYY-MM-DD or RFC 3339 (e.g. 2026-11-20), between 2000 and 2099, found \"whenever\""
        );
        for absurd in ["1970-01-01", "2026-13-01", "3026-01-01", "26-11-20"] {
            let x = problem("approved_at = \"2026-11-20\"", &format!("approved_at = \"{absurd}\""));
            assert_eq!(x.field, "custody.approved_at", "{absurd}");
        }
        assert!(Form::Date.check("2026-11-20T10:00:00Z").is_ok());
        let x = problem("approved_by = \"Jane Doe\"", "approved_by = \"x\"");
        assert_eq!(x.field, "custody.approved_by");
        let x = problem("approved_by = \"Jane Doe\"", "approved_by = \"TBD\"");
        assert_eq!(x.field, "custody.approved_by");
        let x = problem("channel = \"+1 555 0100\"", "channel = \"call me\"");
        assert_eq!(x.field, "contacts[0].channel");
        assert!(x.problem.contains("an e-mail address, a phone number"), "{}", x.problem);
        for good in [
            "ops@acme.example",
            "https://pager.acme.example/ops",
            "+44 20 7946 0958, soc@acme.example",
            "tel:+15550100",
        ] {
            assert!(Form::Channel.check(good).is_ok(), "{good}");
        }
        for bad in ["ops@", "555", "pager", "mailto:nobody"] {
            assert!(Form::Channel.check(bad).is_err(), "{bad}");
        }
        let x = problem("rotation_interval_days = 365", "rotation_interval_days = 9999");
        assert_eq!(x.field, "custody.rotation_interval_days");
        assert!(x.problem.contains("from 1 to 1825"), "{}", x.problem);
        let x = problem("rotation_runbook = \"runbooks/na-key-rotation.md\"", "rotation_runbook = \"ask Bob\"");
        assert_eq!(x.field, "custody.rotation_runbook");
        assert!(Form::Runbook.check("https://wiki.acme.example/na-key-rotation").is_ok());
        let x = problem("\naccepted_at = \"2026-11-20\"", "\naccepted_at = \"soon\"");
        assert_eq!(x.field, "responsibility.hosting.accepted_at");
        assert!(Profile::parse(
            &filled().replace("rotation_interval_days = 365", "rotation_interval_days = \"yearly\"")
        )
        .is_err_and(|e| e.contains("invalid type")));
    }
}
