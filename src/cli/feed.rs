//! `gm feed export|import`: sovereign revocation feeds (`na-wire.md` §7.10, §12).
//!
//! `export` fetches this NA's feed (`GET /sovereign-revocation-feed`) and writes or prints it only
//! once its signature verifies against the NA key of the NA's own `GET /genesis`: an unverifiable
//! feed is never handed on. `import` checks a feed file against the schema locally, then posts it
//! exactly as read to `POST /admin/sovereign-revocation-feeds/import`; the NA decides (§12.2), and
//! a rejection (`stale_sequence`, `wrong_issuer`, …) exits 1 with its reason. There is no un-import.

use std::path::{Path, PathBuf};

use argh::FromArgs;

use crate::client::feed::{fetch_feed, import, FetchedFeed, ImportRequest, ImportVerdict};
use crate::client::genesis::na_public_key;
use crate::json::Value;
use crate::model::feed::RevocationFeed;
use crate::model::fields::object;
use crate::model::SignedObject;

use super::error::{Error, EXIT_CHECK_FAILED};
use super::flags::na_command;
use super::input::{object_file_text, read_json, refuse_existing, write_public_file};
use super::na_options::{connect, na_client, read_public_keys};
use super::output::{notice, raw, Output};

/// Export this NA's revocation feed, or import another sovereign's.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "feed",
    example = "gm feed export --na http://127.0.0.1:8443 --output alpha-feed.json\ngm feed import --na http://127.0.0.1:9443 alpha-feed.json --expected-issuer alpha\ngm feed import --na https://na.example.net alpha-feed.json --issuer-public-key alpha-na.pub --json",
    note = "export reads a public route; import is signed with the operator key (--operator-key, default HOME/offline/operator.key). Exit status: 0 done, 1 the NA refused or a check said no, 2 the command could not run."
)]
pub(crate) struct FeedArgs {
    #[argh(subcommand)]
    action: FeedAction,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
enum FeedAction {
    Export(ExportArgs),
    Import(ImportArgs),
}

/// Fetch this NA's signed revocation feed, verify it, and write or print it.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "export",
    example = "gm feed export --na http://127.0.0.1:8443\ngm feed export --na http://127.0.0.1:8443 --output alpha-feed.json\ngm feed export --na https://na.example.net --issuer alpha --output alpha-feed.json --force --json",
    note = "The feed is written (atomically) or printed only when its signature verifies against network_authority.public_key of the NA's GET /genesis. Each GET yields a fresh feed_id; the sequence only grows with new revocations. Exit status: 0 exported, 1 the NA refused or the feed does not verify, 2 the command could not run."
)]
pub(crate) struct ExportArgs {
    /// NA base URL, e.g. http://127.0.0.1:8443 (required)
    #[argh(option)]
    na: String,
    /// PEM bundle of a private CA (self-hosted PKI): an https NA is trusted only if one of its certificates issued the NA's, and the host's CA roots are not used (default: the host's CA bundle)
    #[argh(option)]
    ca_file: Option<PathBuf>,
    /// issuer sovereign id of the feed (default: the NA's own sovereign)
    #[argh(option)]
    issuer: Option<String>,
    /// write the feed to this file (default: print it on stdout)
    #[argh(option)]
    output: Option<PathBuf>,
    /// replace an existing --output file
    #[argh(switch)]
    force: bool,
    /// print the feed (or, with --output, a summary) as one JSON line
    #[argh(switch)]
    json: bool,
}

na_command! {
/// Import another sovereign's revocation feed into this NA.
#[derive(FromArgs, Debug)]
#[argh(
    subcommand,
    name = "import",
    example = "gm feed import --na http://127.0.0.1:9443 alpha-feed.json\ngm feed import --na http://127.0.0.1:9443 alpha-feed.json --expected-issuer alpha --issuer-public-key 8GFtLlsDpEJNfcATcNmBxcpzjgC9Vz8/N9FZUFXpOw4=\ngm feed import --na https://na.example.net alpha-feed.json --issuer-public-key alpha-na.pub --json",
    note = "Without issuer keys the NA uses the subject keys of its active treaties with the feed's issuer. A feed whose sequence is not above the last imported one is rejected as stale_sequence (normal when nothing changed). There is no un-import. Exit status: 0 accepted, 1 the NA rejected the feed or refused the request, 2 the command could not run."
)]
pub(crate) struct ImportArgs {
    /// the feed file, as written by gm feed export or upstream (required)
    #[argh(positional)]
    file: PathBuf,
    /// issuer NA public key: base64 or a .pub file, repeatable (default: the NA's treaty keys for the issuer)
    #[argh(option, long = "issuer-public-key")]
    issuer_key: Vec<String>,
    /// reject the feed unless its issuer_sovereign_id is this id (default: any issuer)
    #[argh(option)]
    expected_issuer: Option<String>,
}
}

