#!/usr/bin/env bash
# Proves that the README's test command works on a fresh machine: builds a minimal Debian root file
# system with debootstrap, puts this machine's Rust toolchain (rustup, bind-mounted read-only), its
# crate cache (copied, so no network is needed for crates) and a fresh `git clone` of the repo in
# it, then inside a chroot runs `scripts/install-test-deps.sh --check` (what a fresh machine lacks)
# and `scripts/test.sh` as root (which installs that with apt-get, then runs every check and test).
#
# Needs root (debootstrap, mounts, chroot) and a reachable Debian mirror for apt; the crates come
# from ~/.cargo/registry. The root file system is kept for the next run, with the packages the
# previous run installed (--fresh starts from a new debootstrap); the clone is made afresh every run.
# Run it from a copy when editing this file meanwhile (bash reads a running script as it goes). About 15 minutes on 2 busy cores, most of it the debug build.
#
# Usage: scripts/fresh-machine.sh [--fresh] [--root DIR] [--mirror URL] [--suite NAME] [--repo PATH]
#   --fresh        delete the root file system of an earlier run first
#   --root DIR     where the root file system lives (default /tmp/gm-fresh/root)
#   --mirror URL   the Debian mirror (default: the first URIs: of this machine's apt sources that
#                  carries Debian, else http://deb.debian.org/debian)
#   --suite NAME   Debian release (default bookworm)
#   --repo PATH    the git repository to clone (default: this checkout; its committed HEAD is what
#                  gets tested, not uncommitted changes)
# Exit status: scripts/test.sh's in the chroot (0 all passed), 2 the chroot could not be set up.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
root=/tmp/gm-fresh/root
suite=bookworm
mirror=""
fresh=0

die() { echo "fresh-machine: error: $1" >&2; [ -z "${2:-}" ] || echo "hint: $2" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --fresh) fresh=1; shift ;;
    --root) [ $# -ge 2 ] || die "--root needs a folder"; root="$2"; shift 2 ;;
    --mirror) [ $# -ge 2 ] || die "--mirror needs a URL"; mirror="$2"; shift 2 ;;
    --suite) [ $# -ge 2 ] || die "--suite needs a name"; suite="$2"; shift 2 ;;
    --repo) [ $# -ge 2 ] || die "--repo needs a path"; repo="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1'" "scripts/fresh-machine.sh [--fresh] [--root DIR] [--mirror URL] [--suite NAME] [--repo PATH]" ;;
  esac
done
[ "$(id -u)" = 0 ] || die "debootstrap, mount and chroot need root" "run it with sudo"
rustup_home="${RUSTUP_HOME:-$HOME/.rustup}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"
[ -d "$rustup_home/toolchains" ] || die "no rustup toolchain in $rustup_home" "install Rust with rustup first"
[ -x "$cargo_home/bin/cargo" ] || die "no cargo in $cargo_home/bin"
if [ -z "$mirror" ]; then
  mirror="$(grep -hs '^URIs:.*debian' /etc/apt/sources.list.d/*.sources | grep -v security | head -1 | awk '{print $2}')" || true
  [ -n "$mirror" ] || mirror="$(grep -hs '^deb .*debian' /etc/apt/sources.list | grep -v security | head -1 | awk '{print $2}')" || true
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
fi
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null || die "cannot install debootstrap"

if [ "$fresh" = 1 ] && [ -e "$root" ]; then
  # Only when nothing is mounted inside it any more (an interrupted run unmounts on exit).
  if grep -q " $root/" /proc/mounts; then die "something is still mounted under $root" "umount it first"; fi
  rm -rf "$root" "$root.debootstrap.log"
fi
if [ ! -x "$root/bin/bash" ]; then
  echo "fresh-machine: debootstrap --variant=minbase $suite $root $mirror" >&2
  mkdir -p "$(dirname "$root")"
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
    die "debootstrap failed (log: $root.debootstrap.log)" "pass --mirror URL of a reachable Debian mirror"
fi
# A chroot must not start the daemons of the packages it installs (prometheus has one).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 755 "$root/usr/sbin/policy-rc.d"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
# debootstrap writes no /etc/hosts (an installer or container runtime does); every real machine has one.
[ -s "$root/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"

mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[$i]}" 2>/dev/null || umount -l "${mounts[$i]}" || true; done
}
trap cleanup EXIT
bind() { # bind SOURCE TARGET [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounts+=("$2")
  [ "${3:-}" != ro ] || mount -o remount,bind,ro "$2"
}
mkdir -p "$root/proc" && mount -t proc proc "$root/proc" && mounts+=("$root/proc")
bind /dev "$root/dev"
bind /dev/pts "$root/dev/pts"
mkdir -p "$root/tmp" && chmod 1777 "$root/tmp"
bind "$rustup_home" "$root/root/.rustup" ro
bind "$cargo_home/bin" "$root/root/.cargo/bin" ro
rm -rf "$root/root/.cargo/registry"
cp -a "$cargo_home/registry" "$root/root/.cargo/registry"
rm -rf "$root/root/gm"
git clone --quiet "$repo" "$root/root/gm"
echo "fresh-machine: testing $(git -C "$root/root/gm" log -1 --format='%h %s')" >&2

in_chroot() {
  chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb CARGO_NET_OFFLINE=true \
    PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "cd /root/gm && $1"
}
echo "fresh-machine: in the chroot: rustc $(in_chroot 'rustc --version')" >&2
echo "fresh-machine: in the chroot: scripts/install-test-deps.sh --check (expect exit 2 and a list)" >&2
set +e
in_chroot 'scripts/install-test-deps.sh --check'
echo "fresh-machine: install-test-deps.sh --check exited $?" >&2
echo "fresh-machine: in the chroot: scripts/test.sh" >&2
in_chroot 'scripts/test.sh'
status=$?
set -e
echo "fresh-machine: scripts/test.sh exited $status" >&2
exit "$status"
