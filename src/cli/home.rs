//! The gm home of a command that reads one: `--home`, else `$GM_HOME`, else `/etc/gm`, refused with
//! a clear error when that folder does not exist (issue 15 item 4). Without this check a mistyped
//! home reads as an empty one: `gm operator list` said "0 operator key(s)" and `gm cron list` "no
//! jobs", both exit 0. Owns only the existence check; what a home holds is `config`'s business.
//! Commands that create a home (`gm quickstart`) or may run without one (`gm managed verify` on a
//! drill host) do not use it.

use std::path::{Path, PathBuf};

use crate::config::{self, Env};

use super::error::{Error, Named};

/// Resolves the home as [`config::resolve_home`] does and refuses one that is not an existing
/// folder, naming where the path came from and how to make a home.
pub(crate) fn existing(flag: Option<&Path>, env: &Env) -> Result<PathBuf, Error> {
    let home = config::resolve_home(flag, env);
    if home.is_dir() {
        return Ok(home);
    }
    let source = if flag.is_some() {
        "--home"
    } else if env.get("GM_HOME").is_some() {
        "$GM_HOME"
    } else {
        "the default home"
    };
    Err(Named::NoHome { home: home.clone(), source, not_a_folder: home.exists() }.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_home_is_refused_and_names_its_source() {
        let env = Env::from_pairs(&[("GM_HOME", "/nonexistent/gm-home-env")]);
        let e = existing(Some(Path::new("/nonexistent/gm-home-flag")), &env).unwrap_err();
        assert_eq!(e.to_string(), "gm home /nonexistent/gm-home-flag (--home) does not exist");
        assert!(e.hint().unwrap().contains("gm quickstart --home /nonexistent/gm-home-flag"));
        let e = existing(None, &env).unwrap_err();
        assert_eq!(e.to_string(), "gm home /nonexistent/gm-home-env ($GM_HOME) does not exist");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn an_existing_folder_is_the_home_and_a_file_is_not() {
        let dir = std::env::temp_dir();
        assert_eq!(existing(Some(&dir), &Env::from_pairs(&[])).unwrap(), dir);
        let file = std::env::current_exe().unwrap();
        let e = existing(Some(&file), &Env::from_pairs(&[])).unwrap_err();
        assert!(e.to_string().ends_with("(--home) is not a folder"), "{e}");
    }
}
