#!/usr/bin/env bash
# Checks the dependency direction of ../shared/STYLE.md §1: every `crate::<module>` a source folder
# uses must be allowed for it. A new arrow is a design change: update STYLE.md and this table together.
set -euo pipefail
cd "$(dirname "$0")/../src"
leaves="clock files logging"
declare -A allowed=(
  [cli]="*"
  [config]="http na ops sched probe store"
  [readiness]="ops sched probe"
  [na]="http store model crypto"
  [ops]="store client model crypto"
  [probe]="client model crypto"
  [sched]=""
  [store]="model crypto"
  [client]="model crypto"
  [model]="crypto"
  [crypto]=""
  [http]=""
  [clock]=""
  [files]=""
  [logging]=""
)
status=0
for entry in *; do
  module=${entry%.rs}
  [ "$module" = main ] || [ "$module" = lib ] && continue
  rule=${allowed[$module]-unknown}
  if [ "$rule" = unknown ]; then
    echo "check-layers: src/$entry is not in the dependency table (STYLE.md §1)"; status=1; continue
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
done
[ $status -eq 0 ] && echo "check-layers: ok"
exit $status
