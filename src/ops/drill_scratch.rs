//! Restore drills without the NA key (customer-held custody: the NA host holds no NA private key).
//! Owns which NA key a drill serves with ([`DrillNaKey`]), the check that the restored database's
//! stored CRLs and policies verify with the genesis NA public key ([`check_restored_material`]),
//! and the scratch world the throwaway enrollment then runs in ([`write_scratch_world`]): a copy of
//! the backup's genesis naming a fresh scratch NA key, signed by a fresh scratch root key, both
//! generated in memory for this drill only.
//!
//! Must not: write anywhere but the drill's scratch home, keep the scratch root key (it signs the
//! scratch genesis and is dropped), or let a scratch signature count as proof of the backup: the
//! restored signed material is checked against the genesis NA key before the scratch world exists.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};

use crate::crypto::keys::{PublicKey, SigningKey};
use crate::model::genesis::{Genesis, NetworkAuthority};
use crate::model::timestamp::ModelTime;
use crate::model::SignedObject;

use super::backup::load_genesis;
use super::error::{io, OpsError};
use super::verify::check_signed_material;

/// The key id the scratch NA signs with (certificates, re-issued CRLs of the drill's copy).
pub(crate) const SCRATCH_NA_KEY_ID: &str = "drill-scratch-na";
/// The key id of the scratch root signature on the scratch genesis.
const SCRATCH_ROOT_KEY_ID: &str = "drill-scratch-root";

/// Which NA key the drill's ephemeral server signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DrillNaKey {
    /// The configured NA private key (the NA key is held on this host).
    Configured {
        /// The NA private key file.
        file: PathBuf,
        /// The NA key id.
        key_id: String,
    },
    /// No NA private key here: a scratch world, and why (`--scratch-na-key`, or the key file is absent).
    Scratch {
        /// Why this mode ran, for the report.
        reason: String,
    },
}

impl DrillNaKey {
    /// The report's `na_key` value: `configured` or `scratch`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            DrillNaKey::Configured { .. } => "configured",
            DrillNaKey::Scratch { .. } => "scratch",
        }
    }
}

/// The scratch files a scratch-mode drill serves with.
#[derive(Debug)]
pub(crate) struct ScratchWorld {
    /// The scratch genesis (the backup's, naming the scratch NA key, signed by the scratch root).
    pub genesis_file: PathBuf,
    /// The scratch NA private key file (mode 0600, inside the scratch home).
    pub na_key_file: PathBuf,
    /// The scratch NA public key.
    pub na_public_key: PublicKey,
}

/// The genesis NA public key the restored material must verify with, and where it came from: the
/// configured genesis when there is one (it must name the backup's NA key, else the backup is of
/// another sovereign), else the backup's own genesis (root-signed, checked by verify).
pub(crate) fn genesis_na_key(configured: &Path, backup_genesis: &Genesis) -> Result<(PublicKey, String), String> {
    let backup_key = &backup_genesis.network_authority.public_key;
    let (key, source) = match std::fs::symlink_metadata(configured) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (backup_key.clone(), format!("the backup's genesis (no configured genesis at {})", configured.display()))
        }
        _ => {
            let (_, g) = load_genesis(configured).map_err(|e| format!("configured genesis: {e}"))?;
            if !g.check_root_signatures().is_valid() {
                return Err(format!("the configured genesis {} is not signed by its root key", configured.display()));
            }
            if &g.network_authority.public_key != backup_key {
                return Err(format!(
                    "the backup's NA key {backup_key} is not the NA key {} of the configured genesis {}: a backup of another sovereign",
                    g.network_authority.public_key,
                    configured.display()
                ));
            }
            (g.network_authority.public_key, format!("the configured genesis {}", configured.display()))
        }
    };
    let key = PublicKey::from_b64(&key).map_err(|e| format!("genesis NA key: {e}"))?;
    Ok((key, source))
}

/// Checks every CRL and policy version stored in the restored database `db` against `na_key`
/// (read-only, immutable open); `Err` names the first that does not verify, or says there are none.
pub(crate) fn check_restored_material(db: &Path, na_key: &PublicKey) -> Result<usize, String> {
    let conn = crate::store::snapshot::open_immutable(db).map_err(|e| e.to_string())?;
    match check_signed_material(&conn, &na_key.to_b64())? {
        0 => Err("the restored database holds no CRL or policy signed by the genesis NA key".into()),
        n => Ok(n),
    }
}

