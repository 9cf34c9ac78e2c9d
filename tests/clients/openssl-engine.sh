#!/usr/bin/env bash
# OpenSSL 3 with the libp11 pkcs11 engine (libengine-pkcs11-openssl), loaded by an OpenSSL
# configuration file, naming keys by pkcs11: URI: an RSA-2048 key pair `signer` (CKA_ID 01)
# made by the admin command, and a self-signed certificate `openssl req` makes with it.
source "$(dirname "$0")/common.sh"

write_engine_conf
export OPENSSL_CONF="$ENGINE_CONF"
KEY="pkcs11:token=$TOKEN;object=signer;type=private;pin-value=$PIN"
KEY_BY_ID="pkcs11:token=$TOKEN;id=%01;type=private;pin-value=$PIN"
# A CKA_ID in hex as a URI's percent-encoded id.
pct() { printf '%s' "$1" | sed 's/../%&/g'; }

engine_sign() { # URI OUT
    openssl dgst -sha256 -engine pkcs11 -keyform engine -sign "$1" -out "$2" data.bin
}
engine_verify() { # URI SIGNATURE (the public key object, verified by OpenSSL with it)
    openssl dgst -sha256 -engine pkcs11 -keyform engine -verify "$1" -signature "$2" data.bin
}
engine_decrypt() { # URI IN OUT
    openssl pkeyutl -decrypt -engine pkcs11 -keyform engine -inkey "$1" -in "$2" -out "$3"
}

case "$PHASE" in
setup)
    step "key pair; openssl req -x509 through the engine; pkcs11-tool stores the certificate"
    admin key generate --token "$TOKEN" --algorithm rsa-2048 --label signer --id 01
    engine_cert signer "/CN=signer before rotation" cert-before.der
    store_cert cert-before.der signer 01
    ;;

before)
    public_pem "$KID" old.pem
    openssl x509 -inform DER -in cert-before.der -noout -pubkey | cmp - old.pem ||
        fail "the certificate is not the key's"
    step "sign by label and by id"
    engine_sign "$KEY" eng-sig-before.bin
    verify_sha256 old.pem eng-sig-before.bin
    engine_sign "$KEY_BY_ID" eng-sig-id.bin
    verify_sha256 old.pem eng-sig-id.bin
    engine_verify "pkcs11:token=$TOKEN;object=signer;type=public" eng-sig-before.bin
    step "decrypt an RSA PKCS#1 v1.5 ciphertext made with the public key"
    printf 'a secret for the key that will be rotated' >secret.txt
    openssl pkeyutl -encrypt -pubin -inkey old.pem -in secret.txt -out eng-ct-before.bin
    engine_decrypt "$KEY" eng-ct-before.bin secret.out
    cmp secret.txt secret.out
    ;;

after)
    public_pem "$NEW_KID" new.pem
    step "the same URIs reach the successor"
    engine_sign "$KEY" eng-sig-after.bin
    verify_sha256 new.pem eng-sig-after.bin
    refute_sha256 old.pem eng-sig-after.bin
    engine_sign "$KEY_BY_ID" eng-sig-after-id.bin
    verify_sha256 new.pem eng-sig-after-id.bin
    engine_verify "pkcs11:token=$TOKEN;object=signer;type=public" eng-sig-after.bin

    step "the predecessor by its derived label and id"
    engine_verify "pkcs11:token=$TOKEN;object=$OLD_LABEL;type=public" eng-sig-before.bin
    engine_verify "pkcs11:token=$TOKEN;id=$(pct "$OLD_ID");type=public" eng-sig-before.bin
    engine_decrypt "pkcs11:token=$TOKEN;object=$OLD_LABEL;type=private;pin-value=$PIN" \
        eng-ct-before.bin secret.after
    cmp secret.txt secret.after
    if engine_sign "pkcs11:token=$TOKEN;object=$OLD_LABEL;type=private;pin-value=$PIN" old-signs.bin 2>/dev/null; then
        fail "the predecessor (Inactive) still signs"
    fi

    step "the predecessor's certificate went with it; a certificate for the successor"
    pkcs11-tool --module "$MODULE" --token-label "$TOKEN" --read-object --type cert \
        --label "$OLD_LABEL" -o old-cert.der
    cmp old-cert.der cert-before.der || fail "the certificate of $OLD_LABEL is not the old one"
    if pkcs11-tool --module "$MODULE" --token-label "$TOKEN" --read-object --type cert \
        --id 01 -o cert-01.der 2>/dev/null; then
        fail "a certificate still carries CKA_ID 01 before one is stored for the successor"
    fi
    engine_cert signer "/CN=signer after rotation" cert-after.der
    openssl x509 -inform DER -in cert-after.der -noout -pubkey | cmp - new.pem ||
        fail "openssl req with $KEY did not use the successor"
    store_cert cert-after.der signer 01
    ;;
esac
echo "openssl engine $PHASE: ALL OK"
