//! The offline signing round trip of customer-held custody (`docs/custody.md`): `gm treaty issue
//! --unsigned-out` (the NA prepares, stores nothing) → `gm sign` with the NA key → `gm treaty
//! publish` (the NA verifies against its genesis key and stores), against a real `gm serve`, with
//! real keys and signatures. Wrong key, altered object, replay and expiry are refused with the
//! documented error body, and leave no treaty behind.

use std::path::{Path, PathBuf};

use gm::crypto::canonical::canonical_string;
use gm::crypto::keys::{load_public_key, load_signing_key};
use gm::json::{parse_str, Value};
use gm::model::treaty::RecognitionTreaty;
use gm::model::SignedObject;

use crate::harness::{Gm, GmServer, TempDir};
use crate::signer::Operator;

const PUBLISH: &str = "/admin/gm/recognition-treaties/publish";
const WRONG_KEY: &str = "Recognition treaty signature does not verify with this NA's genesis key";

fn json_file(path: &Path) -> Value {
    parse_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn get<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.as_object().and_then(|m| m.get(k)).unwrap_or(&Value::Null)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Rows in `recognition_treaties` and `recognition_treaty_issued` events.
fn stored(home: &Path) -> (i64, i64) {
    let c = rusqlite::Connection::open(home.join("na.db")).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let n = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    (
        n("SELECT COUNT(*) FROM recognition_treaties"),
        n("SELECT COUNT(*) FROM audit_events WHERE event_json LIKE '%\"event_type\": \"recognition_treaty_issued\"%'"),
    )
}

struct Sovereign {
    _dir: TempDir,
    home: PathBuf,
    work: PathBuf,
    server: GmServer,
    url: String,
    beta_pub: PathBuf,
    other_key: PathBuf,
}

/// alpha-mesh served, beta-mesh's NA public key, and an NA key that is not alpha's.
fn sovereign(label: &str) -> Sovereign {
    let dir = TempDir::new(label);
    let home = dir.join("alpha");
    Gm::new(&["quickstart", "--home", p(&home), "--network-name", "alpha-mesh", "--no-serve"]).expect(0);
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let beta = work.join("beta-na");
    Gm::new(&["keygen", "network-authority", "--output", p(&beta), "--key-id", "beta"]).expect(0);
    let other = work.join("other-na");
    Gm::new(&["keygen", "network-authority", "--output", p(&other), "--key-id", "na-local"]).expect(0);
    let server = GmServer::start(&home, &["--no-scheduler"]);
    let url = format!("http://{}", server.addr);
    Sovereign {
        _dir: dir,
        home,
        work,
        server,
        url,
        beta_pub: beta.with_extension("pub"),
        other_key: other.with_extension("key"),
    }
}

impl Sovereign {
    /// `gm treaty issue --unsigned-out` into `work/<name>`.
    fn prepare(&self, name: &str) -> PathBuf {
        let out = self.work.join(name);
        let (stdout, _) = Gm::new(&[
            "treaty",
            "issue",
            "--na",
            &self.url,
            "--home",
            p(&self.home),
            "--subject",
            "beta-mesh",
            "--subject-public-key",
            p(&self.beta_pub),
            "--allowed-role",
            "client",
            "--unsigned-out",
            p(&out),
        ])
        .expect(0);
        assert!(stdout.contains("not signed, not stored") && stdout.contains("gm sign --key"), "{stdout}");
        out
    }

    fn publish(&self, file: &Path, status: i32) -> (String, String) {
        Gm::new(&["treaty", "publish", "--na", &self.url, "--home", p(&self.home), p(file)]).expect(status)
    }

    fn publish_raw(&self, treaty: &Value) -> crate::harness::HttpResponse {
        let body = format!("{{\"treaty\":{}}}", canonical_string(treaty));
        Operator::sandbox(&self.home).send(self.server.addr, "POST", PUBLISH, &body)
    }
}

#[test]
fn a_treaty_prepared_signed_offline_and_published_is_served_verified_and_in_the_connectome() {
    let s = sovereign("offline-round-trip");
    let request = s.prepare("treaty.request.json");
    assert_eq!(stored(&s.home), (0, 0), "prepare stores nothing");

    // The request: the envelope and exactly the unsigned treaty the NA would have signed.
    let envelope = json_file(&request);
    let na_pub = load_public_key(&s.home.join("keys/na.pub")).unwrap().to_b64();
    assert_eq!(get(&envelope, "format").as_str(), Some("gm-signing-request"));
    assert_eq!(get(&envelope, "version").as_i64(), Some(1));
    assert_eq!(get(&envelope, "kind").as_str(), Some("treaty"));
    assert_eq!(get(&envelope, "network_name").as_str(), Some("alpha-mesh"));
    assert_eq!(get(&envelope, "na_public_key").as_str(), Some(na_pub.as_str()));
    assert_eq!(get(&envelope, "na_url").as_str(), Some(s.url.as_str()));
    let object = get(&envelope, "object");
    assert_eq!(canonical_string(get(object, "signatures")), "[]");
    assert_eq!(get(object, "issuer_sovereign_id").as_str(), Some("alpha-mesh"));
    assert_eq!(get(object, "issued_by").as_str(), get(&envelope, "na_key_id").as_str());
    let treaty_id = get(object, "treaty_id").as_str().unwrap().to_string();

    // The key holder signs offline with the NA key.
    let signed = s.work.join("treaty.signed.json");
    let na_key = s.home.join("keys/na.key");
    let (stdout, _) = Gm::new(&["sign", "--key", p(&na_key), p(&request), "--output", p(&signed)]).expect(0);
    assert!(stdout.contains(&treaty_id) && stdout.contains("gm treaty publish"), "{stdout}");
    let reply = json_file(&signed);
    assert_eq!(get(&reply, "format").as_str(), Some("gm-signed-object"));
    let signed_treaty = RecognitionTreaty::from_value(get(&reply, "object")).unwrap();
    assert_eq!(signed_treaty.canonical_bytes(), RecognitionTreaty::from_value(object).unwrap().canonical_bytes());
    // Signing the reply again is refused.
    let (_, stderr) =
        Gm::new(&["sign", "--key", p(&na_key), p(&signed), "--output", p(&s.work.join("x.json"))]).expect(2);
    assert!(stderr.contains("is already signed"), "{stderr}");
    // Publishing the unsigned request is refused before anything is sent.
    let (_, stderr) = s.publish(&request, 2);
    assert!(stderr.contains("nobody has signed yet"), "{stderr}");

    // The operator publishes it.
    let (stdout, _) = s.publish(&signed, 0);
    assert!(stdout.contains(&format!("treaty id: {treaty_id}")) && stdout.contains("signed offline"), "{stdout}");
    assert_eq!(stored(&s.home), (1, 1));

    // Served as stored, exactly the signed object, and its signature checks against /genesis.
    let row = s.server.get(&format!("/recognition-treaties/{treaty_id}"));
    assert_eq!(row.status, 200, "{}", row.text());
    let row = parse_str(&row.text()).unwrap();
    assert_eq!(get(&row, "status").as_str(), Some("active"));
    assert_eq!(canonical_string(get(&row, "treaty")), canonical_string(&signed_treaty.to_value()));
    let (stdout, _) = Gm::new(&["treaty", "inspect", &treaty_id, "--na", &s.url, "--json"]).expect(0);
    assert!(stdout.contains("\"verified\":true"), "{stdout}");
    let list = s.server.get("/recognition-treaties?status=active");
    assert!(list.text().contains(&treaty_id), "{}", list.text());
    let verdict = crate::signer::post_json(
        s.server.addr,
        "/recognition-treaties/verify",
        &format!("{{\"treaty\":{}}}", canonical_string(&signed_treaty.to_value())),
    );
    assert!(verdict.text().contains("\"accepted\":true"), "{}", verdict.text());

    // The connectome shows the edge alpha-mesh → beta-mesh.
    let c = parse_str(&s.server.get("/connectome.json").text()).unwrap();
    assert_eq!(get(get(&c, "summary"), "active_edge_count").as_i64(), Some(1), "{}", canonical_string(&c));
    let edges = canonical_string(get(&c, "recognition_edges"));
    assert!(edges.contains(&treaty_id) && edges.contains("beta-mesh"), "{edges}");
    let path = s.server.get("/connectome/trust-path?from=alpha-mesh&to=beta-mesh");
    assert!(path.text().contains("\"trusted\":true"), "{}", path.text());

    // The audit event names the operator and says the treaty was signed offline.
    let c = rusqlite::Connection::open(s.home.join("na.db")).unwrap();
    let event: String = c
        .query_row("SELECT event_json FROM audit_events WHERE event_json LIKE '%recognition_treaty_issued%'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        event.contains("\"operator_key_id\": \"operator-local\"")
            && event.contains("\"signed_offline\": true")
            && event.contains(&treaty_id),
        "{event}"
    );

    // Replayed: the same treaty id again is refused and nothing changes.
    let (_, stderr) = s.publish(&signed, 1);
    assert!(stderr.contains("Recognition treaty already exists"), "{stderr}");
    let r = s.publish_raw(&signed_treaty.to_value());
    assert_eq!((r.status, r.text()), (409, "{\"error\":\"Recognition treaty already exists\"}\n".to_string()));
    assert_eq!(stored(&s.home), (1, 1));
}

