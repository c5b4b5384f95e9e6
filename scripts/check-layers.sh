#!/usr/bin/env bash
# Checks the dependency direction written in ARCHITECTURE.md ("Layers", the ```layers block): every
# `crate::<module>` a source folder uses must be named on its row (or be a leaf: clock, files, json,
# logging, percent), and every arrow on a row must be used by some file of that folder, so the
# table says exactly what the code does. A new arrow is a design change: update ARCHITECTURE.md and
# the code together.
set -euo pipefail
cd "$(dirname "$0")/.."
doc=ARCHITECTURE.md
leaves="clock files json logging percent"
declare -A allowed=()
while read -r module arrow deps; do
  [ -z "$module" ] && continue
  [ "$arrow" = "->" ] || { echo "check-layers: cannot read this line of the layers table in $doc: $module $arrow $deps"; exit 2; }
  allowed[$module]="$deps"
done < <(sed -n '/^```layers$/,/^```$/p' "$doc" | sed '1d;$d')
[ ${#allowed[@]} -gt 0 ] || { echo "check-layers: no layers table (a \`\`\`layers block) in $doc"; exit 2; }
cd src
status=0
for entry in *; do
  module=${entry%.rs}
  [ "$module" = main ] || [ "$module" = lib ] && continue
  rule=${allowed[$module]-unknown}
  if [ "$rule" = unknown ]; then
    echo "check-layers: src/$entry is not in the layers table of $doc"; status=1; continue
  fi
  [ "$rule" = "*" ] && continue
  used=$(grep -rhoE 'crate::[a-z_]+' "$entry" | sed 's/crate:://' | sort -u || true)
  for dep in $used; do
    [ "$dep" = "$module" ] && continue
    case " $rule $leaves " in
      *" $dep "*) ;;
      *) case " $leaves " in *" $module "*) echo "check-layers: leaf src/$entry imports crate::$dep"; status=1;;
           *) echo "check-layers: src/$entry imports crate::$dep, not allowed for $module (allowed: $rule + leaves)"; status=1;; esac;;
    esac
  done
  # The table is exact: an arrow no file of the folder uses is stale documentation.
  for dep in $rule; do
    case " $(echo $used) " in
      *" $dep "*) ;;
      *) echo "check-layers: $doc allows $module -> $dep, but nothing in src/$entry uses crate::$dep (drop the arrow)"; status=1;;
    esac
  done
done
for module in "${!allowed[@]}"; do
  [ -e "$module" ] || [ -e "$module.rs" ] || { echo "check-layers: $doc names $module, which is not in src/"; status=1; }
done
[ $status -eq 0 ] && echo "check-layers: ok ($doc)"
exit $status
