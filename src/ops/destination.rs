//! Backup destinations: a local folder (a path) or an S3 prefix (`s3://bucket/prefix`). A
//! [`Destination`] is one `[[backup.destinations]]` of gm.toml, validated by `config`; a bare
//! `s3://` URL on the command line uses the configured destination it falls under (its endpoint,
//! credentials and lock), else the standard AWS environment variables ([`AwsEnv`]), as every S3
//! tool does.
//!
//! Credentials come from a file (mode 0600 or stricter), a systemd credential or the environment:
//! never from argv, never logged. Each [`RemoteTarget`] remembers where its came from, so a
//! refusal can say which source to fix without showing the secret.
//!
//! Must not: parse gm.toml (config does) or send requests beyond building the [`Remote`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::backup_remote::{ObjectLock, RemoteTarget};
use super::s3::{Credentials, Endpoint, Remote, S3Url};

/// The AWS variables gm reads, as every S3 tool does (`AWS_ACCESS_KEY_ID`, …), and systemd's
/// `CREDENTIALS_DIRECTORY`.
#[derive(Debug, Clone, Default)]
pub(crate) struct AwsEnv {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<String>,
    /// `AWS_REGION`, else `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    /// `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// `CREDENTIALS_DIRECTORY` (set by systemd for `LoadCredential=`).
    pub credentials_directory: Option<PathBuf>,
}

/// Where a destination's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CredentialSource {
    /// A `KEY=VALUE` file (mode 0600 or stricter).
    File(PathBuf),
    /// A systemd credential of this name, in `$CREDENTIALS_DIRECTORY`, same format.
    Systemd(String),
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    Environment,
}

/// One S3 destination, as configured (or made up for a bare URL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Destination {
    /// `[a-z0-9-]` name, or the URL for a bare URL.
    pub name: String,
    /// Bucket and prefix.
    pub url: S3Url,
    /// Endpoint URL; else `AWS_ENDPOINT_URL`, else AWS's regional endpoint.
    pub endpoint: Option<String>,
    /// Signing region; else `AWS_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Path-style addressing; default: true unless the endpoint is AWS's.
    pub path_style: Option<bool>,
    /// Where the credentials come from.
    pub credentials: CredentialSource,
    /// Object Lock retention to set on upload.
    pub lock: Option<ObjectLock>,
}

/// A destination that cannot be used, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DestinationError {
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: String,
}

impl Destination {
    /// The destination a bare URL means when no configured one covers it.
    pub(crate) fn ad_hoc(url: &S3Url) -> Destination {
        Destination {
            name: url.to_string(),
            url: url.clone(),
            endpoint: None,
            region: None,
            path_style: None,
            credentials: CredentialSource::Environment,
            lock: None,
        }
    }

    /// Connects to the bucket at `prefix` (this destination's URL or one under it): endpoint,
    /// region and credentials resolved, nothing sent yet.
    pub(crate) fn target(&self, prefix: &S3Url, env: &AwsEnv) -> Result<RemoteTarget, DestinationError> {
        let region = self.region.clone().or_else(|| env.region.clone()).unwrap_or_else(|| "us-east-1".to_string());
        let endpoint_url = self
            .endpoint
            .clone()
            .or_else(|| env.endpoint_url.clone())
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let on_aws = url::Url::parse(&endpoint_url)
            .ok()
            .and_then(|u| u.host_str().map(|h| h.ends_with(".amazonaws.com")))
            .unwrap_or(false);
        let endpoint = Endpoint {
            url: endpoint_url.trim_end_matches('/').to_string(),
            region,
            path_style: self.path_style.unwrap_or(!on_aws),
        };
        let credentials = self.credentials(env)?;
        let remote = Remote::new(endpoint, &prefix.bucket, credentials).map_err(|message| DestinationError {
            message: format!("destination {}: {message}", self.name),
            hint: "fix endpoint (or AWS_ENDPOINT_URL), region and path_style of [[backup.destinations]] in gm.toml"
                .into(),
        })?;
        Ok(RemoteTarget { name: self.name.clone(), remote: Arc::new(remote), prefix: prefix.clone(), lock: self.lock })
    }

