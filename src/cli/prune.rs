//! `gm managed prune`: retention of encrypted backups in a folder (`operations.md` §2.7). The rules
//! and their restic/borg semantics are in `ops::prune`; this file turns flags into [`Rules`], reads
//! the ops ledger (beside the configured NA database, as `gm managed backup` writes it) for the
//! backups that verified or passed a drill, prints the plan, deletes, and records the prune.
//!
//! A dry run reads the ledger (without creating it) and the folder, and writes nothing at all.

use std::path::{Path, PathBuf};
use std::time::Instant;

use argh::FromArgs;

use crate::clock::{Clock, SystemClock};
use crate::json::{Map, Value};
use crate::model::timestamp::isoformat_utc;
use crate::ops::ledger::{artifact, Ledger, LedgerKind, Outcome, Record, Span};
use crate::ops::prune::folder::{self, Deleted, Folder, Ignored, IgnoredKind};
use crate::ops::prune::{plan, BackupFile, Plan, Protected, Rules};
use crate::ops::OpsError;

use std::collections::BTreeMap;

use crate::ops::prune::bucket;

use super::backup::settings;
use super::destinations::Location;
use super::error::Error;
use super::output::{notice, Output};

/// Delete old encrypted backups from a folder by keep rules, never the newest verified or drilled one.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "prune",
    example = "gm managed prune --home /etc/gm --dir /var/backups/gm --keep-daily 14 --keep-weekly 8 --dry-run\ngm managed prune --home /etc/gm --dir /var/backups/gm --keep-last 3 --keep-daily 14 --keep-weekly 8\ngm managed prune --home /etc/gm --dir /var/backups/gm --keep-last 10 --json",
    note = "Only gm-<network>-<UTC YYYYMMDDTHHMMSSZ>.tar.gz.age regular files whose signature (<file>.sig) verifies with the pinned backup-signing key and agrees with the name are candidates; their time is the signed created_at, never the mtime. A backup-named file that fails those checks is listed as unverified, never counted and never deleted; a deleted backup's .sig goes with it. Other files, .tmp files, folders and symlinks are left alone. With --dir s3://bucket/prefix the same rules apply to the objects directly under the prefix (their signature objects checked, their bytes checked when read), and an object under S3 Object Lock retention is never sent a delete: it is listed as locked. Rules apply per network and are a union (restic/borg semantics, UTC days, ISO weeks); the newest backup that passed gm managed verify and the newest that passed gm managed restore-drill (from the ops ledger) are always kept. At least one rule above 0 is required. Exit status: 0 done (or dry run), 2 could not run or a deletion failed (the other deletions still happened)."
)]
pub(crate) struct PruneArgs {
    /// the backup folder, or s3://bucket/prefix
    #[argh(option)]
    dir: PathBuf,
    /// keep the newest N backups (default 0)
    #[argh(option, default = "0")]
    keep_last: u32,
    /// keep the newest backup of each of the last D UTC days that have backups (default 0)
    #[argh(option, default = "0")]
    keep_daily: u32,
    /// keep the newest backup of each of the last W ISO weeks that have backups (default 0)
    #[argh(option, default = "0")]
    keep_weekly: u32,
    /// print the plan (keep or delete, and why) and delete nothing
    #[argh(switch)]
    dry_run: bool,
    /// gm home, for the ops ledger and [backup] (default $GM_HOME, else /etc/gm)
    #[argh(option)]
    home: Option<PathBuf>,
    /// pinned backup-signing public key, base64 or .pub file (default: [backup] signing_public_key, else the public half of [backup] signing_key)
    #[argh(option)]
    signing_public_key: Option<String>,
    /// print the result as JSON
    #[argh(switch)]
    json: bool,
}

