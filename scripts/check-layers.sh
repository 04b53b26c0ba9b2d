#!/bin/bash
# Checks every #include "..." in src/ against src/LAYERS: a file in folder F
# may include its own folder's headers, include/mprof.h, and the folders
# LAYERS lists for F.  Includes name their folder ("heap/sampler.h"), so the
# rule can be read off the line.  Prints each violation with the rule it
# breaks; exits 1 if there is any.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/src"
declare -A allowed
while read -r line; do
    line="${line%%#*}"
    [[ "$line" =~ ^([a-z_]+):(.*)$ ]] || continue
    deps="$(echo ${BASH_REMATCH[2]})"
    allowed["${BASH_REMATCH[1]}"]=" ${BASH_REMATCH[1]} ${deps} "
done < LAYERS
bad=0
while IFS= read -r -d '' file; do
    folder="${file%%/*}"
    if [[ -z "${allowed[$folder]+x}" ]]; then
        echo "src/$file: folder '$folder' is not in src/LAYERS: add it there with what it may include"
        bad=1
        continue
    fi
    n=0
    while IFS= read -r inc; do
        n=$((n + 1))
        [[ -z "$inc" ]] && continue
        target="${inc#*\"}"; target="${target%%\"*}"
        [[ "$target" == "mprof.h" ]] && continue
        if [[ "$target" != */* ]]; then
            echo "src/$file: #include \"$target\" names no folder (write \"$folder/$target\" or the owner's folder)"
            bad=1; continue
        fi
        tfolder="${target%%/*}"
        if [[ ! -f "$target" ]]; then
            echo "src/$file: #include \"$target\": no such file under src/"
            bad=1; continue
        fi
        if [[ "${allowed[$folder]}" != *" $tfolder "* ]]; then
            echo "src/$file: includes \"$target\", but $folder/ may include only:${allowed[$folder]}(src/LAYERS)"
            bad=1
        fi
    done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" || true)
done < <(find . -mindepth 2 -type f \( -name '*.c' -o -name '*.h' \) -printf '%P\0' | sort -z)
if [[ $bad -ne 0 ]]; then
    echo "check-layers: include rule broken (see src/README.md for the layers)"
    exit 1
fi
echo "check-layers: every include in src/ follows src/LAYERS"
