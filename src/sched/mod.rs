//! The built-in cron runner (issue 6): schedules in crontab syntax, in UTC. `sched` imports no other
//! gm module: jobs are child `gm` processes that the CLI wires to the job table, so a timeout can
//! kill a job and a crashing job cannot take the server down.

pub mod crontab;
pub mod metrics;
pub mod runner;