/// Runs `gm feed`.
pub(crate) fn run(args: FeedArgs) -> Result<u8, Error> {
    match args.action {
        FeedAction::Export(a) => run_export(a),
        FeedAction::Import(a) => run_import(a),
    }
}

fn run_export(args: ExportArgs) -> Result<u8, Error> {
    if let Some(path) = &args.output {
        refuse_existing(path, args.force)?;
    }
    let na = na_client(&args.na, args.ca_file.as_deref())?;
    let na_key = na_public_key(&na)?;
    let FetchedFeed { feed, url } = fetch_feed(&na, args.issuer.as_deref())?;
    if !feed.check_signatures(std::slice::from_ref(&na_key)).is_valid() {
        return Err(Error::CheckFailed {
            message: format!(
                "feed {} from {} does not verify against the NA key {} of {}/genesis: nothing written",
                feed.feed_id,
                url,
                na_key.to_b64(),
                na.base_url()
            ),
        });
    }
    let out = Output { json: args.json };
    let Some(path) = &args.output else {
        if args.json {
            out.result("", &feed.to_value());
        } else {
            raw(&object_file_text(&feed.to_value()));
        }
        return Ok(0);
    };
    write_public_file(path, &object_file_text(&feed.to_value()), args.force)?;
    let text = format!(
        "wrote feed {} of {} (sequence {}, {} revoked attestation(s)) to {}; signature verified against NA key {}",
        feed.feed_id,
        feed.issuer_sovereign_id,
        feed.sequence,
        feed.revoked_attestation_ids.len(),
        path.display(),
        na_key.to_b64()
    );
    let value = Value::Object(object(vec![
        ("feed_id", Value::from(feed.feed_id.as_str())),
        ("issuer_sovereign_id", Value::from(feed.issuer_sovereign_id.as_str())),
        ("na_public_key", Value::from(na_key.to_b64())),
        ("output", Value::from(path.display().to_string())),
        ("revoked_count", Value::from(count(feed.revoked_attestation_ids.len()))),
        ("sequence", Value::from(feed.sequence)),
        ("verified", Value::Bool(true)),
    ]));
    out.result(&text, &value);
    Ok(0)
}

fn run_import(args: ImportArgs) -> Result<u8, Error> {
    let request = ImportRequest {
        feed: read_feed(&args.file)?,
        issuer_public_keys: {
            let keys = read_public_keys("--issuer-public-key", &args.issuer_key)?;
            (!keys.is_empty()).then_some(keys)
        },
        expected_issuer_sovereign_id: args.expected_issuer.clone().filter(|id| !id.trim().is_empty()),
    };
    let session = connect(&args.connection())?;
    let verdict = import(&session.admin(), &request)?;
    session.out.result(&verdict_text(&verdict), &verdict.answer);
    if verdict.accepted {
        return Ok(0);
    }
    notice(&format!("error: the NA rejected the feed: {}", verdict.reason));
    if let Some(hint) = rejection_hint(&verdict.reason) {
        notice(&format!("hint: {hint}"));
    }
    Ok(EXIT_CHECK_FAILED)
}

/// Reads a feed file: the JSON exactly as read (it is sent unchanged), checked against the schema.
fn read_feed(path: &Path) -> Result<Value, Error> {
    let value = read_json(path)?;
    RevocationFeed::from_value(&value).map_err(|source| Error::Model { path: path.to_path_buf(), source })?;
    Ok(value)
}

/// The verdict for people.
fn verdict_text(verdict: &ImportVerdict) -> String {
    let sequence = verdict.sequence.map_or_else(|| "?".to_string(), |s| s.to_string());
    if verdict.accepted {
        let revoked = verdict.revoked_count.map_or_else(|| "?".to_string(), |n| n.to_string());
        format!(
            "accepted: feed of {} imported (reason {}, sequence {sequence}, {revoked} revoked attestation(s))",
            verdict.issuer_sovereign_id, verdict.reason
        )
    } else {
        format!("rejected: {} (feed of {}, sequence {sequence})", verdict.reason, verdict.issuer_sovereign_id)
    }
}

