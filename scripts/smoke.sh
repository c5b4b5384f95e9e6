#!/usr/bin/env bash
# Post-deploy smoke test of a Network Authority (operations.md §4.3: after deploys, restores and
# incident fixes): /healthz, /readyz, /metrics and /connectome.json answer as upstream's clients
# expect, plus the pinned genesis and the CRL signature with --root-public-key, and the TLS
# certificate for https URLs. A thin wrapper around `gm probe`, the same checks the external probe
# runs every minute (README, "External probe"), with a one-line verdict for the person deploying.
#
# Usage: scripts/smoke.sh URL [--root-public-key FILE|BASE64] [--timeout 10s]
#   e.g. scripts/smoke.sh http://127.0.0.1:8443
#        scripts/smoke.sh https://na.example.org --root-public-key offline/root.pub
# Uses $GM if set, else gm on PATH. Exit status: 0 every check OK, 1 a check failed (gm probe
# WARNING or CRITICAL), 2 the smoke could not run (usage, no gm, gm probe UNKNOWN).
set -uo pipefail

usage="scripts/smoke.sh URL [--root-public-key FILE|BASE64] [--timeout 10s]"
die() { echo "smoke: error: $1" >&2; [ -z "${2:-}" ] || echo "hint: $2" >&2; exit 2; }

url=""
extra=()
checks="healthz,readyz,metrics,connectome"
while [ $# -gt 0 ]; do
  case "$1" in
    --root-public-key)
      [ $# -ge 2 ] || die "--root-public-key needs a file or a base64 key" "$usage"
      extra+=(--root-public-key "$2"); checks="$checks,genesis,crl"; shift 2 ;;
    --timeout) [ $# -ge 2 ] || die "--timeout needs a duration" "$usage"; extra+=(--timeout "$2"); shift 2 ;;
    -h | --help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option '$1'" "$usage" ;;
    *) [ -z "$url" ] || die "more than one URL ('$url' and '$1')" "$usage"; url="$1"; shift ;;
  esac
done
[ -n "$url" ] || die "no URL given" "$usage"
case "$url" in
  https://*) checks="$checks,tls" ;;
  http://*) ;;
  *) die "URL must start with http:// or https://, got '$url'" "$usage" ;;
esac
gm="${GM:-gm}"
command -v "$gm" >/dev/null || die "cannot find gm ('$gm')" "put gm on PATH or set GM=/path/to/gm"

"$gm" probe --na "$url" --check "$checks" "${extra[@]}"
status=$?
case "$status" in
  0) echo "smoke: PASS: $url answers ${checks//,/, }"; exit 0 ;;
  1 | 2) echo "smoke: FAIL: $url is not healthy (gm probe exit $status, $([ "$status" = 1 ] && echo WARNING || echo CRITICAL)): see the checks above"; exit 1 ;;
  *) echo "smoke: ERROR: the checks could not run against $url (gm probe exit $status, UNKNOWN): see above"; exit 2 ;;
esac
