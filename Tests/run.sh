#!/usr/bin/env bash
# The test command (README): checks the C boundaries, builds every target, starts the services
# the integration tests need, runs all tests, and stops the services again.
set -euo pipefail
cd "$(dirname "$0")/.."

# Only the adapter module of a C library may import it; nothing else touches C pointers.
boundary_violations=$(grep -rlE '^\s*(@_implementationOnly\s+|internal\s+|public\s+|package\s+)?import\s+CCurl\b' \
    --include='*.swift' Shared Functions Tools Tests | grep -v '^Shared/HTTPClient/' || true)
if [ -n "$boundary_violations" ]; then
    echo "C boundary violated: these files import a C module outside its adapter:" >&2
    echo "$boundary_violations" >&2
    exit 1
fi

echo "==> building (debug, with tests)"
swift build --build-tests

echo "==> running tests"
swift test --skip-build "$@"
