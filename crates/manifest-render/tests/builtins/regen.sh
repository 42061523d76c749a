#!/usr/bin/env bash
# Regenerates the expected output of the built-in plugin tables with the
# reference kustomize (kubectl kustomize 1.37.1 = kustomize v5.8.1):
#   <table>/<case>.yaml  what it prints, or
#   <table>/<case>.err   its error (it refused the case).
# Usage: regen.sh [TABLE[/CASE]...]   (default: every case)
# Needs KFLITE_SHARED (default ../shared from the repo root) and kubectl
# (KUBECTL, or KFLITE_TOOL_KUBECTL, or on PATH).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../../.." && pwd)"
shared="${KFLITE_SHARED:-$repo/../shared}"
ref="$shared/tools/kustomize-ref"
[ -x "$ref" ] || { echo "regen.sh: $ref not found (set KFLITE_SHARED)" >&2; exit 1; }
export KUBECTL="${KUBECTL:-${KFLITE_TOOL_KUBECTL:-kubectl}}"
cd "$here"
if [ $# -eq 0 ]; then
  set -- $(find . -mindepth 2 -maxdepth 2 -type d ! -path './_*' | sed 's|^\./||' | sort)
fi
for arg in "$@"; do
  for c in $(if [ -f "$arg/kustomization.yaml" ]; then echo "$arg"; else find "$arg" -mindepth 1 -maxdepth 1 -type d | sort; fi); do
    rm -f "$c.yaml" "$c.err"
    if "$ref" "$c" >"$c.yaml" 2>"$c.stderr"; then
      rm -f "$c.stderr"
      echo "$c: rendered"
    else
      rm -f "$c.yaml"
      # Keep the fixture free of this machine's paths.
      sed "s|$here/||g" "$c.stderr" >"$c.err"
      rm -f "$c.stderr"
      echo "$c: refused"
    fi
  done
done
