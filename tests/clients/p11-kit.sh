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
ec_sign() { proxy --sign --id "$1" -m ECDSA-SHA256 --signature-format openssl -i data.bin -o "$2"; }

case "$PHASE" in
setup)
    step "module configuration"
    mkdir -p "$HOME/.config/pkcs11/modules"
    cat >"$HOME/.config/pkcs11/modules/sqlhsm.module" <<CONF
module: $MODULE
CONF
    cat "$HOME/.config/pkcs11/modules/sqlhsm.module"
    p11-kit list-modules | tee modules.txt
    grep -q "^sqlhsm: $MODULE" modules.txt || fail "p11-kit does not list the module"
    grep -q "token: $TOKEN" modules.txt || fail "p11-kit does not list token $TOKEN"
    admin key generate --token "$TOKEN" --algorithm ec-p256 --label signer --id 01
    ;;
before)
    public_pem "$KID" old.pem
    step "pkcs11-tool --module $PROXY --sign --id 01"
    ec_sign 01 kit-sig-before.bin
    verify_sha256 old.pem kit-sig-before.bin
    step "p11tool (modules from p11-kit) --test-sign"
    p11tool --list-tokens | grep -q "token=$TOKEN" || fail "p11tool does not see token $TOKEN"
    p11tool --login --test-sign "pkcs11:token=$TOKEN;object=signer"
    ;;
after)
    public_pem "$NEW_KID" new.pem
    step "the same commands reach the successor"
    ec_sign 01 kit-sig-after.bin
    verify_sha256 new.pem kit-sig-after.bin
    refute_sha256 old.pem kit-sig-after.bin
    p11tool --login --test-sign "pkcs11:token=$TOKEN;object=signer"
    p11tool --login --export-pubkey "pkcs11:token=$TOKEN;object=signer;type=private" | cmp - new.pem ||
        fail "object=signer is not the successor"
    step "the predecessor by its derived CKA_ID verifies its signature"
    proxy --verify --id "$OLD_ID" -m ECDSA-SHA256 --signature-format openssl -i data.bin \
        --signature-file kit-sig-before.bin
    ;;
esac
echo "p11-kit $PHASE: ALL OK"
