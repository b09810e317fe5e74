#!/usr/bin/env bash
# One command from a fresh clone to a running daemon: installs what is missing (Debian
# packages, npm ci), builds, then runs the demo (a private slapd with the sample directory and
# the daemon in front of it), printing the postmap -q lines to try. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then npm ci; fi
npx tsc -p tsconfig.json
exec node scripts/demo.mjs "$@"
