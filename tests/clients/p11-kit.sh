#!/usr/bin/env bash
# p11-kit: the module registered in a user module configuration ($HOME/.config/pkcs11/modules);
# pkcs11-tool through p11-kit-proxy.so, and p11tool with no --provider (GnuTLS loads the modules
# p11-kit knows). An EC P-256 key pair `signer` (CKA_ID 01) made by the admin command.
# p11-kit ignores user configuration in programs running as root, so tests/clients.rs runs this
# script as an unprivileged user when it is root itself.
source "$(dirname "$0")/common.sh"

export HOME="$WORK"
PROXY=
for f in /usr/lib/*/p11-kit-proxy.so /usr/lib/p11-kit-proxy.so; do [ -f "$f" ] && PROXY=$f && break; done
[ -n "$PROXY" ] || fail "no p11-kit-proxy.so"
export GNUTLS_PIN="$PIN"
proxy() { pkcs11-tool --module "$PROXY" --token-label "$TOKEN" --login --pin "$PIN" "$@"; }
# ECDSA (CKM_ECDSA) over a SHA-256 digest made here, as a client that hashes by itself signs.
openssl dgst -sha256 -binary data.bin >data.sha256
ec_sign() { proxy --sign --id "$1" -m ECDSA --signature-format openssl -i data.sha256 -o "$2"; }
ec_verify() { # PEM SIGNATURE
    openssl pkeyutl -verify -pubin -inkey "$1" -in data.sha256 -sigfile "$2" >/dev/null ||
        fail "$2 does not verify with $1"
}

case "$PHASE" in
setup)
    step "module configuration"
    mkdir -p "$HOME/.config/pkcs11/modules"
    # The module itself on both backends: GnuTLS, which p11tool below loads it through,
    # initialises it with CKF_LIBRARY_CANT_CREATE_OS_THREADS, and sqlhsm then needs no thread.
    echo "module: $MODULE" >"$HOME/.config/pkcs11/modules/sqlhsm.module"
    cat "$HOME/.config/pkcs11/modules/sqlhsm.module"
    p11-kit list-modules | tee modules.txt
    grep -q "^sqlhsm: " modules.txt || fail "p11-kit does not list the module"
    grep -q "token: $TOKEN" modules.txt || fail "p11-kit does not list token $TOKEN"
    admin key generate --token "$TOKEN" --algorithm ec-p256 --label signer --id 01
    ;;
before)
    public_pem "$KID" old.pem
    step "pkcs11-tool --module $PROXY --sign --id 01"
    ec_sign 01 kit-sig-before.bin
    ec_verify old.pem kit-sig-before.bin
    step "p11tool (modules from p11-kit) --test-sign"
    p11tool --list-tokens | grep -q "token=$TOKEN" || fail "p11tool does not see token $TOKEN"
    p11tool --login --test-sign "pkcs11:token=$TOKEN;object=signer"
    ;;
after)
    public_pem "$NEW_KID" new.pem
    step "the same commands reach the successor"
    ec_sign 01 kit-sig-after.bin
    ec_verify new.pem kit-sig-after.bin
    if openssl pkeyutl -verify -pubin -inkey old.pem -in data.sha256 -sigfile kit-sig-after.bin >/dev/null 2>&1; then
        fail "the predecessor's public key verifies the successor's signature"
    fi
    p11tool --login --test-sign "pkcs11:token=$TOKEN;object=signer"
    p11tool --login --export-pubkey "pkcs11:token=$TOKEN;object=signer;type=private" | cmp - new.pem ||
        fail "object=signer is not the successor"
    step "the predecessor by its derived CKA_ID verifies its signature"
    proxy --verify --id "$OLD_ID" -m ECDSA --signature-format openssl -i data.sha256 \
        --signature-file kit-sig-before.bin
    ;;
esac
echo "p11-kit $PHASE: ALL OK"
