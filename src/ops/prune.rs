//! Retention of encrypted backups (`gm managed prune`, `operations.md` §2.7): which backups in a
//! folder to keep and which to delete. This file is pure: given the backups (name and time), the
//! ones the ops ledger protects and the keep rules, [`plan`] decides. Reading the folder, matching
//! ledger artifacts and deleting live in [`folder`].
//!
//! The rules are restic's and borg's. Backups are grouped by network (a folder may hold several
//! sovereigns' backups) and ordered newest first; each rule keeps a backup when it is the newest of
//! a bucket not seen yet, until the rule has kept its count: `keep_last` has one bucket per backup,
//! `keep_daily` one per UTC calendar day, `keep_weekly` one per ISO 8601 week (UTC). Days and weeks
//! without backups use up nothing, so `keep_daily 7` keeps one backup for each of the last seven days
//! that *have* backups. A backup is kept when any rule keeps it (the union). The plan depends on no
//! clock: it is the same whenever it runs, which is what lets a dry run predict the real run.
//!
//! Two backups per network are kept whatever the rules say, because upstream requires at least one
//! restore-tested backup (§2.7): the newest one whose `gm managed verify` passed and the newest one
//! a `gm managed restore-drill` passed. Times come from the file name, which `gm managed backup`
//! writes from the snapshot time, never from the file's mtime (a copy or restore from off-site
//! storage changes mtimes, not names).

pub(crate) mod bucket;
pub mod folder;

use std::collections::BTreeSet;
use std::fmt;

use chrono::{Datelike, IsoWeek, NaiveDate};

pub use super::backup_name::{BackupFile, BACKUP_PREFIX, BACKUP_SUFFIX};

/// The keep rules. A count of 0 means the rule keeps nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Rules {
    /// Keep the newest N backups.
    pub keep_last: u32,
    /// Keep the newest backup of each of the last D UTC days that have backups.
    pub keep_daily: u32,
    /// Keep the newest backup of each of the last W ISO weeks (UTC) that have backups.
    pub keep_weekly: u32,
}

impl Rules {
    /// True when no rule keeps anything (everything unprotected would go): callers refuse this.
    pub(crate) fn keeps_nothing(&self) -> bool {
        self.keep_last == 0 && self.keep_daily == 0 && self.keep_weekly == 0
    }
}

/// The backups the ops ledger vouches for, by file name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Protected {
    /// Backups with a passed `gm managed verify`.
    pub verified: BTreeSet<String>,
    /// Backups with a passed `gm managed restore-drill`.
    pub drilled: BTreeSet<String>,
}

/// Why a backup is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeepReason {
    /// Among the newest `keep_last`; the rank starts at 1 for the newest.
    Last(u32),
    /// The newest of its UTC day.
    Daily(NaiveDate),
    /// The newest of its ISO week.
    Weekly(IsoWeek),
    /// The newest backup of its network whose verification passed.
    NewestVerified,
    /// The newest backup of its network that passed a restore drill.
    NewestDrilled,
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepReason::Last(rank) => write!(f, "last {rank}"),
            KeepReason::Daily(day) => write!(f, "daily {}", day.format("%Y-%m-%d")),
            KeepReason::Weekly(week) => write!(f, "weekly {}-W{:02}", week.year(), week.week()),
            KeepReason::NewestVerified => f.write_str("newest verified"),
            KeepReason::NewestDrilled => f.write_str("newest drilled"),
        }
    }
}

/// What happens to one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The backup.
    pub backup: BackupFile,
    /// Why it is kept; empty means it is deleted.
    pub reasons: Vec<KeepReason>,
}

impl Decision {
    /// True when some rule or protection keeps it.
    pub(crate) fn is_kept(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// The decision for every backup: networks in name order, newest backup first within each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// One decision per backup.
    pub decisions: Vec<Decision>,
}

impl Plan {
    /// The backups to delete.
    pub(crate) fn to_delete(&self) -> impl Iterator<Item = &BackupFile> {
        self.decisions.iter().filter(|d| !d.is_kept()).map(|d| &d.backup)
    }