/// Runs `gm managed prune`.
pub(crate) fn run(args: PruneArgs) -> Result<u8, Error> {
    let rules = Rules { keep_last: args.keep_last, keep_daily: args.keep_daily, keep_weekly: args.keep_weekly };
    if rules.keeps_nothing() {
        return Err(Error::usage(
            "no keep rule: prune would delete every backup the ops ledger does not protect",
            "give at least one of --keep-last N, --keep-daily D or --keep-weekly W above 0, e.g. --keep-daily 14 --keep-weekly 8",
        ));
    }
    let s = settings(args.home.as_deref(), None)?;
    let pinned = super::backup_signing::pinned(args.home.as_deref(), args.signing_public_key.as_deref())?;
    let ledger = Ledger::beside(&s.db_path);
    let (started, took) = (SystemClock.now(), Instant::now());
    let location = Location::parse(&args.dir)?;
    let remote = match &location {
        Location::Local(_) => None,
        Location::S3(url) => Some((super::destinations::target_for_url(url, args.home.as_deref())?, url.clone())),
    };
    let (found, protected) = match &remote {
        None => {
            let found = trusted_backups(&args.dir, &pinned)?;
            let protected = protected(&ledger, &args.dir, &found.backups)?;
            (found, protected)
        }
        Some((t, url)) => {
            let found = bucket::scan(&t.remote, url, &pinned).map_err(OpsError::from)?;
            warn_unverified(&found, &args.dir);
            let passed = |kind| -> Result<Vec<String>, Error> {
                if ledger.exists().map_err(Error::io("inspect", ledger.path()))? {
                    Ok(ledger.passed_artifacts(kind)?)
                } else {
                    Ok(Vec::new())
                }
            };
            let protected = Protected {
                verified: bucket::named_by_artifacts(url, &found.backups, &passed(LedgerKind::Verify)?),
                drilled: bucket::named_by_artifacts(url, &found.backups, &passed(LedgerKind::Drill)?),
            };
            (found, protected)
        }
    };
    if protected.verified.is_empty() && !found.backups.is_empty() {
        notice(&format!(
            "warning: no backup in {} has a passed verification in the ops ledger {}; run gm managed verify --home … regularly",
            args.dir.display(),
            ledger.path().display()
        ));
    }
    let plan = plan(&found.backups, &protected, &rules);
    let planned: Vec<&str> = plan.to_delete().map(|b| b.name.as_str()).collect();
    // Objects under Object Lock retention are never sent a delete: reported as locked.
    let locked = match &remote {
        Some((t, url)) => bucket::locked(&t.remote, url, &planned, started),
        None => BTreeMap::new(),
    };
    let report = Report { dir: &args.dir, rules, plan: &plan, found: &found, deleted: None, locked: &locked };
    if args.dry_run {
        Output { json: args.json }.result(&report.text(), &report.value());
        return Ok(0);
    }
    let names: Vec<&str> = planned.iter().copied().filter(|n| !locked.contains_key(*n)).collect();
    let deleted = match &remote {
        None => folder::delete(&args.dir, &names),
        Some((t, url)) => bucket::delete(&t.remote, url, &names),
    };
    let report = Report { deleted: Some(&deleted), ..report };
    let failed = deleted.failures();
    Ledger::beside(&s.db_path).record_logged(
        &Record {
            kind: LedgerKind::Prune,
            outcome: Outcome::of(failed == 0),
            artifact: artifact(&args.dir),
            sha256: None,
            size: None,
            message: report.counts(),
            details: report.ledger_details(),
        },
        Span::ended_now(started, took),
    );
    Output { json: args.json }.result(&report.text(), &report.value());
    if failed > 0 {
        return Err(OpsError::PruneIncomplete { dir: args.dir.clone(), failed, planned: names.len() }.into());
    }
    Ok(0)
}

/// The backups the ops ledger vouches for: artifacts of `verify` and `restore-drill` runs whose
/// outcome is `ok`, matched to the folder's backups by `folder::named_by_artifacts`. A missing
/// ledger protects nothing and is not created; an unreadable one stops the prune (deleting without
/// knowing which backup is restore-tested is what §2.7 forbids).
/// The folder as prune sees it: the backups whose signature checks out (dated by the signed
/// time), and every rejected backup-named file moved to the entries left alone, with the reason
/// (F13: a planted far-future file must not push real backups out of the rules).
fn trusted_backups(dir: &Path, pinned: &crate::ops::backup_signature::TrustedKeys) -> Result<Folder, Error> {
    let cat = crate::ops::catalog::catalog(dir, pinned)?;
    let mut found = cat.other;
    found.backups = cat.backups.into_iter().map(|b| b.file).collect();
    for r in cat.rejected {
        found.ignored.push(Ignored { name: r.name, kind: IgnoredKind::Unverified, detail: Some(r.reason) });
    }
    found.ignored.sort_by(|a, b| a.name.cmp(&b.name));
    warn_unverified(&found, dir);
    Ok(found)
}

