# Makes sure the system packages the build, the tests and the local run need are installed.
# Source it and call ensure_requirements. As root it installs what is missing (apt-get); as
# another user it prints the command to run and fails.

MTL_APT_PACKAGES="libcurl4-openssl-dev libssl-dev libpq-dev zlib1g-dev libzstd-dev openssl ca-certificates postgresql python3 python3-pip curl zip unzip util-linux tzdata"

ensure_requirements() {
    command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
    command -v swift >/dev/null || { echo "Swift 6.3 is not installed (expected at /opt/swift)" >&2; return 1; }
    local missing=() package
    for package in $MTL_APT_PACKAGES; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" != 0 ]; then
            echo "missing system packages; run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
            return 1
        fi
        echo "==> installing system packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    if ! python3 -c 'import moto, boto3' 2>/dev/null || ! command -v moto_server >/dev/null; then
        echo "==> installing moto (S3 test server) and boto3 from PyPI"
        python3 -m pip install --quiet --disable-pip-version-check 'moto[server]' boto3 botocore
    fi
    if ! python3 -c 'import pyarrow' 2>/dev/null; then
        echo "==> installing pyarrow (writes the Parquet test corpus, the Parquet benchmark's baseline)"
        python3 -m pip install --quiet --disable-pip-version-check pyarrow
    fi
    if ! command -v cfn-lint >/dev/null || ! python3 -c 'import samtranslator' 2>/dev/null; then
        echo "==> installing cfn-lint and aws-sam-translator from PyPI"
        python3 -m pip install --quiet --disable-pip-version-check cfn-lint aws-sam-translator
    fi
}
