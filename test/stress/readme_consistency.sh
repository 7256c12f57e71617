#!/usr/bin/env bash
# README.md against the checkout, without a server: anchors and Contents, every
# `workflow SUBCOMMAND --flag` the README shows against the CLI's --help, the
# Dependencies table against `scripts/install-deps --list`, and the repository
# paths it names (test/stress/readme_consistency.py says what exactly).
# Needs `scripts/build` first (build/workflow). Under a second.
#   test/stress/readme_consistency.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x build/workflow ] || { echo "FAIL: build/workflow not built (scripts/build)"; exit 1; }
exec /usr/bin/python3 test/stress/readme_consistency.py README.md