fn warn_unverified(found: &Folder, dir: &Path) {
    if found.ignored.iter().any(|i| i.kind == IgnoredKind::Unverified) {
        notice(&format!(
            "warning: {} holds backup-named files whose signature does not check out: left alone and never counted (listed below)",
            dir.display()
        ));
    }
}

fn protected(ledger: &Ledger, dir: &Path, backups: &[BackupFile]) -> Result<Protected, Error> {
    if !ledger.exists().map_err(Error::io("inspect", ledger.path()))? {
        return Ok(Protected::default());
    }
    Ok(Protected {
        verified: folder::named_by_artifacts(dir, backups, &ledger.passed_artifacts(LedgerKind::Verify)?),
        drilled: folder::named_by_artifacts(dir, backups, &ledger.passed_artifacts(LedgerKind::Drill)?),
    })
}

/// A plan, and after a real run what the deletions did, rendered for people, `--json` and the ledger.
struct Report<'a> {
    dir: &'a Path,
    rules: Rules,
    plan: &'a Plan,
    found: &'a Folder,
    deleted: Option<&'a Deleted>,
    /// Backups the plan drops that are under Object Lock retention, with its end: never deleted.
    locked: &'a BTreeMap<String, String>,
}

impl Report<'_> {
    /// The deletion error for `name`, when a real run tried and failed.
    fn error(&self, name: &str) -> Option<String> {
        let deleted = self.deleted?;
        let deletion = deleted.deletions.iter().find(|d| d.name == name)?;
        deletion.result.as_ref().err().map(ToString::to_string)
    }

    fn names(&self, keep: bool) -> impl Iterator<Item = &str> {
        self.plan.decisions.iter().filter(move |d| d.is_kept() == keep).map(|d| d.backup.name.as_str())
    }

    fn failed(&self) -> usize {
        self.deleted.map_or(0, Deleted::failures)
    }

    fn deleted_count(&self) -> usize {
        self.deleted.map_or(0, |d| d.deletions.iter().filter(|x| x.result.is_ok()).count())
    }

    fn rules_text(&self) -> String {
        let r = self.rules;
        format!("keep-last {}, keep-daily {}, keep-weekly {}", r.keep_last, r.keep_daily, r.keep_weekly)
    }

    fn counts(&self) -> String {
        let planned = self.plan.decisions.len().saturating_sub(self.plan.kept());
        match self.deleted {
            None => format!(
                "dry run in {}: would keep {}, would delete {planned}, left alone {}; nothing deleted",
                self.dir.display(),
                self.plan.kept(),
                self.found.ignored.len()
            ),
            Some(_) => format!(
                "pruned {}: kept {}, deleted {}, failed {}, left alone {}",
                self.dir.display(),
                self.plan.kept(),
                self.deleted_count(),
                self.failed(),
                self.found.ignored.len()
            ),
        }
    }

    fn text(&self) -> String {
        let mut text = format!("{}\n  rules: {}", self.counts(), self.rules_text());
        let width = self.plan.decisions.iter().map(|d| d.backup.name.len()).max().unwrap_or(0);
        for d in &self.plan.decisions {
            let name = &d.backup.name;
            let (action, why) = if d.is_kept() {
                ("keep", d.reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
            } else if let Some(until) = self.locked.get(name) {
                ("locked", format!("no rule keeps it, but Object Lock retains it until {until}: not deleted"))
            } else if let Some(e) = self.error(name) {
                ("FAILED", e)
            } else {
                (if self.deleted.is_some() { "deleted" } else { "delete" }, "no rule keeps it".to_string())
            };
            text.push_str(&format!("\n  {action:<8}{name:<width$}  {why}"));
        }
        for i in &self.found.ignored {
            let detail = i.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
            text.push_str(&format!("\n  {:<8}{:<width$}  {}{detail}", "leave", i.name, i.kind.label()));
        }
        if let Some(Err(e)) = self.deleted.map(|d| &d.sync) {
            text.push_str(&format!("\n  FAILED  {e}"));
        }
        text
    }

    fn value(&self) -> Value {
        let backups: Vec<Value> = self
            .plan
            .decisions
            .iter()
            .map(|d| {
                let reasons = d.reasons.iter().map(|r| Value::from(r.to_string())).collect::<Vec<_>>();
                let mut m = Map::new();
                let action = match (d.is_kept(), self.locked.get(&d.backup.name)) {
                    (true, _) => "keep",
                    (false, Some(_)) => "locked",
                    (false, None) => "delete",
                };
                m.insert("action", Value::from(action));
                m.insert(
                    "locked_until",
                    self.locked.get(&d.backup.name).map_or(Value::Null, |u| Value::from(u.as_str())),
                );
                m.insert("error", self.error(&d.backup.name).map_or(Value::Null, Value::from));
                m.insert("name", Value::from(d.backup.name.as_str()));
                m.insert("network", Value::from(d.backup.network.as_str()));
                m.insert("reasons", Value::Array(reasons));
                m.insert("taken_at", Value::from(isoformat_utc(d.backup.taken_at)));
                Value::Object(m)
            })
            .collect();
        let ignored: Vec<Value> = self
            .found
            .ignored
            .iter()
            .map(|i| {
                let mut m = Map::from_iter([
                    ("name".to_string(), Value::from(i.name.as_str())),
                    ("reason".to_string(), Value::from(i.kind.label())),
                ]);
                if let Some(d) = &i.detail {
                    m.insert("detail", Value::from(d.as_str()));
                }
                Value::Object(m)
            })
            .collect();
        let mut m = Map::new();
        m.insert("backups", Value::Array(backups));
        m.insert("deleted", Value::from(self.deleted_count()));
        m.insert("dir", Value::from(self.dir.display().to_string()));
        m.insert("dry_run", Value::Bool(self.deleted.is_none()));
        m.insert("failed", Value::from(self.failed()));
        m.insert("ignored", Value::Array(ignored));
        m.insert("kept", Value::from(self.plan.kept()));
        m.insert("locked", Value::from(self.locked.len()));
        m.insert("rules", self.rules_value());
        let sync_error = self.deleted.and_then(|d| d.sync.as_ref().err()).map(ToString::to_string);
        m.insert("sync_error", sync_error.map_or(Value::Null, Value::from));
        m.insert("to_delete", Value::from(self.plan.decisions.len().saturating_sub(self.plan.kept())));
        Value::Object(m)
    }

    fn rules_value(&self) -> Value {
        Value::Object(Map::from_iter([
            ("keep_daily".to_string(), Value::from(u64::from(self.rules.keep_daily))),
            ("keep_last".to_string(), Value::from(u64::from(self.rules.keep_last))),
            ("keep_weekly".to_string(), Value::from(u64::from(self.rules.keep_weekly))),
        ]))
    }

    /// The ledger's details: the lists, by name.
    fn ledger_details(&self) -> Value {
        let names = |it: Vec<&str>| Value::Array(it.into_iter().map(Value::from).collect());
        let deleted: Vec<&str> = self
            .deleted
            .map(|d| d.deletions.iter().filter(|x| x.result.is_ok()).map(|x| x.name.as_str()).collect())
            .unwrap_or_default();
        let failed: Vec<Value> = self
            .deleted
            .map(|d| {
                d.deletions
                    .iter()
                    .filter_map(|x| x.result.as_ref().err().map(|e| (x.name.as_str(), e.to_string())))
                    .map(|(name, e)| {
                        Value::Object(Map::from_iter([
                            ("error".to_string(), Value::from(e)),
                            ("name".to_string(), Value::from(name)),
                        ]))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut m = Map::new();
        m.insert("deleted", names(deleted));
        m.insert("dir", Value::from(self.dir.display().to_string()));
        m.insert("failed", Value::Array(failed));
        m.insert("ignored", names(self.found.ignored.iter().map(|i| i.name.as_str()).collect()));
        m.insert("kept", names(self.names(true).collect()));
        m.insert("locked", names(self.locked.keys().map(String::as_str).collect()));
        m.insert("rules", self.rules_value());
        let sync_error = self.deleted.and_then(|d| d.sync.as_ref().err()).map(ToString::to_string);
        m.insert("sync_error", sync_error.map_or(Value::Null, Value::from));
        Value::Object(m)
    }
}