/// Writes the scratch world into `home`: a scratch NA key (`na.key`, 0600) and the backup's
/// genesis re-rooted on a scratch root key (`genesis.signed.json`), its NA entry naming the scratch
/// NA key and valid for an hour either side of `now`. The scratch root key is never written.
pub(crate) fn write_scratch_world(
    home: &Path,
    backup_genesis: &Genesis,
    now: DateTime<Utc>,
) -> Result<ScratchWorld, OpsError> {
    let root = SigningKey::generate();
    let na = SigningKey::generate();
    let mut genesis = backup_genesis.clone();
    genesis.root_public_key = root.public_key().to_b64();
    genesis.network_authority = NetworkAuthority {
        public_key: na.public_key().to_b64(),
        valid_from: ModelTime::from_utc(now - Duration::hours(1)),
        valid_to: ModelTime::from_utc(now + Duration::hours(1)),
    };
    genesis.signatures.clear();
    genesis.sign(&root, SCRATCH_ROOT_KEY_ID);
    let genesis_file = home.join("genesis.signed.json");
    let mut text = crate::crypto::canonical::to_pretty_string(&genesis.to_value());
    text.push('\n');
    crate::files::atomic::write_atomic(&genesis_file, text.as_bytes(), crate::files::atomic::Mode::Public, false)
        .map_err(io("write", &genesis_file))?;
    let na_key_file = home.join("na.key");
    crate::files::atomic::write_atomic(
        &na_key_file,
        na.to_file_text(Some(SCRATCH_NA_KEY_ID)).as_bytes(),
        crate::files::atomic::Mode::Private,
        false,
    )
    .map_err(io("write", &na_key_file))?;
    Ok(ScratchWorld { genesis_file, na_key_file, na_public_key: na.public_key() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn genesis(root: &SigningKey, na: &SigningKey) -> Genesis {
        let now = Utc::now();
        let mut g = Genesis {
            network_name: "drill-mesh".into(),
            network_version: "v0.1".into(),
            root_public_key: root.public_key().to_b64(),
            network_authority: NetworkAuthority {
                public_key: na.public_key().to_b64(),
                valid_from: ModelTime::from_utc(now),
                valid_to: ModelTime::from_utc(now + Duration::days(1)),
            },
            allowed_crypto_suites: vec!["ed25519".into()],
            allowed_transports: vec!["quic".into()],
            policy_hash: "sha256:placeholder".into(),
            policy_url: None,
            bootstrap_anchors: Vec::new(),
            signatures: Vec::new(),
        };
        g.sign(root, "root");
        g
    }

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gm-drill-scratch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_scratch_world_is_root_signed_names_the_scratch_na_key_and_keeps_the_network() {
        let (root, na) = (SigningKey::generate(), SigningKey::generate());
        let original = genesis(&root, &na);
        let dir = scratch_dir("world");
        let world = write_scratch_world(&dir, &original, Utc::now()).unwrap();
        let (_, scratch) = load_genesis(&world.genesis_file).unwrap();
        assert!(scratch.check_root_signatures().is_valid());
        assert_eq!(scratch.network_name, original.network_name);
        assert_ne!(scratch.root_public_key, original.root_public_key);
        assert_eq!(scratch.network_authority.public_key, world.na_public_key.to_b64());
        let key = crate::crypto::keys::load_signing_key(&world.na_key_file).unwrap();
        assert_eq!(key.public_key(), world.na_public_key);
        assert_eq!(crate::files::private::mode_of(&world.na_key_file).unwrap(), 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_configured_genesis_of_another_sovereign_is_refused_and_an_absent_one_falls_back() {
        let (root, na) = (SigningKey::generate(), SigningKey::generate());
        let backup = genesis(&root, &na);
        let dir = scratch_dir("genesis");
        let (key, source) = genesis_na_key(&dir.join("absent.json"), &backup).unwrap();
        assert_eq!(key, na.public_key());
        assert!(source.starts_with("the backup's genesis (no configured genesis at "), "{source}");
        let other = genesis(&root, &SigningKey::generate());
        let path = dir.join("genesis.signed.json");
        std::fs::write(&path, crate::crypto::canonical::to_pretty_string(&other.to_value())).unwrap();
        let problem = genesis_na_key(&path, &backup).unwrap_err();
        assert!(problem.ends_with("a backup of another sovereign"), "{problem}");
        std::fs::write(&path, crate::crypto::canonical::to_pretty_string(&backup.to_value())).unwrap();
        let (key, source) = genesis_na_key(&path, &backup).unwrap();
        assert_eq!((key, source), (na.public_key(), format!("the configured genesis {}", path.display())));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
