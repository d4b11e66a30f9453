#!/usr/bin/env bash
# Installs the Node packages the tests use, exactly as package-lock.json pins them. Quiet and
# quick when node_modules already matches the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v npm >/dev/null; then
  "$(dirname "$0")/deps.sh" node
fi
stamp=node_modules/.switchboard-lock
if [[ -f $stamp ]] && cmp -s package-lock.json "$stamp"; then
  exit 0
fi
echo "node-deps.sh: npm ci" >&2
npm ci --no-audit --no-fund --loglevel=error >/dev/null
cp package-lock.json "$stamp"
