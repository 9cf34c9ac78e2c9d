#!/usr/bin/env bash
# Java 17 SunPKCS11: the SqlhsmJava program (Signature, Cipher, KeyStore), keytool and jarsigner,
# with an RSA-2048 key `signer` (CKA_ID 01) and its self-signed certificate on the token.
source "$(dirname "$0")/common.sh"

CFG="$WORK/sqlhsm-java.cfg"
KEYSTORE=(-keystore NONE -storetype PKCS11 -addprovider SunPKCS11 -providerArg "$CFG" -storepass "$PIN")

case "$PHASE" in
setup)
    step "key pair and certificate"
    admin key generate --token "$TOKEN" --algorithm rsa-2048 --label signer --id 01
    engine_cert signer "/CN=signer before rotation" cert-before.der
    store_cert cert-before.der signer 01

    step "SunPKCS11 configuration ($CFG)"
    cat >"$CFG" <<CFG
name = sqlhsm
library = $MODULE
slot = $SLOT
CFG
    cat "$CFG"
    javac -d "$WORK/classes" "$CLIENTS_DIR/SqlhsmJava.java"
    ;;

before)
    step "Signature and Cipher through SunPKCS11"
    java -cp "$WORK/classes" SqlhsmJava "$CFG" "$PIN" "$WORK" before
    public_pem "$KID" old.pem
    verify_sha256 old.pem java-sig-before.bin
    openssl x509 -inform DER -in java-cert-before.der -noout -pubkey | cmp - old.pem ||
        fail "the certificate of alias signer is not the key's"

    step "keytool -list"
    keytool -list "${KEYSTORE[@]}" | tee keytool-before.txt
    grep -q '^signer, PrivateKeyEntry' keytool-before.txt || fail "keytool lists no signer key entry"
    grep -q 'contains 1 entry' keytool-before.txt || fail "keytool lists more than one entry"

    step "jarsigner"
    jarsigner "${KEYSTORE[@]}" -signedjar app-before-signed.jar app-before.jar signer
    jarsigner -verify -verbose -certs "${KEYSTORE[@]}" app-before-signed.jar | tee verify-before.txt
    grep -q 'jar verified' verify-before.txt || fail "the jar signed before does not verify"
    grep -qF 'CN=signer before rotation (signer)' verify-before.txt ||
        fail "the jar's signer is not the certificate of alias signer"
    ;;

after)
    step "certificate for the successor, made through the engine with the same URI"
    engine_cert signer "/CN=signer after rotation" cert-after.der
    public_pem "$NEW_KID" new.pem
    openssl x509 -inform DER -in cert-after.der -noout -pubkey | cmp - new.pem ||
        fail "pkcs11:object=signer;type=private did not reach the successor"
    store_cert cert-after.der signer 01

    step "Signature and Cipher through SunPKCS11"
    java -cp "$WORK/classes" SqlhsmJava "$CFG" "$PIN" "$WORK" after "$OLD_LABEL"
    verify_sha256 new.pem java-sig-after.bin
    refute_sha256 old.pem java-sig-after.bin
    verify_sha256 old.pem java-sig-before.bin

    step "keytool -list"
    keytool -list "${KEYSTORE[@]}" | tee keytool-after.txt
    grep -q '^signer, PrivateKeyEntry' keytool-after.txt || fail "keytool lists no signer key entry"
    grep -q "^$OLD_LABEL, PrivateKeyEntry" keytool-after.txt || fail "keytool lists no $OLD_LABEL key entry"
    grep -q 'contains 2 entries' keytool-after.txt || fail "keytool lists other entries"

    step "jarsigner: sign with signer (the successor), verify the old and the new jar"
    jarsigner "${KEYSTORE[@]}" -signedjar app-after-signed.jar app-after.jar signer
    # With the key store, jarsigner names the alias whose certificate signed each jar.
    jarsigner -verify -verbose -certs "${KEYSTORE[@]}" app-after-signed.jar | tee verify-after.txt
    grep -q 'jar verified' verify-after.txt || fail "the jar signed after does not verify"
    grep -qF 'CN=signer after rotation (signer)' verify-after.txt ||
        fail "the new jar is not signed by the successor's certificate, alias signer"
    jarsigner -verify -verbose -certs "${KEYSTORE[@]}" app-before-signed.jar | tee verify-old.txt
    grep -q 'jar verified' verify-old.txt || fail "the jar signed before no longer verifies"
    grep -qF "CN=signer before rotation ($OLD_LABEL)" verify-old.txt ||
        fail "the old jar's signer is not the certificate of alias $OLD_LABEL"
    ;;
esac
echo "java $PHASE: ALL OK"
