//! Schedules as operators write them in `gm.toml`: standard 5-field crontab lines (minute hour
//! day-of-month month day-of-week), 6-field lines with seconds first, and the `@hourly`, `@daily`,
//! `@weekly`, `@monthly`, `@yearly` macros, all in UTC.
//!
//! The `cron` crate follows Quartz, which differs from crontab in two ways that silently move jobs
//! to the wrong day, so lines are translated before parsing:
//! - day-of-week numbers: crontab has 0 or 7 = Sunday, 1 = Monday; Quartz has 1 = Sunday and rejects
//!   0. Numeric days are rewritten as names (`1-5` becomes `MON,TUE,WED,THU,FRI`).
//! - day-of-month *and* day-of-week both restricted: crontab fires when either matches, Quartz only
//!   when both do. Such a line is split into two schedules and the earlier fire time wins.

use std::str::FromStr;

use chrono::{DateTime, Utc};

const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    source: String,
    parts: Vec<cron::Schedule>,
}

impl Schedule {
    /// Parses a crontab line or macro; the error says what is wrong in operator terms.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let line = text.trim();
        let expanded = match line {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            "@reboot" => return Err("@reboot is not a schedule gm supports; use a time-based line".into()),
            other if other.starts_with('@') => {
                return Err(format!("unknown macro {other:?} (use @hourly, @daily, @weekly, @monthly or @yearly)"))
            }
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let (sec, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => {
                return Err(format!(
                "{n} fields in {line:?}: expected 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)"
            ))
            }
        };
        let (min, hour, dom, month, dow) = (rest[0], rest[1], rest[2], rest[3], rest[4]);
        let dow = weekdays(dow)?;
        let restricted = |f: &str| f != "*" && f != "?";
        let variants: Vec<(String, String)> = if restricted(dom) && restricted(&dow) {
            vec![(dom.to_string(), "*".to_string()), ("*".to_string(), dow.clone())]
        } else {
            vec![(dom.to_string(), dow.clone())]
        };
        let mut parts = Vec::new();
        for (d, w) in variants {
            let quartz = format!("{sec} {min} {hour} {d} {month} {w}");
            let s = cron::Schedule::from_str(&quartz).map_err(|e| format!("invalid schedule {line:?}: {e}"))?;
            parts.push(s);
        }
        let schedule = Schedule { source: line.to_string(), parts };
        if schedule.next_after(Utc::now()).is_none() {
            return Err(format!("schedule {line:?} never fires"));
        }
        Ok(schedule)
    }

    /// The line as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The first fire time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.parts.iter().filter_map(|p| p.after(&t).next()).min()
    }

    /// The next `n` fire times strictly after `t`.
    pub fn upcoming(&self, t: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut at = t;
        while out.len() < n {
            match self.next_after(at) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }

    /// The last fire time at or before `t`, searching back at most `window` (for missed runs).
    pub fn last_at_or_before(&self, t: DateTime<Utc>, window: chrono::Duration) -> Option<DateTime<Utc>> {
        let mut at = t - window;
        let mut last = None;
        while let Some(next) = self.next_after(at) {
            if next > t {
                break;
            }
            last = Some(next);
            at = next;
        }
        last
    }
}

