#!/usr/bin/env bash
# Installs gm on a systemd host: the binary as /usr/local/bin/gm, the `gm` system user and group
# (gm-na.service) and the `gm-probe` one (gm-probe.service), /etc/gm (0750 root:gm, read-only to
# the service), /etc/gm-probe (0700 root: the probe's target, root key and ping URL, handed to the
# service by systemd), /var/lib/gm and the folders the default jobs write to (backups, drills,
# exports; 0700 gm:gm), and the units of systemd/ in /etc/systemd/system, then `systemctl
# daemon-reload` when systemd is running and a unit changed. It neither enables nor starts anything.
#
# Inside /etc/gm it writes exactly two things and nothing else (never gm.toml, the genesis, the NA
# key or operators.json): the incident runbooks in /etc/gm/runbooks (where `gm readiness` looks
# for them; kept identical to docs/runbooks on every run), and, when /etc/gm/keys/backup-signing.key
# does not exist, the backup-signing key pair (`gm keygen backup-signing`, private key 0600 owner
# gm), because every backup must be signed with a key the backup folder never holds. It never
# touches what is inside /var/lib/gm.
#
# Idempotent: every step compares first and says "ok" when nothing needs doing; a second run
# changes nothing and says so. --prefix DIR installs the same layout under DIR (a test root or a
# package staging folder): there it creates no user and sets no owner, and prints what it would
# have done instead, because the users and groups of DIR are not this host's.
#
# --na-key-credential also installs the drop-in systemd/gm-na.service.d/na-key-credential.conf as
# /etc/systemd/system/gm-na.service.d/ and creates /etc/gm/credentials (0700 root): the managed
# model's NA key as an encrypted systemd credential (docs/custody.md). Only on request, because the
# unit cannot start until /etc/gm/credentials/na-key.cred exists (`systemd-creds encrypt`); without
# the flag an installed drop-in is left as it is.
#
# --uninstall removes what an install put in place: the binary, the shipped units (stopped and
# disabled first when systemd runs them), the credential drop-in and the shipped runbooks. It keeps, and says it keeps,
# everything that is data or trust material: /etc/gm (gm.toml, genesis, keys, operators.json),
# /etc/gm-probe, /var/lib/gm (database, ledger, backups, drills, exports), /var/lib/gm-probe, and
# the users and groups (files they own outlive them).
#
# Usage: scripts/install.sh [--binary PATH] [--prefix DIR] [--na-key-credential] [--uninstall]
#   --binary PATH  the gm to install (default: target/x86_64-unknown-linux-musl/release/gm from
#                  scripts/build-static.sh, else target/release/gm; CARGO_TARGET_DIR is honoured)
#   --prefix DIR   install under DIR instead of / (no useradd, no chown, no systemctl)
#   --na-key-credential  also install the drop-in that loads the NA key as a systemd credential
#   --uninstall    remove the binary, units and runbooks instead; data and keys stay
# Exit status: 0 installed or removed (or nothing to do), 2 could not install or remove.
set -euo pipefail
# Parents that mkdir -p creates (usr/local/bin under a prefix) must stay traversable whatever the
# caller's umask; the modes that matter are set explicitly below.
umask 022
repo="$(cd "$(dirname "$0")/.." && pwd)"

die() { echo "install: error: $1" >&2; [ -z "${2:-}" ] || echo "hint: $2" >&2; exit 2; }

