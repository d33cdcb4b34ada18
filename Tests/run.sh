#!/usr/bin/env bash
# The test command (README): checks the C boundaries, builds every target, starts the services
# the integration tests need, runs all tests, and stops the services again.
set -euo pipefail
cd "$(dirname "$0")/.."
source Tools/requirements.sh
ensure_requirements

# Each C module may be imported by its one adapter module only; nothing else touches C pointers.
check_boundary() {  # C module, adapter directory
    local offenders
    offenders=$(grep -rlE "^[[:space:]]*([a-z@_]+[[:space:]]+)*import[[:space:]]+$1([[:space:]]|$)" \
        --include='*.swift' Shared Functions Tools Tests 2>/dev/null | grep -v "^$2/" || true)
    if [ -n "$offenders" ]; then
        echo "C boundary violated: $1 may only be imported under $2/, but these files import it:" >&2
        echo "$offenders" >&2
        exit 1
    fi
}
check_boundary CCurl Shared/HTTPClient
check_boundary COpenSSL Shared/Cryptography
check_boundary CZlib Shared/Compression
check_boundary CZstd Shared/Compression
check_boundary CLibPQ Shared/Postgres

# Each shared module imports only the modules beneath it (docs/architecture.md): Core is pure,
# nothing imports a function or tool, no cycle.
python3 Tests/check_layers.py

echo "==> building (debug, with tests)"
swift build --build-tests

echo "==> starting services"
source Tests/services.sh
start_postgres
start_moto

echo "==> checking template.yaml (cfn-lint, and the SAM transform offline)"
cfn-lint --regions eu-central-1 -- template.yaml
python3 Tools/check_template.py template.yaml
cfn-lint --regions eu-central-1 -- /tmp/meterlake-template-transformed.json

echo "==> running tests"
swift test --skip-build "$@"
