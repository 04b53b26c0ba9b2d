#!/bin/bash
# The settings tables of README.md and docs/cli.md are generated from the
# options table (src/shared/options.def) by `mprof help --markdown`.
#   scripts/docs-tables.sh BUILD check    exit 1, with a diff, when they differ
#   scripts/docs-tables.sh BUILD update   rewrite them (make docs)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"; mode="${2:-check}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
mprof="$build/mprof"
[[ -x "$mprof" ]] || { echo "docs-tables: $mprof not built; run make first" >&2; exit 1; }
status=0
for pair in "README.md settings" "docs/cli.md run"; do
    set -- $pair
    file="$root/$1"; which="$2"
    table="$("$mprof" help --markdown "$which")"
    new="$(TABLE="$table" awk -v which="$which" '
        $0 == "<!-- begin " which " -->" { print; print ENVIRON["TABLE"]; skip = 1; next }
        $0 == "<!-- end " which " -->" { skip = 0 }
        !skip { print }' "$file")"
    grep -q "^<!-- begin $which -->\$" "$file" || { echo "docs-tables: $1 lacks <!-- begin $which -->" >&2; exit 1; }
    if [[ "$mode" == update ]]; then
        printf '%s\n' "$new" > "$file.tmp" && mv "$file.tmp" "$file"
    elif ! diff -u "$file" <(printf '%s\n' "$new") >&2; then
        echo "docs-tables: $1's $which table differs from src/shared/options.def; run 'make docs'" >&2
        status=1
    fi
done
exit $status
