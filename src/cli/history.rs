//! `gm managed history`: the ops ledger's records.

use std::path::PathBuf;

use argh::FromArgs;

use crate::json::{Map, Value};
use crate::model::timestamp::parse_db_time;
use crate::ops::ledger::Ledger;

use super::backup::settings;
use super::error::Error;
use super::output::Output;

/// List the ops ledger (backups, verifications, restores, drills, exports).
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "history", example = "gm managed history --home /etc/gm --json")]
pub(crate) struct HistoryArgs {
    /// only this kind (backup, verify, restore, …)
    #[argh(option)]
    kind: Option<String>,
    /// how many entries (default 50)
    #[argh(option, default = "50")]
    limit: i64,
    /// gm home (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// print as JSON
    #[argh(switch)]
    json: bool,
}

/// Runs `gm managed history`.
pub(crate) fn run_history(args: HistoryArgs) -> Result<u8, Error> {
    let s = settings(args.home.as_deref(), None)?;
    let ledger = Ledger::beside(&s.db_path);
    let entries = ledger.list(args.kind.as_deref(), args.limit)?;
    let mut text = format!("{} entr(y/ies) in {}", entries.len(), ledger.path().display());
    let mut items = Vec::new();
    for e in &entries {
        // A scheduled run names its job (the artifact); times read as RFC 3339 UTC with Z.
        let what = match (e.kind.as_str(), e.artifact.as_deref()) {
            ("job", Some(job)) => format!("job {job}"),
            (kind, _) => kind.to_string(),
        };
        let when = parse_db_time(&e.finished_at)
            .map_or_else(|| e.finished_at.clone(), |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
        text.push_str(&format!("\n  {when}  {what:<20} {:<7} {:>6} ms  {}", e.outcome, e.duration_ms, e.message));
        items.push(Value::Object(Map::from_iter([
            ("artifact".to_string(), e.artifact.as_deref().map_or(Value::Null, Value::from)),
            ("duration_ms".to_string(), Value::from(e.duration_ms)),
            ("finished_at".to_string(), Value::from(e.finished_at.as_str())),
            ("id".to_string(), Value::from(e.id)),
            ("kind".to_string(), Value::from(e.kind.as_str())),
            ("message".to_string(), Value::from(e.message.as_str())),
            ("outcome".to_string(), Value::from(e.outcome.as_str())),
            ("sha256".to_string(), e.sha256.as_deref().map_or(Value::Null, Value::from)),
            ("started_at".to_string(), Value::from(e.started_at.as_str())),
        ])));
    }
    Output { json: args.json }
        .result(&text, &Value::Object(Map::from_iter([("entries".to_string(), Value::Array(items))])));
    Ok(0)
}