#[test]
fn a_wrong_key_an_altered_treaty_and_an_expired_treaty_are_refused_and_nothing_is_stored() {
    let s = sovereign("offline-refusals");
    let request = s.prepare("treaty.request.json");
    let object = get(&json_file(&request), "object").clone();

    // gm sign refuses a key that is not the one the request names, and writes nothing.
    let refused = s.work.join("refused.json");
    let (_, stderr) = Gm::new(&["sign", "--key", p(&s.other_key), p(&request), "--output", p(&refused)]).expect(2);
    assert!(stderr.contains("is not the NA key this request must be signed with"), "{stderr}");
    assert!(!refused.exists());

    // A treaty signed with another key (gm sign on the bare object) is refused by the NA.
    let bare = s.work.join("bare.json");
    std::fs::write(&bare, canonical_string(&object)).unwrap();
    let wrong = s.work.join("wrong-key.json");
    Gm::new(&["sign", "--key", p(&s.other_key), "--key-id", "na-local", p(&bare), "--output", p(&wrong)]).expect(0);
    let (_, stderr) = s.publish(&wrong, 1);
    assert!(stderr.contains(WRONG_KEY), "{stderr}");
    let r = s.publish_raw(&json_file(&wrong));
    assert_eq!((r.status, r.text()), (400, format!("{{\"error\":\"{WRONG_KEY}\"}}\n")));

    // Altered after signing: another subject under the NA's own signature.
    let na_key = load_signing_key(&s.home.join("keys/na.key")).unwrap();
    let mut treaty = RecognitionTreaty::from_value(&object).unwrap();
    treaty.sign(&na_key, "na-local");
    let mut altered = treaty.clone();
    altered.subject_sovereign_id = "mallory-mesh".to_string();
    let r = s.publish_raw(&altered.to_value());
    assert_eq!((r.status, r.text()), (400, format!("{{\"error\":\"{WRONG_KEY}\"}}\n")));
    // Unsigned, or issued in another sovereign's name (signed by this NA's key), is refused too.
    let mut unsigned = treaty.clone();
    unsigned.signatures.clear();
    let r = s.publish_raw(&unsigned.to_value());
    assert_eq!((r.status, r.text()), (400, "{\"error\":\"Recognition treaty is not signed\"}\n".to_string()));
    let mut foreign = RecognitionTreaty::from_value(&object).unwrap();
    foreign.issuer_sovereign_id = "beta-mesh".to_string();
    foreign.sign(&na_key, "na-local");
    let r = s.publish_raw(&foreign.to_value());
    assert_eq!(
        (r.status, r.text()),
        (400, "{\"error\":\"issuer_sovereign_id must match this sovereign\"}\n".to_string())
    );

    // Expired: correctly signed by the NA key, but its validity ended an hour ago.
    let mut expired = RecognitionTreaty::from_value(&object).unwrap();
    let hours_ago = |h: i64| {
        gm::model::timestamp::ModelTime::parse_model_str(
            &(chrono::Utc::now() - chrono::Duration::hours(h)).to_rfc3339(),
        )
        .unwrap()
    };
    expired.issued_at = hours_ago(3);
    expired.valid_from = hours_ago(3);
    expired.expires_at = hours_ago(1);
    expired.sign(&na_key, "na-local");
    let expired_file = s.work.join("expired.json");
    std::fs::write(&expired_file, canonical_string(&expired.to_value())).unwrap();
    let (_, stderr) = s.publish(&expired_file, 1);
    assert!(stderr.contains("Recognition treaty has expired"), "{stderr}");

    assert_eq!(stored(&s.home), (0, 0), "no refusal stored a treaty or an event");
    // The untouched, correctly signed treaty still publishes: the refusals were about the object.
    let good = s.work.join("good.json");
    std::fs::write(&good, canonical_string(&treaty.to_value())).unwrap();
    s.publish(&good, 0);
    assert_eq!(stored(&s.home), (1, 1));
}

