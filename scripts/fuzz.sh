#!/usr/bin/env bash
# A long hostile-input campaign: N mutants (default 10,000) of the shared models through inspect and
# convert, accepted ones checked byte for byte against the TFLite Micro reference; prints the table.
#   bash scripts/fuzz.sh [N] [--jobs J] [--seed S] [--models DIR]      (exit 1 if anything failed)
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-10000}"
shift || true
exec nice -n 10 .venv/bin/python -m tinydeploy.verify.fuzz "$count" --jobs "$(nproc)" "$@"
