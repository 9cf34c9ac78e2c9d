#!/usr/bin/env bash
# OpenSC's pkcs11-tool, naming the key by --id (pkcs11-tool 0.23 picks the key of --sign,
# --verify and --decrypt by --id alone: with no --id it takes the first private key, whatever
# --label says): an RSA-2048 key pair `signer` (CKA_ID 01) made by pkcs11-tool itself.
source "$(dirname "$0")/common.sh"

p11() { pkcs11-tool --module "$MODULE" --token-label "$TOKEN" --login --pin "$PIN" "$@"; }
# The private keys' labels, one a line, sorted.
private_labels() { p11 --list-objects --type privkey | sed -n 's/^ *label: *//p' | sort; }

case "$PHASE" in
setup)
    step "keypairgen"
    p11 --keypairgen --key-type rsa:2048 --id 01 --label signer --usage-sign --usage-decrypt
    ;;

before)
    public_pem "$KID" old.pem
    step "the public key read by --id is the key's"
    p11 --read-object --type pubkey --id 01 -o pub-before.der
    openssl pkey -pubin -inform DER -in pub-before.der | cmp - old.pem || fail "--id 01 read another public key"

    step "sign by --id"
    p11 --sign --id 01 -m SHA256-RSA-PKCS -i data.bin -o tool-sig-before.bin
    verify_sha256 old.pem tool-sig-before.bin

    step "decrypt an RSA-OAEP ciphertext made by openssl with the public key"
    printf 'a secret for the key that will be rotated' >secret.txt
    openssl pkeyutl -encrypt -pubin -inkey old.pem -pkeyopt rsa_padding_mode:oaep \
        -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in secret.txt -out tool-ct-before.bin
    p11 --decrypt --id 01 -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 \
        -i tool-ct-before.bin -o secret.out
    cmp secret.txt secret.out
    [ "$(private_labels)" = signer ] || fail "private keys: $(private_labels)"
    ;;

after)
    public_pem "$NEW_KID" new.pem
    step "--id 01 reaches the successor"
    p11 --read-object --type pubkey --id 01 -o pub-after.der
    openssl pkey -pubin -inform DER -in pub-after.der | cmp - new.pem || fail "--id 01 read another public key"
    p11 --sign --id 01 -m SHA256-RSA-PKCS -i data.bin -o tool-sig-after.bin
    verify_sha256 new.pem tool-sig-after.bin
    refute_sha256 old.pem tool-sig-after.bin

    step "private keys: signer and $OLD_LABEL"
    private_labels | tee labels.txt
    [ "$(private_labels)" = "$(printf '%s\n' signer "$OLD_LABEL" | sort)" ] || fail "private keys: $(private_labels)"

    step "the predecessor by its derived CKA_ID ($OLD_ID): verifies and decrypts what it made"
    p11 --verify --id "$OLD_ID" -m SHA256-RSA-PKCS -i data.bin --signature-file tool-sig-before.bin
    p11 --decrypt --id "$OLD_ID" -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 \
        -i tool-ct-before.bin -o secret.after
    cmp secret.txt secret.after
    if p11 --sign --id "$OLD_ID" -m SHA256-RSA-PKCS -i data.bin -o old-signs.bin 2>/dev/null; then
        fail "the predecessor (Inactive) still signs"
    fi
    ;;
esac
echo "pkcs11-tool $PHASE: ALL OK"
