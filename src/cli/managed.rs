//! `gm managed …`: the operations an operator runs on a managed sovereign (`operations.md` §2).

use argh::FromArgs;

use super::error::Error;
use super::{backup, drill, history, restore, verify_backup};

/// Managed operations: encrypted backup, verify, restore, restore drills, audit export, ops history.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "managed")]
pub(crate) struct ManagedArgs {
    #[argh(subcommand)]
    action: ManagedAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum ManagedAction {
    Backup(backup::BackupArgs),
    Verify(verify_backup::VerifyArgs),
    Restore(restore::RestoreArgs),
    History(history::HistoryArgs),
    RestoreDrill(drill::DrillArgs),
    AuditExport(super::audit::AuditExportArgs),
    AuditVerify(super::audit::AuditVerifyArgs),
    AuditPrune(super::audit_prune::AuditPruneArgs),
    Prune(super::prune::PruneArgs),
}

/// Runs `gm managed …`.
pub(crate) fn run(args: ManagedArgs) -> Result<u8, Error> {
    match args.action {
        ManagedAction::Backup(a) => backup::run_backup(a),
        ManagedAction::Verify(a) => verify_backup::run_verify(a),
        ManagedAction::Restore(a) => restore::run_restore(a),
        ManagedAction::History(a) => history::run_history(a),
        ManagedAction::RestoreDrill(a) => drill::run_drill(a),
        ManagedAction::AuditExport(a) => super::audit::run_export(a),
        ManagedAction::AuditVerify(a) => super::audit::run_verify(a),
        ManagedAction::AuditPrune(a) => super::audit_prune::run(a),
        ManagedAction::Prune(a) => super::prune::run(a),
    }
}
