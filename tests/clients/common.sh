# Sourced by every tests/clients/<client>.sh. tests/clients.rs runs each script three times on one
# token: `setup` (a key pair `signer`, CKA_ID 01, and for some clients its certificate), `before`
# (the client signs, encrypts, ...) and, after `sqlhsm key rotate`, `after` (the client, naming the
# key exactly as before, reaches the successor; the predecessor is reached by its derived name).
#
# From tests/clients.rs, in the environment:
#   MODULE      the built libsqlhsm.so          SQLHSM     the admin command (target/…/sqlhsm)
#   WORK        a directory for this client      TOKEN      the token's label
#   PIN         user PIN                         SO_PIN     SO PIN (the demo's PINs)
#   SLOT        the token's slot ID              SQLHSM_DB / SQLHSM_CONF: the store under test
# in the `before` phase also KID (the key's key_id, CKA_SQLHSM_KEY_ID), and in the `after` phase:
#   OLD_KID     the predecessor's key_id (CKA_SQLHSM_KEY_ID)    NEW_KID  the successor's
#   OLD_LABEL   signer@$OLD_KID                                 OLD_ID   CKA_ID in hex: 01 then "@$OLD_KID"
set -euo pipefail

PHASE=${1:?usage: $0 setup|before|after}
: "${MODULE:?}" "${SQLHSM:?}" "${WORK:?}" "${TOKEN:?}" "${PIN:?}" "${SO_PIN:?}"
if [ "$PHASE" = before ]; then
    : "${KID:?}"
fi
if [ "$PHASE" = after ]; then
    : "${OLD_KID:?}" "${NEW_KID:?}" "${OLD_LABEL:?}" "${OLD_ID:?}"
fi
CLIENTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$WORK"

step() { printf '\n=== %s: %s\n' "$PHASE" "$*"; }
fail() { echo "FAILED: $*"; exit 1; }

# The admin command reads the PINs from the environment.
admin() { SQLHSM_PIN="$PIN" SQLHSM_SO_PIN="$SO_PIN" "$SQLHSM" "$@"; }

# The data every client signs, the same file in every phase.
[ -f data.bin ] || printf 'sqlhsm client test data %s\n' "$(date +%s%N)" >data.bin

# PEM public key of a key_id, as the admin command exports it (the reference every signature made
# through a client is checked against, by the openssl command: not by the token).
public_pem() { admin key export-public "$1" --out "$2"; }

# `openssl dgst -verify` of a SHA-256 signature (RSA PKCS#1 v1.5 or ECDSA DER) with a PEM key.
verify_sha256() { # PEM SIGNATURE
    openssl dgst -sha256 -verify "$1" -signature "$2" data.bin >/dev/null ||
        fail "$2 does not verify with $1"
}
refute_sha256() { # PEM SIGNATURE: must NOT verify
    if openssl dgst -sha256 -verify "$1" -signature "$2" data.bin >/dev/null 2>&1; then
        fail "$2 verifies with $1, which did not make it"
    fi
}

# Self-signed certificate for the token's key at a pkcs11: URI, made by OpenSSL through the libp11
# engine (Debian package libengine-pkcs11-openssl), then stored on the token next to the key with
# the same label and CKA_ID.
ENGINE_CONF="$WORK/openssl-engine.cnf"
write_engine_conf() {
    cat >"$ENGINE_CONF" <<EOF
openssl_conf = openssl_init

[openssl_init]
engines = engine_section

[engine_section]
pkcs11 = pkcs11_section

[pkcs11_section]
engine_id = pkcs11
dynamic_path = $(openssl version -e | cut -d'"' -f2)/pkcs11.so
MODULE_PATH = $MODULE
init = 0
EOF
}
engine_cert() { # LABEL-URI-PART SUBJECT OUT.der
    [ -f "$ENGINE_CONF" ] || write_engine_conf
    OPENSSL_CONF="$ENGINE_CONF" openssl req -new -x509 -days 365 -subj "$2" -sha256 \
        -engine pkcs11 -keyform engine \
        -key "pkcs11:token=$TOKEN;object=$1;type=private;pin-value=$PIN" -outform DER -out "$3"
}
store_cert() { # FILE.der LABEL ID-HEX
    pkcs11-tool --module "$MODULE" --token-label "$TOKEN" --login --pin "$PIN" \
        --write-object "$1" --type cert --label "$2" --id "$3"
}
