//! The operator's two ends of the offline signing round trip (customer-held custody,
//! `docs/custody.md`): `gm treaty issue --unsigned-out FILE` writes the signing request the NA
//! prepared, and `gm treaty publish FILE` sends back what the NA key holder signed with `gm sign`.
//!
//! Reads and writes only the files it is given and never touches a private key but the operator's
//! (which signs the admin requests). Whether a signature is good is the NA's decision: it checks
//! against its genesis key, which a file cannot choose.

use std::path::Path;

use crate::client::treaty::{prepare, publish, IssueRequest};
use crate::json::Value;
use crate::model::fields::object;
use crate::model::signing_request::{SigningRequest, Stage};
use crate::model::treaty::RecognitionTreaty;
use crate::model::{Kind, SignedObject};

use super::super::error::Error;
use super::super::input::{object_file_text, read_json, write_public_file};
use super::super::na_options::{connect, Connection, Session};

/// Asks the NA to prepare the treaty `request` describes and writes the signing request to `out`.
pub(super) fn write_request(session: &Session, request: &IssueRequest, out: &Path, force: bool) -> Result<u8, Error> {
    let mut prepared = prepare(&session.admin(), request)?;
    prepared.na_url = Some(session.na.base_url().to_string());
    write_public_file(out, &object_file_text(&prepared.to_value()), force)?;
    let treaty_id = prepared.object.as_object().and_then(|m| m.get("treaty_id")).and_then(Value::as_str).unwrap_or("");
    let text = format!(
        "wrote signing request {file} for treaty {treaty_id} (not signed, not stored)\n\
         next: the NA key holder signs it offline: gm sign --key na.key {file} --output treaty.signed.json\n\
         then: gm treaty publish --na {na} treaty.signed.json",
        file = out.display(),
        na = session.na.base_url(),
    );
    let value = Value::Object(object(vec![
        ("file", Value::from(out.display().to_string())),
        ("kind", Value::from("treaty")),
        ("na_key_id", Value::from(prepared.na_key_id.as_str())),
        ("na_public_key", Value::from(prepared.na_public_key.as_str())),
        ("treaty_id", Value::from(treaty_id)),
    ]));
    session.out.result(&text, &value);
    Ok(0)
}

/// Reads the signed treaty in `file` and publishes it.
pub(super) fn run_publish(file: &Path, connection: &Connection<'_>) -> Result<u8, Error> {
    let treaty = signed_treaty(file, &read_json(file)?)?;
    let session = connect(connection)?;
    let stored = publish(&session.admin(), &treaty)?;
    let key_id = stored.signatures.first().map_or("", |s| s.key_id.as_str());
    let text = format!(
        "treaty id: {}\n{} → {}, expires at {}; signed offline (key id {key_id}), verified by the NA against its genesis key",
        stored.treaty_id,
        stored.issuer_sovereign_id,
        stored.subject_sovereign_id,
        stored.expires_at.render_isoformat()
    );
    let value = Value::Object(object(vec![
        ("signed_offline", Value::Bool(true)),
        ("treaty", stored.to_value()),
        ("treaty_id", Value::from(stored.treaty_id.as_str())),
    ]));
    session.out.result(&text, &value);
    Ok(0)
}

/// The signed treaty of a `gm sign` reply envelope, or of a bare signed treaty; refuses an
/// unsigned request, another kind and an unsigned treaty before anything is sent.
fn signed_treaty(file: &Path, value: &Value) -> Result<Value, Error> {
    let treaty = match SigningRequest::format_of(value) {
        None => value.clone(),
        Some(_) => {
            let envelope = SigningRequest::from_value(value)
                .map_err(|source| Error::Model { path: file.to_path_buf(), source })?;
            if envelope.stage == Stage::Request {
                return Err(Error::usage(
                    format!("{} is a signing request nobody has signed yet", file.display()),
                    format!(
                        "the NA key holder signs it first: gm sign --key na.key {} --output treaty.signed.json",
                        file.display()
                    ),
                ));
            }
            if envelope.kind != Kind::Treaty {
                return Err(Error::usage(
                    format!("{} holds a signed {}, not a treaty", file.display(), envelope.kind.model_name()),
                    "gm treaty publish takes the signed file of a gm treaty issue --unsigned-out request",
                ));
            }
            envelope.object
        }
    };
    let parsed =
        RecognitionTreaty::from_value(&treaty).map_err(|source| Error::Model { path: file.to_path_buf(), source })?;
    if parsed.signatures.is_empty() {
        return Err(Error::usage(
            format!("treaty {} in {} carries no signature", parsed.treaty_id, file.display()),
            "the NA key holder signs it first: gm sign --key na.key FILE --output treaty.signed.json",
        ));
    }
    Ok(treaty)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::client::treaty::tests::treaty;
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
    fn only_a_signed_treaty_is_sent() {
        let file = PathBuf::from("t.json");
        let signed = treaty("t-1");
        assert_eq!(signed_treaty(&file, &signed).unwrap(), signed);
        assert_eq!(signed_treaty(&file, &envelope(Stage::Signed, signed.clone())).unwrap(), signed);
        let err = signed_treaty(&file, &envelope(Stage::Request, signed.clone())).unwrap_err();
        assert!(err.to_string().contains("nobody has signed yet"), "{err}");
        let mut unsigned = signed.as_object().cloned().unwrap_or_else(Map::new);
        unsigned.insert("signatures", Value::Array(Vec::new()));
        let err = signed_treaty(&file, &Value::Object(unsigned)).unwrap_err();
        assert!(err.to_string().contains("carries no signature"), "{err}");
    }
}