#[test]
fn a_policy_prepared_signed_offline_and_published_becomes_the_active_policy_once() {
    let s = sovereign("offline-policy");
    let request = s.work.join("policy.request.json");
    let (stdout, _) = Gm::new(&[
        "admin",
        "policy",
        "set",
        "--na",
        &s.url,
        "--home",
        p(&s.home),
        "--policy-id",
        "policy-offline-1",
        "--min-client-version",
        "0.16.0",
        "--max-hops",
        "3",
        "--unsigned-out",
        p(&request),
    ])
    .expect(0);
    assert!(stdout.contains("gm admin policy publish"), "{stdout}");
    let envelope = json_file(&request);
    assert_eq!(get(&envelope, "kind").as_str(), Some("policy"));
    assert_eq!(get(get(&envelope, "object"), "policy_id").as_str(), Some("policy-offline-1"));
    assert!(!s.server.get("/policy").text().contains("policy-offline-1"), "prepare activates nothing");

    // Another key is refused by gm sign, and by the NA when signed around gm sign's check.
    let (_, stderr) = Gm::new(&["sign", "--key", p(&s.other_key), p(&request)]).expect(2);
    assert!(stderr.contains("is not the NA key this request must be signed with"), "{stderr}");
    let bare = s.work.join("bare-policy.json");
    std::fs::write(&bare, canonical_string(get(&envelope, "object"))).unwrap();
    let wrong = s.work.join("wrong-policy.json");
    Gm::new(&["sign", "--key", p(&s.other_key), "--key-id", "na-local", p(&bare), "--output", p(&wrong)]).expect(0);
    let publish = |file: &Path, status: i32| {
        Gm::new(&["admin", "policy", "publish", "--na", &s.url, "--home", p(&s.home), p(file)]).expect(status)
    };
    let (_, stderr) = publish(&wrong, 1);
    assert!(stderr.contains("Policy signature does not verify with this NA's genesis key"), "{stderr}");

    let signed = s.work.join("policy.signed.json");
    let na_key = s.home.join("keys/na.key");
    Gm::new(&["sign", "--key", p(&na_key), p(&request), "--output", p(&signed)]).expect(0);
    let (stdout, _) = publish(&signed, 0);
    assert!(stdout.contains("published policy policy-offline-1") && stdout.contains("signed offline"), "{stdout}");
    let served = s.work.join("served-policy.json");
    std::fs::write(&served, s.server.get("/policy").text()).unwrap();
    assert!(std::fs::read_to_string(&served).unwrap().contains("policy-offline-1"));
    let na_pub = s.home.join("keys/na.pub");
    Gm::new(&["verify", "--kind", "policy", "--public-key", p(&na_pub), p(&served)]).expect(0);

    // Replayed: the same policy id again is refused, so a later decision cannot be rolled over.
    let (_, stderr) = publish(&signed, 1);
    assert!(stderr.contains("Policy already exists"), "{stderr}");
    let c = rusqlite::Connection::open(s.home.join("na.db")).unwrap();
    let events: Vec<String> = c
        .prepare("SELECT event_json FROM audit_events WHERE event_json LIKE '%\"event_type\": \"policy_published\"%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].contains("\"signed_offline\": true") && events[0].contains("operator-local"), "{events:?}");
}
