//! `gm profile init|show|check`: the sovereign profile (`profile.toml` in the gm home) that records
//! what the readiness report cannot measure (see `readiness::profile`).

use std::path::{Path, PathBuf};

use argh::FromArgs;

use crate::config::{self, Env};
use crate::json::{Map, Value};
use crate::readiness::profile::{matrix_value, template, Profile, AREAS, CUSTODY_MODELS};

use super::error::Error;
use super::output::{notice, Output};

/// The profile's file name in the gm home.
pub(crate) const PROFILE_FILE: &str = "profile.toml";

/// The sovereign profile: custody model, contacts, responsibility matrix, scope acknowledgement.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "profile")]
pub(crate) struct ProfileArgs {
    #[argh(subcommand)]
    action: ProfileAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum ProfileAction {
    Init(InitArgs),
    Show(ShowArgs),
    Check(CheckArgs),
}

/// Write a profile.toml template (every decision marked FILL IN).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "init")]
pub(crate) struct InitArgs {
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// sovereign name (default: the genesis network name)
    #[argh(option)]
    sovereign: Option<String>,
    /// NA key custody model: customer-held, managed or split (default split, the preferred pilot model)
    #[argh(option, default = "String::from(\"split\")")]
    custody_model: String,
    /// replace an existing profile.toml
    #[argh(switch)]
    force: bool,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}

/// Print the profile and what is missing.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "show")]
pub(crate) struct ShowArgs {
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// print JSON
    #[argh(switch)]
    json: bool,
}

/// Check that every decision is filled in.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check", note = "Exit status: 0 complete, 1 something is missing (listed), 2 could not run.")]
pub(crate) struct CheckArgs {
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// print JSON
    #[argh(switch)]
    json: bool,
}

/// Runs `gm profile …`.
pub(crate) fn run(args: ProfileArgs) -> Result<u8, Error> {
    match args.action {
        ProfileAction::Init(a) => init(a),
        ProfileAction::Show(a) => show(a.home.as_deref(), a.json, false),
        ProfileAction::Check(a) => show(a.home.as_deref(), a.json, true),
    }
}

fn home(flag: Option<&Path>) -> PathBuf {
    config::resolve_home(flag, &Env::from_process())
}

/// Reads and parses `profile.toml` in `home`.
pub fn load(home: &Path) -> Result<Profile, Error> {
    let path = home.join(PROFILE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::refused(
                format!("{} does not exist", path.display()),
                "create it with `gm profile init`, then fill it in",
            )
        } else {
            Error::Io { action: "read", path: path.clone(), source: e }
        }
    })?;
    Profile::parse(&text)
        .map_err(|e| Error::refused(format!("invalid {}: {e}", path.display()), "fix the key named above"))
}

fn init(args: InitArgs) -> Result<u8, Error> {
    if !CUSTODY_MODELS.contains(&args.custody_model.as_str()) {
        return Err(Error::usage(
            format!("unknown custody model {:?}", args.custody_model),
            "use customer-held, managed or split",
        ));
    }
    let home = home(args.home.as_deref());
    let path = home.join(PROFILE_FILE);
    if path.exists() && !args.force {
        return Err(Error::Exists { path });
    }
    let sovereign = match args.sovereign {
        Some(s) => s,
        None => {
            let file = config::load_file(&home)?;
            let s = config::serve_settings(&home, &file, &Env::from_process(), &config::ServeFlags::default())?;
            std::fs::read_to_string(&s.genesis_file)
                .ok()
                .and_then(|t| crate::json::parse_str(&t).ok())
                .and_then(|v| <crate::model::genesis::Genesis as crate::model::SignedObject>::from_value(&v).ok())
                .map(|g| g.network_name)
                .ok_or_else(|| {
                    Error::usage("cannot read the sovereign name from the genesis", "pass --sovereign NAME")
                })?
        }
    };
    let text = template(&sovereign, &args.custody_model);
    crate::files::atomic::write_atomic(&path, text.as_bytes(), crate::files::atomic::Mode::Private, true)
        .map_err(Error::io("write", &path))?;
    let mut m = Map::new();
    m.insert("custody_model", Value::from(args.custody_model.as_str()));
    m.insert("path", Value::from(path.display().to_string()));
    m.insert("sovereign", Value::from(sovereign.as_str()));
    Output { json: args.json }.result(&path.display().to_string(), &Value::Object(m));
    if !args.json {
        notice("replace every FILL IN (with the customer), then run `gm profile check`");
    }
    Ok(0)
}

fn show(home_flag: Option<&Path>, json: bool, check: bool) -> Result<u8, Error> {
    let home = home(home_flag);
    let profile = load(&home)?;
    let problems = profile.problems();
    let mut text = format!(
        "sovereign {} ({}), custody {}, {} contact(s), {} of 9 matrix areas",
        profile.sovereign.name,
        profile.sovereign.policy_intent,
        profile.custody.model,
        profile.contacts.len(),
        profile.responsibility.len()
    );
    if let Some(days) = profile.custody.rotation_interval_days.filter(|d| *d > 0) {
        text.push_str(&format!("\nNA key rotation every {days} days, runbook {}", profile.custody.rotation_runbook));
    }
    text.push_str(&matrix_table(&profile));
    if problems.is_empty() {
        text.push_str("\ncomplete");
    }
    for p in &problems {
        let what = if p.missing { "missing" } else { "invalid" };
        text.push_str(&format!("\n  {what} {}: {}", p.field, p.problem));
    }
    let mut m = Map::new();
    m.insert("complete", problems.is_empty());
    m.insert("custody_model", profile.custody.model.as_str());
    m.insert(
        "problems",
        Value::Array(
            problems
                .iter()
                .map(|p| {
                    let mut x = Map::new();
                    x.insert("field", p.field.as_str());
                    x.insert("missing", p.missing);
                    x.insert("problem", p.problem.as_str());
                    Value::Object(x)
                })
                .collect(),
        ),
    );
    m.insert("responsibility", matrix_value(&profile));
    let mut rotation = Map::new();
    rotation.insert(
        "interval_days",
        profile.custody.rotation_interval_days.map_or(Value::Null, |d| Value::from(i64::from(d))),
    );
    rotation.insert("runbook", profile.custody.rotation_runbook.as_str());
    m.insert("rotation", Value::Object(rotation));
    m.insert("sovereign", profile.sovereign.name.as_str());
    Output { json }.result(&text, &Value::Object(m));
    Ok(if check && !problems.is_empty() { 1 } else { 0 })
}

/// The responsibility matrix as a text table: area, operator-side and customer-side owners, who
/// accepted it and when (an area not written down shows `-`).
fn matrix_table(profile: &Profile) -> String {
    let cell = |v: &str| if v.trim().is_empty() { "-".to_string() } else { v.trim().to_string() };
    let mut rows = vec![[
        "area".to_string(),
        "operator owner".to_string(),
        "customer owner".to_string(),
        "accepted by".to_string(),
        "accepted at".to_string(),
    ]];
    for (area, _, _) in AREAS {
        let r = profile.responsibility.get(area).cloned().unwrap_or_default();
        rows.push([
            area.to_string(),
            cell(&r.operator_owner),
            cell(&r.customer_owner),
            cell(&r.accepted_by),
            cell(&r.accepted_at),
        ]);
    }
    let widths: Vec<usize> = (0..5).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::from("\nresponsibility matrix:");
    for r in &rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(&format!("\n  {}", line.join("  ").trim_end()));
    }
    out
}
