//! The runbooks' command blocks run on a host layout (issue 15, item 2): every ```sh block of
//! `docs/runbooks/db-restore.md` (the runbook the README names for managed operations) runs with
//! bash, in order, against the layout `scripts/install.sh --prefix` stages with a sovereign's files
//! in it, served by `gm serve`. The host paths are the declared placeholders: `/etc/gm` and
//! `/var/lib/gm` become the layout's, `backup.key` the offline identity, and the example archive
//! names the newest archive in the backup folder. The operator's own file the runbook names,
//! `/etc/gm/incident-recipients.txt`, is put there as an operator would. Before the restore block
//! the NA is stopped, as its step 1 says. When a command fails, fix the runbook, not this test.

use std::path::Path;

use crate::default_jobs::{install_layout, serve_and_point_bind_at_it};
use crate::harness::{GmServer, TempDir};
use crate::readme::{has_placeholder, run_block, sh_blocks};

const RUNBOOK: &str = "docs/runbooks/db-restore.md";

/// The example archive names of the runbook; replaced by the newest archive's name.
const EXAMPLE_ARCHIVES: [&str; 2] = ["gm-acme-20261125T120000Z.tar.gz.age", "gm-acme-….tar.gz.age"];

/// The block that needs the NA stopped (step 1 of "Restore": `systemctl stop gm-na`).
const NA_STOPPED: &str = "gm managed restore --home /etc/gm";

/// The newest signed archive in `backups` (names sort by snapshot time).
fn newest_archive(backups: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(backups)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".tar.gz.age"))
        .collect();
    names.sort();
    names.pop()
}

#[test]
fn every_db_restore_runbook_block_runs_on_an_install_sh_layout() {
    let dir = TempDir::new("runbook");
    let layout = install_layout(&dir);
    std::fs::copy(layout.etc.join("backup-recipients.txt"), layout.etc.join("incident-recipients.txt")).unwrap();
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut server: Option<GmServer> = Some(serve_and_point_bind_at_it(&layout.etc));
    let blocks = sh_blocks(RUNBOOK);
    assert!(blocks.len() >= 7, "{RUNBOOK} has {} sh blocks", blocks.len());
    let prefix = layout.etc.parent().and_then(Path::parent).unwrap();
    for block in &blocks {
        if block.first_line().starts_with(NA_STOPPED) {
            drop(server.take());
        }
        let mut script = block.text.clone();
        if let Some(archive) = newest_archive(&layout.var.join("backups")) {
            for example in EXAMPLE_ARCHIVES {
                script = script.replace(example, &archive);
            }
        }
        script = script
            .replace("/etc/gm", &prefix.join("etc/gm").display().to_string())
            .replace("/var/lib/gm", &prefix.join("var/lib/gm").display().to_string())
            .replace("--identity backup.key", &format!("--identity {}", layout.identity.display()));
        assert!(!has_placeholder(&script), "undeclared placeholder in the block at line {}:\n{script}", block.line);
        run_block(&work, RUNBOOK, block, &script);
    }
}