    /// How many backups are kept.
    pub(crate) fn kept(&self) -> usize {
        self.decisions.iter().filter(|d| d.is_kept()).count()
    }
}

/// Decides, for each backup, whether it is kept and why.
pub(crate) fn plan(backups: &[BackupFile], protected: &Protected, rules: &Rules) -> Plan {
    let mut sorted: Vec<&BackupFile> = backups.iter().collect();
    // Network ascending, then newest first; the name breaks exact ties so the plan is deterministic.
    sorted
        .sort_by(|a, b| a.network.cmp(&b.network).then(b.taken_at.cmp(&a.taken_at)).then_with(|| b.name.cmp(&a.name)));
    let mut decisions = Vec::with_capacity(sorted.len());
    for group in sorted.chunk_by(|a, b| a.network == b.network) {
        decisions.extend(plan_network(group, protected, rules));
    }
    Plan { decisions }
}

/// One network's backups, already newest first.
fn plan_network(newest_first: &[&BackupFile], protected: &Protected, rules: &Rules) -> Vec<Decision> {
    let mut last = Bucket::new(rules.keep_last);
    let mut daily = Bucket::new(rules.keep_daily);
    let mut weekly = Bucket::new(rules.keep_weekly);
    let newest_verified = newest_first.iter().position(|b| protected.verified.contains(&b.name));
    let newest_drilled = newest_first.iter().position(|b| protected.drilled.contains(&b.name));
    newest_first
        .iter()
        .enumerate()
        .map(|(i, backup)| {
            let mut reasons = Vec::new();
            if last.admits(i) {
                reasons.push(KeepReason::Last(last.kept));
            }
            let day = backup.taken_at.date_naive();
            if daily.admits(day) {
                reasons.push(KeepReason::Daily(day));
            }
            let week = day.iso_week();
            if weekly.admits(week) {
                reasons.push(KeepReason::Weekly(week));
            }
            if newest_verified == Some(i) {
                reasons.push(KeepReason::NewestVerified);
            }
            if newest_drilled == Some(i) {
                reasons.push(KeepReason::NewestDrilled);
            }
            Decision { backup: (*backup).clone(), reasons }
        })
        .collect()
}

/// One rule's state while walking backups newest first: the bucket it saw last and how many it kept.
struct Bucket<K> {
    limit: u32,
    kept: u32,
    seen: Option<K>,
}

impl<K: PartialEq> Bucket<K> {
    fn new(limit: u32) -> Bucket<K> {
        Bucket { limit, kept: 0, seen: None }
    }