    fn credentials(&self, env: &AwsEnv) -> Result<Credentials, DestinationError> {
        match &self.credentials {
            CredentialSource::File(path) => {
                read_credentials_file(path, true, &format!("credentials_file {}", path.display()))
            }
            CredentialSource::Systemd(name) => {
                let Some(dir) = &env.credentials_directory else {
                    return Err(DestinationError {
                        message: format!(
                            "destination {}: credential {name:?} is configured but $CREDENTIALS_DIRECTORY is not set",
                            self.name
                        ),
                        hint: format!(
                            "run gm under systemd with LoadCredential={name}:… (or LoadCredentialEncrypted=), or use credentials_file"
                        ),
                    });
                };
                read_credentials_file(&dir.join(name), false, &format!("systemd credential {name}"))
            }
            CredentialSource::Environment => match (env.access_key_id.as_deref(), env.secret_access_key.as_deref()) {
                (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Ok(Credentials::new(
                    id.to_string(),
                    secret.to_string(),
                    env.session_token.clone(),
                    "the environment (AWS_ACCESS_KEY_ID)".into(),
                )),
                _ => Err(DestinationError {
                    message: format!("destination {}: no S3 credentials", self.name),
                    hint: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary \
                               credentials), or configure the destination in gm.toml ([[backup.destinations]] with \
                               credentials_file or credential)"
                        .into(),
                }),
            },
        }
    }
}

/// Reads `AWS_ACCESS_KEY_ID=…`, `AWS_SECRET_ACCESS_KEY=…` and optionally `AWS_SESSION_TOKEN=…`
/// lines (`#` comments, blank lines and an `export ` prefix allowed). With `private`, a file
/// others may read is refused.
fn read_credentials_file(path: &Path, private: bool, source: &str) -> Result<Credentials, DestinationError> {
    let refuse = |message: String, hint: &str| Err(DestinationError { message, hint: hint.to_string() });
    if private {
        match crate::files::private::mode_of(path) {
            Ok(mode) if mode & 0o077 != 0 => {
                return refuse(
                    format!("{source} is readable by others (mode {:o})", mode & 0o777),
                    &format!("chmod 600 {}", path.display()),
                )
            }
            Ok(_) => {}
            Err(e) => {
                return refuse(
                    format!("cannot read {source}: {e}"),
                    "create it with AWS_ACCESS_KEY_ID=… and AWS_SECRET_ACCESS_KEY=… lines, mode 0600",
                )
            }
        }
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return refuse(
                format!("cannot read {source}: {e}"),
                "create it with AWS_ACCESS_KEY_ID=… and AWS_SECRET_ACCESS_KEY=… lines, mode 0600",
            )
        }
    };
    let (mut id, mut secret, mut token) = (None, None, None);
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            // The line may hold the secret: name it by number only.
            return refuse(
                format!("{source}: line {} is not KEY=VALUE", n + 1),
                "write AWS_ACCESS_KEY_ID=… and AWS_SECRET_ACCESS_KEY=… lines",
            );
        };
        let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
        match k.trim() {
            "AWS_ACCESS_KEY_ID" => id = Some(v),
            "AWS_SECRET_ACCESS_KEY" => secret = Some(v),
            "AWS_SESSION_TOKEN" => token = Some(v),
            other => {
                return refuse(
                    format!("{source}: line {} sets {other:?}, which gm does not read", n + 1),
                    "only AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN belong there",
                )
            }
        }
    }
    match (id, secret) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
            Ok(Credentials::new(id, secret, token, source.to_string()))
        }
        _ => {
            refuse(format!("{source} lacks AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY"), "write both lines, KEY=VALUE")
        }
    }
}