binary=""
prefix=""
uninstall=0
credential=0
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) [ $# -ge 2 ] || die "--binary needs a path"; binary="$2"; shift 2 ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a folder"; prefix="$2"; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    --na-key-credential) credential=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1'" "scripts/install.sh [--binary PATH] [--prefix DIR] [--na-key-credential] [--uninstall]" ;;
  esac
done
[ "$uninstall" = 0 ] || [ -z "$binary" ] || die "--uninstall takes no --binary" "scripts/install.sh --uninstall [--prefix DIR]"
[ "$uninstall" = 0 ] || [ "$credential" = 0 ] || die "--uninstall takes no --na-key-credential" "scripts/install.sh --uninstall [--prefix DIR]"

# Validate everything before the first change.
if [ -z "$binary" ] && [ "$uninstall" = 0 ]; then
  target_dir="${CARGO_TARGET_DIR:-$repo/target}"
  for candidate in "$target_dir/x86_64-unknown-linux-musl/release/gm" "$target_dir/release/gm"; do
    if [ -x "$candidate" ]; then binary="$candidate"; break; fi
  done
  [ -n "$binary" ] || die "no built gm found under $target_dir" \
    "build it with scripts/build-static.sh (or cargo build --release), or pass --binary PATH"
fi
if [ "$uninstall" = 0 ] && { [ ! -f "$binary" ] || [ ! -x "$binary" ]; }; then
  die "--binary $binary is not an executable file"
fi
if [ -n "$prefix" ]; then
  mkdir -p "$prefix" || die "cannot create the prefix folder $prefix"
  prefix="$(cd "$prefix" && pwd)"
  [ "$prefix" != / ] || prefix=""
fi
if [ -z "$prefix" ] && [ "$(id -u)" != 0 ]; then
  if [ "$uninstall" = 1 ]; then die "uninstalling from / needs root" "run it with sudo"; fi
  die "installing into / needs root" "run it with sudo, or pass --prefix DIR to stage the layout elsewhere"
fi
units=("$repo"/systemd/*.service "$repo"/systemd/*.timer)
[ -e "${units[0]}" ] || die "no unit files in $repo/systemd"
credential_dropin=gm-na.service.d/na-key-credential.conf
[ "$credential" = 0 ] || [ -f "$repo/systemd/$credential_dropin" ] || die "$repo/systemd/$credential_dropin is missing"

changes=0
units_changed=0
say() { echo "$1"; }
changed() { echo "$1"; changes=$((changes + 1)); }

# ensure_user NAME HOME COMMENT: a system user and its group (no login, no home of its own).
ensure_user() {
  local name="$1" home="$2" comment="$3"
  if [ -n "$prefix" ]; then
    say "skip   user $name, group $name: not created under --prefix (would run: groupadd --system $name; useradd --system --gid $name --home-dir $home --no-create-home --shell /usr/sbin/nologin $name)"
    return
  fi
  if getent group "$name" >/dev/null; then
    say "ok     group $name"
  else
    groupadd --system "$name" || die "groupadd --system $name failed"
    changed "added  group $name"
  fi
  if getent passwd "$name" >/dev/null; then
    say "ok     user $name"
  else
    useradd --system --gid "$name" --home-dir "$home" --no-create-home --shell /usr/sbin/nologin \
      --comment "$comment" "$name" || die "useradd --system $name failed"
    changed "added  user $name"
  fi
}

# ensure_dir PATH MODE OWNER: creates PATH, then fixes its mode and (outside --prefix) its owner.
ensure_dir() {
  local path="$prefix$1" mode="$2" owner="$3" what=()
  if [ ! -d "$path" ]; then
    mkdir -p "$path" || die "cannot create $path"
    what+=("created")
  fi
  if [ "$(stat -c %a "$path")" != "${mode#0}" ]; then
    chmod "$mode" "$path" || die "cannot chmod $mode $path"
    what+=("mode $mode")
  fi
  if [ -z "$prefix" ]; then
    if [ "$(stat -c %U:%G "$path")" != "$owner" ]; then
      chown "$owner" "$path" || die "cannot chown $owner $path"
      what+=("owner $owner")
    fi
  fi
  local note=""
  [ -z "$prefix" ] || note=" (owner $owner not set under --prefix)"
  if [ ${#what[@]} -eq 0 ]; then
    say "ok     $1 $mode$note"
  else
    local joined="${what[0]}" item
    for item in "${what[@]:1}"; do joined+=", $item"; done
    changed "dir    $1: $joined$note"
  fi
}

# ensure_file SOURCE DEST MODE: installs SOURCE as DEST (root-owned) unless it is already identical.
# The copy is renamed into place, so a running gm keeps its old binary and never sees half a file.
ensure_file() {
  local src="$1" dest="$prefix$2" mode="$3"
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    if [ "$(stat -c %a "$dest")" = "${mode#0}" ]; then
      say "ok     $2"
      return 1
    fi
    chmod "$mode" "$dest" || die "cannot chmod $mode $dest"
    changed "mode   $2 $mode"
    return 0
  fi
  mkdir -p "$(dirname "$dest")" || die "cannot create $(dirname "$dest")"
  install -m "$mode" "$src" "$dest.tmp" || die "cannot write $dest.tmp"
  mv -f "$dest.tmp" "$dest" || { rm -f "$dest.tmp"; die "cannot rename $dest.tmp to $dest"; }
  [ -n "$prefix" ] || chown root:root "$dest"
  changed "file   $2 (from $src)"
  return 0
}

# remove_file PATH: removes one installed file, saying so.
remove_file() {
  if [ -e "$prefix$1" ] || [ -L "$prefix$1" ]; then
    rm -f "$prefix$1" || die "cannot remove $prefix$1"
    changed "removed $1"
  else
    say "ok     $1 is not there"
  fi
}

# --uninstall: the binary, the shipped units and runbooks; data, keys and users stay.
uninstall_all() {
  local unit name runbook systemd_here=0
  [ -n "$prefix" ] || [ ! -d /run/systemd/system ] || systemd_here=1
  for unit in "${units[@]}"; do
    name="$(basename "$unit")"
    if [ "$systemd_here" = 1 ] && [ -e "/etc/systemd/system/$name" ] &&
      { systemctl is-enabled --quiet "$name" 2>/dev/null || systemctl is-active --quiet "$name" 2>/dev/null; }; then
      systemctl disable --now "$name" || die "systemctl disable --now $name failed" "stop it by hand, then run --uninstall again"
      changed "stopped and disabled $name"
    fi
    remove_file "/etc/systemd/system/$name"
  done
  remove_file "/etc/systemd/system/$credential_dropin"
  if [ -d "$prefix/etc/systemd/system/gm-na.service.d" ]; then
    if rmdir "$prefix/etc/systemd/system/gm-na.service.d" 2>/dev/null; then
      changed "removed /etc/systemd/system/gm-na.service.d/"
    else
      say "kept   /etc/systemd/system/gm-na.service.d/: it holds drop-ins install.sh did not ship"
    fi
  fi
  remove_file /usr/local/bin/gm
  for runbook in "$repo"/docs/runbooks/*.md; do
    remove_file "/etc/gm/runbooks/$(basename "$runbook")"
  done
  if [ -d "$prefix/etc/gm/runbooks" ]; then
    if rmdir "$prefix/etc/gm/runbooks" 2>/dev/null; then
      changed "removed /etc/gm/runbooks/"
    else
      say "kept   /etc/gm/runbooks/: it holds files install.sh did not ship"
    fi
  fi
  if [ "$changes" -gt 0 ]; then
    if [ -n "$prefix" ]; then
      say "skip   systemctl daemon-reload: not run under --prefix"
    elif [ "$systemd_here" = 1 ]; then
      systemctl daemon-reload || die "systemctl daemon-reload failed"
      say "done   systemctl daemon-reload"
    fi
  fi
  local kept="" users="users gm and gm-probe"
  [ -z "$prefix" ] || users="no users under --prefix"
  for path in /etc/gm /etc/gm-probe /var/lib/gm /var/lib/gm-probe; do
    [ ! -e "$prefix$path" ] || kept+=", $path"
  done
  if [ "$changes" = 0 ]; then
    echo "uninstall: nothing to remove${prefix:+ under $prefix}"
  else
    echo "uninstall: $changes change(s)${prefix:+ under $prefix}"
  fi
  echo "kept: configuration, keys and data (${kept#, }${kept:+; }$users): remove them by hand only once backups are safe elsewhere"
}

if [ "$uninstall" = 1 ]; then
  uninstall_all
  exit 0
fi

# The users the units run as (gm-probe.service's: useradd --system --gid gm-probe, for the test
# that keeps the unit and this script in step).
ensure_user gm /var/lib/gm "Genesis Mesh Network Authority (gm)"
ensure_user gm-probe /var/lib/gm-probe "gm external probe"
ensure_dir /etc/gm 0750 root:gm
ensure_dir /etc/gm-probe 0700 root:root
ensure_dir /var/lib/gm 0700 gm:gm
# The folders the default jobs (gm quickstart's table, README "Scheduled jobs") write to, under
# /var/lib/gm as gm.toml names them on a host: backup and prune (backups), restore-drill's report
# (drills/latest.json) and audit-export (exports). The probe job's state file sits in /var/lib/gm.
ensure_dir /var/lib/gm/backups 0700 gm:gm
ensure_dir /var/lib/gm/drills 0700 gm:gm
ensure_dir /var/lib/gm/exports 0700 gm:gm
ensure_file "$binary" /usr/local/bin/gm 0755 || true
# The incident runbooks, where `gm readiness` looks for them (its `runbooks` check).
ensure_dir /etc/gm/runbooks 0755 root:root
for runbook in "$repo"/docs/runbooks/*.md; do
  ensure_file "$runbook" "/etc/gm/runbooks/$(basename "$runbook")" 0644 || true
done
# The backup-signing key (README, "Backups"): created once, never replaced.
ensure_dir /etc/gm/keys 0750 root:gm
if [ -e "$prefix/etc/gm/keys/backup-signing.key" ]; then
  say "ok     /etc/gm/keys/backup-signing.key"
else
  "$prefix/usr/local/bin/gm" keygen backup-signing --output "$prefix/etc/gm/keys/backup-signing" >/dev/null \
    || die "cannot create the backup-signing key in $prefix/etc/gm/keys" "run gm keygen backup-signing --output /etc/gm/keys/backup-signing by hand"
  if [ -n "$prefix" ]; then
    say "       (owner gm:gm of keys/backup-signing.key not set under --prefix)"
  else
    chown gm:gm "$prefix/etc/gm/keys/backup-signing.key"
  fi
  changed "key    /etc/gm/keys/backup-signing.key (0600) and .pub: copy the .pub to every verify or drill host"
fi
for unit in "${units[@]}"; do
  if ensure_file "$unit" "/etc/systemd/system/$(basename "$unit")" 0644; then units_changed=1; fi
done
# The NA key as an encrypted systemd credential (--na-key-credential; docs/custody.md).
if [ "$credential" = 1 ]; then
  ensure_dir /etc/gm/credentials 0700 root:root
  ensure_dir /etc/systemd/system/gm-na.service.d 0755 root:root
  if ensure_file "$repo/systemd/$credential_dropin" "/etc/systemd/system/$credential_dropin" 0644; then units_changed=1; fi
  if [ ! -e "$prefix/etc/gm/credentials/na-key.cred" ]; then
    say "note   /etc/gm/credentials/na-key.cred does not exist yet: gm-na.service cannot start until it does"
    say "       (systemd-creds encrypt --name=na-key /etc/gm/keys/na.key /etc/gm/credentials/na-key.cred)"
  fi
fi

if [ "$units_changed" = 1 ]; then
  if [ -n "$prefix" ]; then
    say "skip   systemctl daemon-reload: not run under --prefix"
  elif [ -d /run/systemd/system ]; then
    systemctl daemon-reload || die "systemctl daemon-reload failed"
    say "done   systemctl daemon-reload"
  else
    say "skip   systemctl daemon-reload: systemd is not running here"
  fi
fi

if [ "$changes" = 0 ]; then
  echo "install: nothing to change, everything is already installed${prefix:+ under $prefix}"
else
  echo "install: $changes change(s)${prefix:+ under $prefix}"
  cat <<'EOF'
next: put gm.toml ([na] db_path = "/var/lib/gm/na.db", job folders under /var/lib/gm,
      [backup] signing_key = "keys/backup-signing.key"), the signed
      genesis, keys/na.key (0600, owner gm) and operators.json in /etc/gm, then
      systemctl enable --now gm-na.service && scripts/smoke.sh http://127.0.0.1:8443
      gm-probe.service and gm-probe.timer belong on a host outside the NA's: there, as root, put
      GM_PROBE_TARGET=URL in /etc/gm-probe/env, root.pub and ping-url (0600) beside it, then
      systemctl enable --now gm-probe.timer (the unit's comments say why).
EOF
fi
