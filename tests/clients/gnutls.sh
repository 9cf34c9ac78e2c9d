#!/usr/bin/env bash
# GnuTLS's p11tool and certtool, loading the module with --provider and naming the key by a
# pkcs11: URI: an EC P-256 key pair `signer` (CKA_ID 01) made by the admin command, and a
# self-signed certificate certtool makes with it.
source "$(dirname "$0")/common.sh"

export GNUTLS_PIN="$PIN"   # p11tool and certtool read the user PIN from here

# GnuTLS initialises every module with CKF_LIBRARY_CANT_CREATE_OS_THREADS: sqlhsm then runs no
# thread of its own, on either backend (on PostgreSQL its connections are opened by the calls
# that need them), so GnuTLS loads it directly.
PROVIDER="$MODULE"
KEY="pkcs11:token=$TOKEN;object=signer;type=private"
KEY_BY_ID="pkcs11:token=$TOKEN;id=%01;type=private"

cert_template() { # CN
    printf 'cn = "%s"\nserial = %s\nexpiration_days = 365\nsigning_key\n' "$1" "$(date +%s)" >cert.tmpl
}
# The certificate's public key as PEM (the form `sqlhsm key export-public` prints).
cert_public() { openssl x509 -in "$1" -noout -pubkey; }
# Whether two PEM certificates are the same certificate (p11tool --export adds blank lines).
same_cert() { cmp <(openssl x509 -in "$1" -outform DER) <(openssl x509 -in "$2" -outform DER); }
p7_sign() { # CERT OUT
    certtool --provider "$PROVIDER" --p7-detached-sign --load-privkey "$KEY" \
        --load-certificate "$1" --infile data.bin --outfile "$2"
}
p7_verify() { # CERT P7
    certtool --p7-verify --load-certificate "$1" --load-data data.bin --infile "$2"
}

case "$PHASE" in
setup)
    step "key pair; certtool makes a self-signed certificate with it; p11tool stores it"
    admin key generate --token "$TOKEN" --algorithm ec-p256 --label signer --id 01
    p11tool --provider "$PROVIDER" --list-tokens | tee tokens.txt
    grep -q "token=$TOKEN" tokens.txt || fail "p11tool lists no token $TOKEN"
    cert_template "signer before rotation"
    certtool --provider "$PROVIDER" --generate-self-signed --load-privkey "$KEY" \
        --template cert.tmpl --outfile cert-before.pem
    p11tool --provider "$PROVIDER" --login --write --load-certificate cert-before.pem \
        --label signer --id 01 "pkcs11:token=$TOKEN"
    ;;

before)
    public_pem "$KID" old.pem
    cert_public cert-before.pem | cmp - old.pem || fail "certtool's certificate is not the key's"
    step "p11tool --test-sign by label and by id"
    p11tool --provider "$PROVIDER" --login --test-sign "pkcs11:token=$TOKEN;object=signer"
    p11tool --provider "$PROVIDER" --login --test-sign "$KEY_BY_ID"
    step "the public key and the certificate, by URI"
    p11tool --provider "$PROVIDER" --login --export-pubkey "$KEY" | cmp - old.pem ||
        fail "--export-pubkey $KEY is not the key's"
    p11tool --provider "$PROVIDER" --export "pkcs11:token=$TOKEN;object=signer;type=cert" >cert-token.pem
    same_cert cert-token.pem cert-before.pem || fail "the certificate on the token is not certtool's"
    step "certtool --p7-detached-sign with the token's key"
    p7_sign cert-before.pem p7-before.pem
    p7_verify cert-before.pem p7-before.pem
    ;;

after)
    public_pem "$NEW_KID" new.pem
    step "p11tool --test-sign, the same URIs: the successor"
    p11tool --provider "$PROVIDER" --login --test-sign "pkcs11:token=$TOKEN;object=signer"
    p11tool --provider "$PROVIDER" --login --test-sign "$KEY_BY_ID"
    p11tool --provider "$PROVIDER" --login --export-pubkey "$KEY" | cmp - new.pem ||
        fail "--export-pubkey $KEY is not the successor's"

    step "the predecessor and its certificate under the derived label $OLD_LABEL"
    p11tool --provider "$PROVIDER" --login --export-pubkey "pkcs11:token=$TOKEN;object=$OLD_LABEL;type=private" |
        cmp - old.pem || fail "$OLD_LABEL is not the predecessor"
    p11tool --provider "$PROVIDER" --export "pkcs11:token=$TOKEN;object=$OLD_LABEL;type=cert" >old-cert.pem
    same_cert old-cert.pem cert-before.pem || fail "the certificate of $OLD_LABEL is not the old one"
    p7_verify old-cert.pem p7-before.pem

    step "a certificate for the successor (certtool, the same URI), stored as signer / 01"
    cert_template "signer after rotation"
    certtool --provider "$PROVIDER" --generate-self-signed --load-privkey "$KEY" \
        --template cert.tmpl --outfile cert-after.pem
    cert_public cert-after.pem | cmp - new.pem || fail "certtool's new certificate is not the successor's"
    p11tool --provider "$PROVIDER" --login --write --load-certificate cert-after.pem \
        --label signer --id 01 "pkcs11:token=$TOKEN"
    p11tool --provider "$PROVIDER" --list-all-certs "pkcs11:token=$TOKEN" | tee certs.txt
    [ "$(grep -c 'Type: X.509 Certificate' certs.txt)" -eq 2 ] || fail "want 2 certificates"
    p7_sign cert-after.pem p7-after.pem
    p7_verify cert-after.pem p7-after.pem
    if p7_verify old-cert.pem p7-after.pem >/dev/null 2>&1; then
        fail "the predecessor's certificate verifies the successor's signature"
    fi
    ;;
esac
echo "gnutls $PHASE: ALL OK"