/// The destination for `url`: the configured one whose URL covers it (the longest), else an ad
/// hoc one on the environment's credentials.
pub(crate) fn for_url(url: &S3Url, configured: &[Destination]) -> Destination {
    configured
        .iter()
        .filter(|d| url.is_under(&d.url))
        .max_by_key(|d| d.url.key.len())
        .cloned()
        .unwrap_or_else(|| Destination::ad_hoc(url))
}

/// The configured destination called `name`.
pub(crate) fn named<'a>(name: &str, configured: &'a [Destination]) -> Result<&'a Destination, DestinationError> {
    configured.iter().find(|d| d.name == name).ok_or_else(|| DestinationError {
        message: format!("no destination named {name:?}"),
        hint: if configured.is_empty() {
            "declare it as [[backup.destinations]] in gm.toml, or pass an s3://bucket/prefix URL".to_string()
        } else {
            format!(
                "configured: {}; or pass an s3://bucket/prefix URL",
                configured.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", ")
            )
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gm-dest-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_a_private_credentials_file_and_refuses_a_shared_one() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp("creds");
        let f = dir.join("s3.env");
        std::fs::write(&f, "# offsite\nexport AWS_ACCESS_KEY_ID=AKID\nAWS_SECRET_ACCESS_KEY=\"sek=ret\"\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = read_credentials_file(&f, true, "credentials_file x").unwrap();
        assert_eq!(c.secret(), "sek=ret");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_credentials_file(&f, true, "credentials_file x").unwrap_err();
        assert!(e.message.contains("readable by others") && e.hint.contains("chmod 600"), "{e:?}");
        std::fs::write(&f, "AWS_ACCESS_KEY_ID=a\nthe-secret-itself\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = read_credentials_file(&f, true, "credentials_file x").unwrap_err();
        assert!(e.message.contains("line 2") && !e.message.contains("the-secret-itself"), "{e:?}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_url_uses_the_longest_configured_destination_covering_it() {
        let d = |name: &str, url: &str| Destination {
            name: name.into(),
            endpoint: Some(format!("http://{name}.example")),
            ..Destination::ad_hoc(&S3Url::parse(url).unwrap())
        };
        let configured = vec![d("bucket", "s3://gm-b"), d("deep", "s3://gm-b/acme/prod"), d("other", "s3://gm-c")];
        let pick = |u: &str| for_url(&S3Url::parse(u).unwrap(), &configured).name;
        assert_eq!(pick("s3://gm-b/acme/prod/gm-x.tar.gz.age"), "deep");
        assert_eq!(pick("s3://gm-b/acme/prodx"), "bucket");
        assert_eq!(pick("s3://gm-z/x"), "s3://gm-z/x");
        assert!(named("nope", &configured).unwrap_err().hint.contains("bucket, deep, other"));
    }

    #[test]
    fn environment_credentials_and_endpoint_defaults() {
        let url = S3Url::parse("s3://gm-backups/acme").unwrap();
        let d = Destination::ad_hoc(&url);
        let e = d.target(&url, &AwsEnv::default()).unwrap_err();
        assert!(e.hint.contains("AWS_ACCESS_KEY_ID"), "{e:?}");
        let env = AwsEnv {
            access_key_id: Some("AKID".into()),
            secret_access_key: Some("secret".into()),
            region: Some("eu-west-1".into()),
            ..AwsEnv::default()
        };
        let t = d.target(&url, &env).unwrap();
        assert_eq!(t.remote.endpoint(), "https://s3.eu-west-1.amazonaws.com");
        assert!(format!("{:?}", t.remote).contains("environment"));
        let env = AwsEnv { endpoint_url: Some("http://127.0.0.1:9000/".into()), ..env };
        assert_eq!(d.target(&url, &env).unwrap().remote.endpoint(), "http://127.0.0.1:9000");
    }
}