/// What to do about each rejection reason of §12.2.
fn rejection_hint(reason: &str) -> Option<&'static str> {
    let hint = match reason {
        "stale_sequence" => {
            "the NA already holds this sequence or a later one from this issuer: nothing new to import; export a newer feed after the issuer revokes more attestations"
        }
        "missing_issuer_public_keys" => {
            "pass --issuer-public-key or --issuer-public-key, or issue an active treaty for the feed's issuer first (gm treaty issue)"
        }
        "wrong_issuer" => "the feed's issuer_sovereign_id is not --expected-issuer: check that the file is the feed you meant",
        "missing_signature" => "the feed is unsigned: export it again from the issuer's NA (gm feed export)",
        "invalid_signature" => {
            "no issuer key verifies the feed: check --issuer-public-key/--issuer-public-key, or the subject keys of the treaty with the issuer"
        }
        _ => return None,
    };
    Some(hint)
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use crate::cli::na_options::test_session;
    use crate::client::fake_na::{Answer, FakeNa};
    use crate::crypto::canonical::canonical_string;
    use crate::crypto::keys::SigningKey;
    use crate::json::parse_str;

    use super::*;

    /// A feed file as an exporter wrote it: ids unsorted, as the file holds them.
    fn feed_file() -> Value {
        parse_str("{\"feed_id\":\"f1\",\"issuer_sovereign_id\":\"alpha\",\"sequence\":2,\"issued_at\":\"2026-03-02T10:00:00Z\",\"revoked_attestation_ids\":[\"b\",\"a\"],\"revocation_reasons\":{\"a\":\"key_compromise\"},\"issued_by\":\"na-2026\",\"signatures\":[{\"key_id\":\"na-2026\",\"sig\":\"c2ln\"}]}").unwrap()
    }

    #[test]
    fn import_sends_the_file_as_read_and_only_the_given_options() {
        let accepted = "{\"accepted\":true,\"feed_id\":\"f1\",\"issuer_sovereign_id\":\"alpha\",\"reason\":\"accepted\",\"revoked_count\":2,\"sequence\":2}";
        let na = FakeNa::start(vec![Answer::json(200, accepted), Answer::json(200, accepted)]);
        let session = test_session(&na.url());
        let key = SigningKey::from_seed(&[7u8; 32]).public_key().to_b64();
        let full = ImportRequest {
            feed: feed_file(),
            issuer_public_keys: Some(vec![key.clone()]),
            expected_issuer_sovereign_id: Some("alpha".to_string()),
        };
        let verdict = import(&session.admin(), &full).unwrap();
        assert!(verdict.accepted);
        assert_eq!((verdict.sequence, verdict.revoked_count), (Some(2), Some(2)));
        assert_eq!(
            verdict_text(&verdict),
            "accepted: feed of alpha imported (reason accepted, sequence 2, 2 revoked attestation(s))"
        );
        let bare = ImportRequest { feed: feed_file(), issuer_public_keys: None, expected_issuer_sovereign_id: None };
        import(&session.admin(), &bare).unwrap();
        let seen = na.finish();
        assert_eq!(
            (seen[0].method.as_str(), seen[0].target.as_str()),
            ("POST", "/admin/sovereign-revocation-feeds/import")
        );
        let feed = canonical_string(&feed_file());
        assert!(feed.contains("[\"b\",\"a\"]"), "the ids are sent unsorted, as read: {feed}");
        assert_eq!(
            String::from_utf8(seen[0].body.clone()).unwrap(),
            format!(
                "{{\"expected_issuer_sovereign_id\":\"alpha\",\"feed\":{feed},\"issuer_public_keys\":[\"{key}\"]}}"
            )
        );
        assert_eq!(String::from_utf8(seen[1].body.clone()).unwrap(), format!("{{\"feed\":{feed}}}"));
        assert!(seen[0].header("x-admin-signature").is_some());
    }

    #[test]
    fn stale_and_rejected_feeds_are_verdicts_with_their_reason() {
        let stale = "{\"accepted\":false,\"feed_id\":\"f1\",\"issuer_sovereign_id\":\"alpha\",\"reason\":\"stale_sequence\",\"sequence\":2}";
        let no_keys =
            "{\"accepted\":false,\"issuer_sovereign_id\":\"alpha\",\"reason\":\"missing_issuer_public_keys\"}";
        let na = FakeNa::start(vec![
            Answer::json(409, stale),
            Answer::json(400, no_keys),
            Answer::json(400, "{\"error\":\"Invalid sovereign revocation feed\"}"),
        ]);
        let session = test_session(&na.url());
        let request = ImportRequest { feed: feed_file(), issuer_public_keys: None, expected_issuer_sovereign_id: None };
        let verdict = import(&session.admin(), &request).unwrap();
        assert!(!verdict.accepted);
        assert_eq!(verdict.reason, "stale_sequence");
        assert_eq!(verdict_text(&verdict), "rejected: stale_sequence (feed of alpha, sequence 2)");
        assert!(rejection_hint(&verdict.reason).is_some());
        assert_eq!(import(&session.admin(), &request).unwrap().reason, "missing_issuer_public_keys");
        let err = import(&session.admin(), &request).unwrap_err();
        assert_eq!(err.to_string(), "the NA refused: 400 Invalid sovereign revocation feed");
        assert!(Error::from(err).exit_code() == EXIT_CHECK_FAILED);
        na.finish();
    }

    #[test]
    fn an_invalid_feed_file_is_refused_before_anything_is_sent() {
        let dir = std::env::temp_dir().join(format!("gm-feed-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad-feed.json");
        std::fs::write(&path, "{\"feed_id\":\"f1\",\"issuer_sovereign_id\":\"alpha\",\"sequence\":-1}").unwrap();
        let err = read_feed(&path).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().starts_with(&path.display().to_string()), "{err}");
        std::fs::write(&path, canonical_string(&feed_file())).unwrap();
        assert_eq!(read_feed(&path).unwrap(), feed_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn genesis_body(na_public: &str) -> String {
        format!(
            "{{\"network_name\":\"SPECNET\",\"network_version\":\"v0.1\",\"root_public_key\":\"Y37QNrPBhA7D49D55oBXcgRtubk9GTl5HSXUfqOU8PY=\",\"network_authority\":{{\"public_key\":\"{na_public}\",\"valid_from\":\"2026-11-25T17:36:56.071388Z\",\"valid_to\":\"2027-02-23T17:36:56.071388Z\"}},\"policy_manifest\":{{\"hash\":\"sha256:placeholder\",\"url\":null}},\"signatures\":[]}}"
        )
    }

    fn signed_feed(key: &SigningKey) -> String {
        let mut feed = RevocationFeed::from_value(&feed_file()).unwrap();
        feed.signatures.clear();
        feed.sign(key, "na-2026");
        canonical_string(&feed.to_value())
    }

    fn export_to(dir: &Path, answers: Vec<Answer>) -> (Result<u8, Error>, PathBuf) {
        let na = FakeNa::start(answers);
        let output = dir.join("feed.json");
        let args = FeedArgs::from_args(
            &["gm", "feed"],
            &["export", "--na", &na.url(), "--issuer", "alpha", "--output", output.to_str().unwrap(), "--json"],
        )
        .unwrap();
        let result = run(args);
        let seen = na.finish();
        assert_eq!(seen[0].target, "/genesis");
        assert_eq!(seen[1].target, "/sovereign-revocation-feed?issuer_sovereign_id=alpha");
        (result, output)
    }

    #[test]
    fn export_writes_only_a_feed_signed_by_the_genesis_na_key() {
        let dir = std::env::temp_dir().join(format!("gm-feed-export-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let na = SigningKey::from_seed(&[7u8; 32]);
        let impostor = SigningKey::from_seed(&[6u8; 32]);
        let genesis = genesis_body(&na.public_key().to_b64());
        let (result, output) =
            export_to(&dir, vec![Answer::json(200, &genesis), Answer::json(200, &signed_feed(&impostor))]);
        let err = result.unwrap_err();
        assert_eq!(err.exit_code(), EXIT_CHECK_FAILED);
        assert!(err.to_string().ends_with("nothing written"), "{err}");
        assert!(!output.exists());
        let (result, output) = export_to(&dir, vec![Answer::json(200, &genesis), Answer::json(200, &signed_feed(&na))]);
        assert_eq!(result.unwrap(), 0);
        let written = RevocationFeed::from_value(&crate::cli::input::read_json(&output).unwrap()).unwrap();
        assert!(written.check_signatures(&[na.public_key()]).is_valid());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