/// Rewrites a crontab day-of-week field with names (see the module docs).
fn weekdays(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok(field.to_string());
    }
    let mut out: Vec<String> = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: usize =
                    s.parse().ok().filter(|s| *s > 0).ok_or_else(|| format!("invalid day-of-week step in {item:?}"))?;
                (r, Some(step))
            }
            None => (item, None),
        };
        let number = |s: &str| -> Result<Option<usize>, String> {
            match s.parse::<usize>() {
                Ok(n) if n <= 7 => Ok(Some(n)),
                Ok(n) => Err(format!("day of week {n} is out of range 0-7 (0 and 7 are Sunday)")),
                Err(_) => Ok(None),
            }
        };
        let bounds = if range == "*" {
            Some((0, 6))
        } else if let Some((a, b)) = range.split_once('-') {
            match (number(a)?, number(b)?) {
                (Some(a), Some(b)) if a <= b => Some((a, b)),
                (Some(a), Some(b)) => return Err(format!("day-of-week range {a}-{b} runs backwards")),
                _ => None,
            }
        } else {
            number(range)?.map(|n| (n, if step.is_some() { 6.max(n) } else { n }))
        };
        match bounds {
            Some((a, b)) => {
                for n in (a..=b).step_by(step.unwrap_or(1)) {
                    let name = DAYS[n % 7].to_string();
                    if !out.contains(&name) {
                        out.push(name);
                    }
                }
            }
            // Names (MON, MON-FRI, …) mean the same in both conventions.
            None => out.push(item.to_uppercase()),
        }
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Weekday};

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap_or_default()
    }

    fn next(line: &str, from: DateTime<Utc>) -> DateTime<Utc> {
        Schedule::parse(line).and_then(|s| s.next_after(from).ok_or_else(|| "none".into())).unwrap_or_default()
    }

    #[test]
    fn crontab_day_numbers_follow_crontab_not_quartz() {
        // 2026-11-28 is a Saturday.
        let sat = at(2026, 11, 28, 12, 0);
        assert_eq!(next("0 3 * * 0", sat).weekday(), Weekday::Sun);
        assert_eq!(next("0 3 * * 7", sat).weekday(), Weekday::Sun);
        assert_eq!(next("0 3 * * 1", sat).weekday(), Weekday::Mon);
        assert_eq!(next("0 3 * * 6", sat), at(2026, 12, 5, 3, 0));
        let weekdays: Vec<Weekday> = Schedule::parse("0 9 * * 1-5")
            .map(|s| s.upcoming(sat, 5))
            .unwrap_or_default()
            .iter()
            .map(|t| t.weekday())
            .collect();
        assert_eq!(weekdays, [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri]);
        assert_eq!(next("0 3 * * 5-7", sat).weekday(), Weekday::Sun);
        assert_eq!(next("0 3 * * MON", sat).weekday(), Weekday::Mon);
    }

    #[test]
    fn day_of_month_or_day_of_week_as_crontab_does() {
        // "the 1st, or any Monday": from Saturday 2026-11-28 the Monday (30th) comes before Dec 1st.
        assert_eq!(next("0 0 1 * 1", at(2026, 11, 28, 0, 0)), at(2026, 11, 30, 0, 0));
        assert_eq!(next("0 0 1 * 1", at(2026, 11, 30, 1, 0)), at(2026, 12, 1, 0, 0));
    }

    #[test]
    fn macros_five_and_six_fields() {
        let t = at(2026, 11, 26, 10, 30);
        assert_eq!(next("@hourly", t), at(2026, 11, 26, 11, 0));
        assert_eq!(next("@daily", t), at(2026, 11, 27, 0, 0));
        assert_eq!(next("@weekly", t), at(2026, 11, 29, 0, 0), "Sunday midnight");
        assert_eq!(next("@monthly", t), at(2026, 12, 1, 0, 0));
        assert_eq!(next("@yearly", t), at(2027, 1, 1, 0, 0));
        assert_eq!(next("0 */6 * * *", t), at(2026, 11, 26, 12, 0));
        assert_eq!(next("30 * * * * *", t), t + chrono::Duration::seconds(30), "6 fields: seconds first");
        let s = Schedule::parse("*/15 * * * *").unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(s.upcoming(t, 3), [at(2026, 11, 26, 10, 45), at(2026, 11, 26, 11, 0), at(2026, 11, 26, 11, 15)]);
        assert_eq!(s.last_at_or_before(t, chrono::Duration::hours(1)), Some(t));
        assert_eq!(
            s.last_at_or_before(t - chrono::Duration::minutes(1), chrono::Duration::minutes(20)),
            Some(at(2026, 11, 26, 10, 15))
        );
        assert_eq!(s.last_at_or_before(t - chrono::Duration::minutes(1), chrono::Duration::minutes(10)), None);
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        for (line, needle) in [
            ("* * *", "3 fields"),
            ("@reboot", "@reboot"),
            ("@often", "unknown macro"),
            ("0 0 * * 8", "out of range"),
            ("0 0 * * 5-1", "backwards"),
            ("61 * * * *", "invalid schedule"),
            ("0 0 30 2 *", "never fires"),
            ("0 0 * * */0", "step"),
        ] {
            match Schedule::parse(line) {
                Ok(_) => unreachable!("{line} parsed"),
                Err(e) => assert!(e.contains(needle), "{line}: {e}"),
            }
        }
    }
}
