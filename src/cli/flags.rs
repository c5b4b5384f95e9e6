//! Flag groups that several commands share, defined once: argh has no `flatten`, so each group is a
//! macro that takes a command's own argh struct and appends the group's fields (name, doc line,
//! default) plus an accessor that turns them into the typed value the command uses. The struct's
//! own fields pass through as raw tokens (argh reads `Vec<…>` and `Option<…>` syntactically, which a
//! `$ty:ty` fragment would hide), so its last field needs its trailing comma. A default or a
//! help line of a shared flag therefore lives here and nowhere else.
//!
//! Groups:
//! * [`na_command!`]: `--na`, `--ca-file`, `--operator-key`, `--operator-key-id`, `--sig`, `--json`,
//!   `--home` for commands that send signed admin requests to a running NA; accessor `connection()`.
//! * [`decrypting_command!`]: `--identity`, `--passphrase-file`, and the backup-signature trust
//!   `--signing-public-key`, `--allow-unsigned`, for commands that open a backup; accessor
//!   `decryption_flags()`.
//! * [`encrypting_command!`]: `--recipient`, `--recipients-file`, `--passphrase-file` for commands
//!   that write an age-encrypted file; accessor `encryption_flags()`.
//!
//! Must not: parse or load anything. The accessors only borrow; loading keys and checking
//! combinations is the caller's first step (`na_options::connect`, `backup::decryption`,
//! `backup::encryption_key`).

/// The operator key id the NA's key table names when none is given: the id `gm quickstart` and
/// `gm operator` write for the first operator key.
pub(crate) const DEFAULT_OPERATOR_KEY_ID: &str = "operator-local";

/// Appends the NA connection flags to an argh struct and gives it `fn connection(&self) ->
/// na_options::Connection<'_>`.
macro_rules! na_command {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($fields:tt)*
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $($fields)*
            /// NA base URL, e.g. http://127.0.0.1:8443 (required)
            #[argh(option)]
            na: String,
            /// PEM bundle of a private CA (self-hosted PKI): an https NA is trusted only if one of its certificates issued the NA's, and the host's CA roots are not used (default: the host's CA bundle)
            #[argh(option)]
            ca_file: Option<std::path::PathBuf>,
            /// operator private key file, upstream format (default HOME/offline/operator.key)
            #[argh(option)]
            operator_key: Option<std::path::PathBuf>,
            /// operator key id, as named in the NA's OPERATOR_PUBLIC_KEYS_JSON (default operator-local)
            #[argh(option, default = "String::from(crate::cli::flags::DEFAULT_OPERATOR_KEY_ID)")]
            operator_key_id: String,
            /// admin signature version: v2 (gm, upstream 1.x NAs) or v1 (only for an upstream 0.16 NA: replayable on other admin routes) (default v2)
            #[argh(
                option,
                default = "crate::client::admin::SigVersion::V2",
                from_str_fn($crate::cli::na_options::parse_sig)
            )]
            sig: $crate::client::admin::SigVersion,
            /// print the result as JSON
            #[argh(switch)]
            json: bool,
            /// gm home (default $GM_HOME, else /etc/gm): supplies the default operator key
            #[argh(option)]
            home: Option<std::path::PathBuf>,
        }

        impl $name {
            /// The NA connection flags, borrowed.
            fn connection(&self) -> $crate::cli::na_options::Connection<'_> {
                $crate::cli::na_options::Connection {
                    na: &self.na,
                    ca_file: self.ca_file.as_deref(),
                    operator_key: self.operator_key.as_deref(),
                    operator_key_id: &self.operator_key_id,
                    sig: self.sig,
                    json: self.json,
                    home: self.home.as_deref(),
                }
            }
        }
    };
}

/// Appends the backup decryption flags to an argh struct and gives it `fn decryption_flags(&self)
/// -> flags::Decryption<'_>`.
macro_rules! decrypting_command {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($fields:tt)*
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $($fields)*
            /// age identity file (AGE-SECRET-KEY-1…) the backup was encrypted to
            #[argh(option)]
            identity: Option<std::path::PathBuf>,
            /// passphrase file, for a backup encrypted with a passphrase (customer-held custody; scrypt)
            #[argh(option)]
            passphrase_file: Option<std::path::PathBuf>,
            /// pinned backup-signing public key, base64 or .pub file (default: [backup] signing_public_key, else the public half of [backup] signing_key)
            #[argh(option)]
            signing_public_key: Option<String>,
            /// accept a backup without a signature (old gm versions, upstream .db copies): warned and recorded
            #[argh(switch)]
            allow_unsigned: bool,
        }

        impl $name {
            /// The decryption flags, borrowed.
            fn decryption_flags(&self) -> $crate::cli::flags::Decryption<'_> {
                $crate::cli::flags::Decryption {
                    identity: self.identity.as_deref(),
                    passphrase_file: self.passphrase_file.as_deref(),
                }
            }
        }
    };
}

/// Appends the age encryption flags to an argh struct and gives it `fn encryption_flags(&self) ->
/// flags::Encryption<'_>`.
macro_rules! encrypting_command {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($fields:tt)*
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $($fields)*
            /// age X25519 recipient (age1…), repeatable
            #[argh(option)]
            recipient: Vec<String>,
            /// file of age recipients, one per line
            #[argh(option)]
            recipients_file: Option<std::path::PathBuf>,
            /// passphrase file (customer-held custody; scrypt)
            #[argh(option)]
            passphrase_file: Option<std::path::PathBuf>,
        }

        impl $name {
            /// The encryption flags, borrowed.
            fn encryption_flags(&self) -> $crate::cli::flags::Encryption<'_> {
                $crate::cli::flags::Encryption {
                    recipients: &self.recipient,
                    recipients_file: self.recipients_file.as_deref(),
                    passphrase_file: self.passphrase_file.as_deref(),
                }
            }
        }
    };
}

pub(crate) use decrypting_command;
pub(crate) use encrypting_command;
pub(crate) use na_command;

/// `--identity` and `--passphrase-file` as given.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decryption<'a> {
    /// `--identity`: an age identity file.
    pub identity: Option<&'a std::path::Path>,
    /// `--passphrase-file`.
    pub passphrase_file: Option<&'a std::path::Path>,
}

/// `--recipient`, `--recipients-file` and `--passphrase-file` as given.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Encryption<'a> {
    /// `--recipient`, repeatable.
    pub recipients: &'a [String],
    /// `--recipients-file`.
    pub recipients_file: Option<&'a std::path::Path>,
    /// `--passphrase-file`.
    pub passphrase_file: Option<&'a std::path::Path>,
}
