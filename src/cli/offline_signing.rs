//! The operator's ends of the offline signing round trip (customer-held custody,
//! `docs/custody.md`), shared by `gm treaty` and `gm admin policy`: writing the signing request
//! the NA prepared (`--unsigned-out FILE`), reading back what the NA key holder signed with
//! `gm sign`, and the `publish` commands' results.
//!
//! Reads and writes only the files it is given and never loads a private key but the operator's
//! (which signs the admin requests). Whether a signature is good is the NA's decision: it checks
//! against its genesis key, which a file cannot choose.

use std::path::Path;

use crate::json::Value;
use crate::model::fields::object;
use crate::model::policy::PolicyManifest;
use crate::model::signing_request::{SigningRequest, Stage};
use crate::model::treaty::RecognitionTreaty;
use crate::model::{check_as, Kind, SignedObject};

use super::error::Error;
use super::input::{object_file_text, read_json, write_public_file};
use super::na_options::Session;

/// The command that publishes a signed object of `kind` (for hints and next steps).
pub(crate) fn publish_command(kind: Kind) -> &'static str {
    match kind {
        Kind::Policy => "gm admin policy publish",
        _ => "gm treaty publish",
    }
}

/// Writes the signing request the NA `prepared` to `out`, with the NA URL the session used.
pub(crate) fn write_request(
    session: &Session,
    mut prepared: SigningRequest,
    out: &Path,
    force: bool,
) -> Result<u8, Error> {
    prepared.na_url = Some(session.na.base_url().to_string());
    write_public_file(out, &object_file_text(&prepared.to_value()), force)?;
    let (kind, id) = (prepared.kind.name(), prepared.object_id().unwrap_or(""));
    let text = format!(
        "wrote signing request {file} for {kind} {id} (not signed, not stored)\n\
         next: the NA key holder signs it offline: gm sign --key na.key {file} --output {kind}.signed.json\n\
         then: {publish} --na {na} {kind}.signed.json",
        file = out.display(),
        publish = publish_command(prepared.kind),
        na = session.na.base_url(),
    );
    let value = Value::Object(object(vec![
        ("file", Value::from(out.display().to_string())),
        ("kind", Value::from(kind)),
        ("na_key_id", Value::from(prepared.na_key_id.as_str())),
        ("na_public_key", Value::from(prepared.na_public_key.as_str())),
        ("object_id", Value::from(id)),
    ]));
    session.out.result(&text, &value);
    Ok(0)
}

/// The signed object of `kind` in `file`: a `gm sign` reply envelope or a bare signed object.
/// Refuses an unsigned request, another kind and an unsigned object before anything is sent.
pub(crate) fn signed_object(file: &Path, kind: Kind) -> Result<Value, Error> {
    let value = read_json(file)?;
    let model = |source| Error::Model { path: file.to_path_buf(), source };
    let sign_first =
        || format!("the NA key holder signs it first: gm sign --key na.key {} --output signed.json", file.display());
    let object = match SigningRequest::format_of(&value) {
        None => value,
        Some(_) => {
            let envelope = SigningRequest::from_value(&value).map_err(model)?;
            if envelope.stage == Stage::Request {
                return Err(Error::usage(
                    format!("{} is a signing request nobody has signed yet", file.display()),
                    sign_first(),
                ));
            }
            if envelope.kind != kind {
                return Err(Error::usage(
                    format!("{} holds a signed {}, not a {}", file.display(), envelope.kind.name(), kind.name()),
                    format!("publish it with {}", publish_command(envelope.kind)),
                ));
            }
            envelope.object
        }
    };
    let checked = check_as(kind, &object, &[]).map_err(model)?;
    if checked.signature_count == 0 {
        return Err(Error::usage(
            format!("the {} in {} carries no signature", kind.name(), file.display()),
            sign_first(),
        ));
    }
    Ok(object)
}

/// `gm treaty publish`'s result.
pub(crate) fn treaty_published(stored: &RecognitionTreaty) -> (String, Value) {
    let text = format!(
        "treaty id: {}\n{} → {}, expires at {}; signed offline (key id {}), verified by the NA against its genesis key",
        stored.treaty_id,
        stored.issuer_sovereign_id,
        stored.subject_sovereign_id,
        stored.expires_at.render_isoformat(),
        first_key_id(stored),
    );
    let value = Value::Object(object(vec![
        ("signed_offline", Value::Bool(true)),
        ("treaty", stored.to_value()),
        ("treaty_id", Value::from(stored.treaty_id.as_str())),
    ]));
    (text, value)
}

/// `gm admin policy publish`'s result.
pub(crate) fn policy_published(stored: &PolicyManifest) -> (String, Value) {
    let text = format!(
        "published policy {} (issued at {}); it is now the active policy; signed offline (key id {}), verified by the NA against its genesis key",
        stored.policy_id,
        stored.issued_at.render_pydantic(),
        first_key_id(stored),
    );
    let value = Value::Object(object(vec![
        ("policy", stored.to_value()),
        ("policy_id", Value::from(stored.policy_id.as_str())),
        ("signed_offline", Value::Bool(true)),
    ]));
    (text, value)
}

fn first_key_id<T: SignedObject>(object: &T) -> &str {
    object.signatures().first().map_or("", |s| s.key_id.as_str())
}

#[cfg(test)]
mod tests {
    use crate::client::treaty::tests::treaty;
    use crate::files::atomic::{write_atomic, Mode};
    use crate::json::Map;

    use super::*;

    fn envelope(stage: Stage, object: Value) -> Value {
        SigningRequest {
            stage,
            kind: Kind::Treaty,
            network_name: "alpha".to_string(),
            na_url: None,
            na_public_key: "k".to_string(),
            na_key_id: "na-2026".to_string(),
            created_at: "2026-03-02T10:00:00+00:00".to_string(),
            object,
        }
        .to_value()
    }

    #[test]
    fn only_a_signed_object_of_the_kind_is_sent() {
        let dir = std::env::temp_dir().join(format!("gm-offline-signing-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.json");
        let with = |v: &Value| {
            write_atomic(&file, crate::crypto::canonical::canonical_string(v).as_bytes(), Mode::Public, true).unwrap();
            signed_object(&file, Kind::Treaty)
        };
        let signed = treaty("t-1");
        assert_eq!(with(&signed).unwrap(), signed);
        assert_eq!(with(&envelope(Stage::Signed, signed.clone())).unwrap(), signed);
        let err = with(&envelope(Stage::Request, signed.clone())).unwrap_err();
        assert!(err.to_string().contains("nobody has signed yet"), "{err}");
        let mut unsigned = signed.as_object().cloned().unwrap_or_else(Map::new);
        unsigned.insert("signatures", Value::Array(Vec::new()));
        let err = with(&Value::Object(unsigned)).unwrap_err();
        assert!(err.to_string().contains("carries no signature"), "{err}");
        let err = signed_object(&file, Kind::Policy).unwrap_err();
        assert!(err.to_string().contains("invalid PolicyManifest"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