    /// True when `key` starts a new bucket and the rule still has room: the backup is the newest of
    /// that bucket (walking newest first) and the rule keeps it.
    fn admits(&mut self, key: K) -> bool {
        if self.kept >= self.limit || self.seen.as_ref() == Some(&key) {
            return false;
        }
        self.seen = Some(key);
        self.kept += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::backup_name::NAME_TIME_FORMAT;

    fn backup(network: &str, stamp: &str) -> BackupFile {
        BackupFile::parse(&format!("gm-{network}-{stamp}.tar.gz.age")).unwrap()
    }

    fn acme(stamps: &[&str]) -> Vec<BackupFile> {
        stamps.iter().map(|s| backup("acme", s)).collect()
    }

    fn rules(keep_last: u32, keep_daily: u32, keep_weekly: u32) -> Rules {
        Rules { keep_last, keep_daily, keep_weekly }
    }

    /// (stamp, reasons as text), newest first.
    fn summary(plan: &Plan) -> Vec<(String, String)> {
        plan.decisions
            .iter()
            .map(|d| {
                let stamp = d.backup.taken_at.format(NAME_TIME_FORMAT).to_string();
                let why: Vec<String> = d.reasons.iter().map(ToString::to_string).collect();
                (stamp, if why.is_empty() { "delete".to_string() } else { why.join(", ") })
            })
            .collect()
    }

    fn expect(plan: &Plan, expected: &[(&str, &str)]) {
        let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        assert_eq!(summary(plan), expected);
    }

    #[test]
    fn keep_last_keeps_the_newest_n() {
        let b = acme(&["20261101T000000Z", "20261103T000000Z", "20261102T000000Z", "20261104T000000Z"]);
        let p = plan(&b, &Protected::default(), &rules(2, 0, 0));
        expect(
            &p,
            &[
                ("20261104T000000Z", "last 1"),
                ("20261103T000000Z", "last 2"),
                ("20261102T000000Z", "delete"),
                ("20261101T000000Z", "delete"),
            ],
        );
        assert_eq!(p.kept(), 2);
        assert_eq!(p.to_delete().count(), 2);
    }

    #[test]
    fn keep_daily_keeps_the_newest_of_each_day_with_several_on_one_day() {
        let b = acme(&[
            "20261125T235959Z",
            "20261125T120000Z",
            "20261125T000000Z",
            "20261124T235959Z",
            "20261124T000000Z",
            "20261120T120000Z",
        ]);
        let p = plan(&b, &Protected::default(), &rules(0, 2, 0));
        expect(
            &p,
            &[
                ("20261125T235959Z", "daily 2026-11-25"),
                ("20261125T120000Z", "delete"),
                ("20261125T000000Z", "delete"),
                ("20261124T235959Z", "daily 2026-11-24"),
                ("20261124T000000Z", "delete"),
                ("20261120T120000Z", "delete"),
            ],
        );
    }

    #[test]
    fn days_without_backups_use_up_nothing() {
        // Three days with backups spread over a month: keep_daily 3 keeps all three.
        let b = acme(&["20261130T010000Z", "20261115T010000Z", "20261101T010000Z"]);
        let p = plan(&b, &Protected::default(), &rules(0, 3, 0));
        assert_eq!(p.kept(), 3);
    }

    #[test]
    fn day_boundary_is_utc_midnight() {
        // 23:59:59 and 00:00:00 one second later are different days.
        let b = acme(&["20261126T000000Z", "20261125T235959Z"]);
        let p = plan(&b, &Protected::default(), &rules(0, 2, 0));
        expect(&p, &[("20261126T000000Z", "daily 2026-11-26"), ("20261125T235959Z", "daily 2026-11-25")]);
    }

    #[test]
    fn week_boundary_is_monday_utc_and_iso_week_years_cross_new_year() {
        // 2026-11-29 is a Sunday (W48), 2026-11-30 a Monday (W49). 2027-01-01 is a Friday in
        // 2026-W53; 2026-12-28 is the Monday of that week; 2027-01-04 starts 2027-W01.
        let b = acme(&[
            "20270104T000000Z",
            "20270101T120000Z",
            "20261228T000000Z",
            "20261130T000000Z",
            "20261129T235959Z",
            "20261123T000000Z",
        ]);
        let p = plan(&b, &Protected::default(), &rules(0, 0, 5));
        expect(
            &p,
            &[
                ("20270104T000000Z", "weekly 2027-W01"),
                ("20270101T120000Z", "weekly 2026-W53"),
                ("20261228T000000Z", "delete"),
                ("20261130T000000Z", "weekly 2026-W49"),
                ("20261129T235959Z", "weekly 2026-W48"),
                ("20261123T000000Z", "delete"),
            ],
        );
    }

    #[test]
    fn rules_are_a_union_and_every_reason_is_listed() {
        let b = acme(&["20261125T120000Z", "20261125T060000Z", "20261124T060000Z", "20261117T060000Z"]);
        let p = plan(&b, &Protected::default(), &rules(2, 1, 2));
        expect(
            &p,
            &[
                ("20261125T120000Z", "last 1, daily 2026-11-25, weekly 2026-W48"),
                ("20261125T060000Z", "last 2"),
                ("20261124T060000Z", "delete"),
                ("20261117T060000Z", "weekly 2026-W47"),
            ],
        );
    }

    #[test]
    fn keep_last_zero_leaves_the_other_rules_in_charge() {
        let b = acme(&["20261125T120000Z", "20261125T060000Z"]);
        let p = plan(&b, &Protected::default(), &rules(0, 1, 0));
        expect(&p, &[("20261125T120000Z", "daily 2026-11-25"), ("20261125T060000Z", "delete")]);
    }

    #[test]
    fn no_rule_keeps_nothing_and_says_so() {
        assert!(rules(0, 0, 0).keeps_nothing());
        assert!(!rules(0, 0, 1).keeps_nothing());
        let b = acme(&["20261125T120000Z"]);
        assert_eq!(plan(&b, &Protected::default(), &rules(0, 0, 0)).kept(), 0);
    }

    #[test]
    fn newest_verified_is_kept_even_when_the_rules_would_delete_it() {
        let b = acme(&["20261125T120000Z", "20261124T120000Z", "20261123T120000Z", "20261122T120000Z"]);
        let protected = Protected {
            verified: ["gm-acme-20261123T120000Z.tar.gz.age", "gm-acme-20261122T120000Z.tar.gz.age"]
                .into_iter()
                .map(String::from)
                .collect(),
            drilled: BTreeSet::from(["gm-acme-20261122T120000Z.tar.gz.age".to_string()]),
        };
        let p = plan(&b, &protected, &rules(1, 0, 0));
        expect(
            &p,
            &[
                ("20261125T120000Z", "last 1"),
                ("20261124T120000Z", "delete"),
                ("20261123T120000Z", "newest verified"),
                ("20261122T120000Z", "newest drilled"),
            ],
        );
    }

    #[test]
    fn protection_adds_a_reason_to_a_backup_the_rules_keep_anyway() {
        let b = acme(&["20261125T120000Z", "20261124T120000Z"]);
        let verified = BTreeSet::from(["gm-acme-20261125T120000Z.tar.gz.age".to_string()]);
        let p = plan(&b, &Protected { verified: verified.clone(), drilled: verified }, &rules(1, 0, 0));
        expect(&p, &[("20261125T120000Z", "last 1, newest verified, newest drilled"), ("20261124T120000Z", "delete")]);
    }

    #[test]
    fn networks_are_planned_apart() {
        let mut b = acme(&["20261125T120000Z", "20261124T120000Z"]);
        b.push(backup("zeta", "20261101T000000Z"));
        b.push(backup("beta", "20261126T000000Z"));
        let protected = Protected {
            verified: BTreeSet::from(["gm-zeta-20261101T000000Z.tar.gz.age".to_string()]),
            drilled: BTreeSet::new(),
        };
        let p = plan(&b, &protected, &rules(1, 0, 0));
        let names: Vec<(&str, bool)> = p.decisions.iter().map(|d| (d.backup.name.as_str(), d.is_kept())).collect();
        assert_eq!(
            names,
            [
                ("gm-acme-20261125T120000Z.tar.gz.age", true),
                ("gm-acme-20261124T120000Z.tar.gz.age", false),
                ("gm-beta-20261126T000000Z.tar.gz.age", true),
                ("gm-zeta-20261101T000000Z.tar.gz.age", true),
            ]
        );
        assert_eq!(p.decisions[3].reasons, [KeepReason::Last(1), KeepReason::NewestVerified]);
    }

    #[test]
    fn the_plan_does_not_depend_on_input_order() {
        let mut b = acme(&["20261125T120000Z", "20261101T000000Z", "20261118T000000Z", "20261124T000000Z"]);
        let first = plan(&b, &Protected::default(), &rules(1, 2, 2));
        b.reverse();
        assert_eq!(plan(&b, &Protected::default(), &rules(1, 2, 2)), first);
    }

    #[test]
    fn an_empty_folder_plans_nothing() {
        assert!(plan(&[], &Protected::default(), &rules(3, 0, 0)).decisions.is_empty());
    }
}
