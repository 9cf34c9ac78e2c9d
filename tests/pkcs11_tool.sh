#!/usr/bin/env bash
# pkcs11-tool scenario against sqlhsm. Every pkcs11-tool call is its own process, so keys made
# by one process are used by the next: that is the point. Signatures are checked by OpenSSL on
# the public keys exported through the module.
#
# Usage: tests/pkcs11_tool.sh /path/to/libsqlhsm.so [workdir]
# Uses a fresh SQLite database and a config with a cheap PIN KDF inside workdir (default: mktemp).
set -euo pipefail

MODULE=${1:?usage: $0 /path/to/libsqlhsm.so [workdir]}
WORK=${2:-$(mktemp -d)}
mkdir -p "$WORK"
cd "$WORK"

# The test harness passes the store of the backend under test; run by hand, a SQLite file.
export SQLHSM_DB="${SQLHSM_DB:-sqlite:$WORK/tool.db}"
export SQLHSM_CONF="$WORK/tool.toml"
cat >"$SQLHSM_CONF" <<TOML
[database]
url = "$SQLHSM_DB"
busy_timeout_ms = 5000

[security]
pin_kdf_log_n = 10
max_pin_failures = 10

[log]
level = "warn"
TOML

SO_PIN=so-pin-0000
PIN=user-pin-1111
LABEL=tool-token

step() { printf '\n=== %s\n' "$*"; }
p11() { pkcs11-tool --module "$MODULE" "$@"; }
p11u() { p11 --token-label "$LABEL" --login --pin "$PIN" "$@"; }

step "list slots"
p11 --list-slots | tee slots.txt
EMPTY=$(awk '/^Slot [0-9]+ \(0x/ { id = $3; gsub(/[():]/, "", id) } /uninitialized/ { print id; exit }' slots.txt)
[ -n "$EMPTY" ] || { echo "no slot with an uninitialised token"; exit 1; }
echo "empty slot: $EMPTY"

step "list mechanisms"
p11 --slot "$EMPTY" --list-mechanisms | tee mechs.txt
for m in RSA-PKCS-KEY-PAIR-GEN SHA256-RSA-PKCS-PSS ECDSA-SHA256 AES-CBC-PAD; do
    grep -q "$m" mechs.txt || { echo "mechanism $m not listed"; exit 1; }
done

step "init token"
p11 --slot "$EMPTY" --init-token --label "$LABEL" --so-pin "$SO_PIN"

step "init user PIN"
p11 --token-label "$LABEL" --login --login-type so --so-pin "$SO_PIN" --init-pin --pin "$PIN"

step "keypairgen RSA-2048 (id 01)"
p11u --keypairgen --key-type rsa:2048 --id 01 --label rsa --usage-sign --usage-decrypt
step "keypairgen EC P-256 (id 02)"
p11u --keypairgen --key-type EC:prime256v1 --id 02 --label ec256 --usage-sign
step "keypairgen EC P-384 (id 03)"
p11u --keypairgen --key-type EC:secp384r1 --id 03 --label ec384 --usage-sign
step "keygen AES-256 (id 04)"
p11u --keygen --key-type AES:32 --id 04 --label aes --usage-decrypt

step "list objects"
p11u --list-objects | tee objects.txt
[ "$(grep -c 'Private Key Object' objects.txt)" -eq 3 ] || { echo "want 3 private keys"; exit 1; }
[ "$(grep -c 'Public Key Object' objects.txt)" -eq 3 ] || { echo "want 3 public keys"; exit 1; }
[ "$(grep -c 'Secret Key Object' objects.txt)" -eq 1 ] || { echo "want 1 secret key"; exit 1; }

# pkcs11-tool 0.23 cannot be trusted to export EC public keys: its --read-object hands
# EVP_PKEY_fromdata OpenSSL parameters it has already freed (valgrind: "Invalid read ... inside a
# block of size 256 free'd", for P-256 and P-384 alike), so it answers "cannot create EVP_PKEY"
# whenever that memory has been reused, which happens more often when the module's PostgreSQL
# threads allocate, and always for P-384 (SoftHSMv2 fails the same way). The SubjectPublicKeyInfo
# of an EC key is built here instead from the CKA_EC_POINT that pkcs11-tool lists through the
# module: the curve's fixed SPKI prefix, then the uncompressed point without its OCTET STRING
# header (04 41 for P-256, 04 61 for P-384).
EC_SPKI_P256=3059301306072a8648ce3d020106082a8648ce3d030107034200
EC_SPKI_P384=3076301006072a8648ce3d020106052b81040022036200
ec_public_key() { # ID SPKI-PREFIX POINT-HEX-LENGTH OUT.pem
    local id=$1 prefix=$2 length=$3 out=$4 point
    p11 --token-label "$LABEL" --list-objects --type pubkey >pubkeys.txt
    # --list-objects ignores --id: the point is the one listed in the block with that ID.
    point=$(awk -v id="$id" '/^Public Key Object/ { p = "" } /^ *EC_POINT:/ { p = $2 }
        /^ *ID:/ && $2 == id && p != "" { print p; exit }' pubkeys.txt)
    [ "${#point}" -eq "$length" ] || { echo "expected the EC_POINT of key $id, got: $point"; exit 1; }
    printf '%s%s' "$prefix" "${point:4}" | perl -ne 'print pack("H*", $_)' >"$out.der"
    openssl pkey -pubin -inform DER -in "$out.der" -out "$out"
    openssl pkey -pubin -in "$out" -noout -text | head -1
}

step "export public keys"
p11 --token-label "$LABEL" --read-object --type pubkey --id 01 -o pub01.der
openssl pkey -pubin -inform DER -in pub01.der -out pub01.pem
openssl pkey -pubin -in pub01.pem -noout -text | head -1
ec_public_key 02 "$EC_SPKI_P256" 134 pub02.pem
ec_public_key 03 "$EC_SPKI_P384" 198 pub03.pem

head -c 1000 /dev/urandom >data.bin
openssl dgst -sha256 -binary data.bin >data.sha256
openssl dgst -sha384 -binary data.bin >data.sha384

step "sign RSA-PKCS (DigestInfo made here), verify with openssl"
{ printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'; cat data.sha256; } >data.di
p11u --sign --id 01 -m RSA-PKCS -i data.di -o sig.rsa-pkcs
openssl dgst -sha256 -verify pub01.pem -signature sig.rsa-pkcs data.bin

step "sign SHA256-RSA-PKCS, verify with openssl"
p11u --sign --id 01 -m SHA256-RSA-PKCS -i data.bin -o sig.sha256-rsa
openssl dgst -sha256 -verify pub01.pem -signature sig.sha256-rsa data.bin

step "sign SHA256-RSA-PKCS-PSS, verify with openssl"
p11u --sign --id 01 -m SHA256-RSA-PKCS-PSS --mgf MGF1-SHA256 --salt-len 32 -i data.bin -o sig.pss
openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
    -sigopt rsa_mgf1_md:sha256 -verify pub01.pem -signature sig.pss data.bin

step "sign ECDSA-SHA256 on P-256, verify with openssl"
p11u --sign --id 02 -m ECDSA-SHA256 --signature-format openssl -i data.bin -o sig.ec256
openssl dgst -sha256 -verify pub02.pem -signature sig.ec256 data.bin

step "sign ECDSA (pre-hashed SHA-384) on P-384, verify with openssl"
p11u --sign --id 03 -m ECDSA --signature-format openssl -i data.sha384 -o sig.ec384
openssl pkeyutl -verify -pubin -inkey pub03.pem -in data.sha384 -sigfile sig.ec384

step "verify in the module too (pkcs11-tool --verify)"
p11u --verify --id 02 -m ECDSA-SHA256 --signature-format openssl -i data.bin --signature-file sig.ec256

step "tampered data does not verify"
cp data.bin bad.bin && printf 'X' | dd of=bad.bin bs=1 seek=0 conv=notrunc 2>/dev/null
if openssl dgst -sha256 -verify pub02.pem -signature sig.ec256 bad.bin; then
    echo "tampered data verified"; exit 1
fi

step "decrypt RSA-OAEP (SHA-256) made by openssl"
printf 'oaep secret from openssl' >secret.txt
openssl pkeyutl -encrypt -pubin -inkey pub01.pem -pkeyopt rsa_padding_mode:oaep \
    -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 -in secret.txt -out secret.oaep256
p11u --decrypt --id 01 -m RSA-PKCS-OAEP --hash-algorithm SHA256 --mgf MGF1-SHA256 \
    -i secret.oaep256 -o secret.out256
cmp secret.txt secret.out256

step "decrypt RSA-OAEP (SHA-1) made by openssl"
openssl pkeyutl -encrypt -pubin -inkey pub01.pem -pkeyopt rsa_padding_mode:oaep \
    -in secret.txt -out secret.oaep1
p11u --decrypt --id 01 -m RSA-PKCS-OAEP --hash-algorithm SHA-1 --mgf MGF1-SHA1 \
    -i secret.oaep1 -o secret.out1
cmp secret.txt secret.out1

step "AES-CBC-PAD round trip"
IV=000102030405060708090a0b0c0d0e0f
head -c 100 /dev/urandom >plain.bin
p11u --encrypt --id 04 -m AES-CBC-PAD --iv "$IV" -i plain.bin -o cipher.bin
[ "$(stat -c %s cipher.bin)" -eq 112 ] || { echo "CBC-PAD of 100 bytes is 112 bytes"; exit 1; }
p11u --decrypt --id 04 -m AES-CBC-PAD --iv "$IV" -i cipher.bin -o plain.out
cmp plain.bin plain.out

step "delete the P-384 key pair"
p11u --delete-object --type privkey --id 03
p11u --delete-object --type pubkey --id 03
p11u --list-objects | tee objects2.txt
if grep -q 'label:.*ec384' objects2.txt; then echo "ec384 still there"; exit 1; fi
[ "$(grep -c 'Private Key Object' objects2.txt)" -eq 2 ] || { echo "want 2 private keys"; exit 1; }

step "wrong PIN is refused"
if p11 --token-label "$LABEL" --login --pin wrong-pin --list-objects; then
    echo "login with a wrong PIN succeeded"; exit 1
fi

step "pkcs11-tool --test"
p11 --token-label "$LABEL" --test --login --pin "$PIN"

# ---- key management, certificates and data objects (issue 3) ----

hexof() { od -An -v -tx1 "$1" | tr -d ' \n'; }

step "keypairgen EC P-256 for ECDH (id 05, derive)"
p11u --keypairgen --key-type EC:prime256v1 --id 05 --label ecdh --usage-derive
ec_public_key 05 "$EC_SPKI_P256" 134 pub05.pem

step "ECDH1-DERIVE with an openssl peer (raw point), compare with openssl pkeyutl -derive"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out peer.pem
openssl pkey -in peer.pem -pubout -outform DER -out peer_pub.der
p11u --derive -m ECDH1-DERIVE --id 05 --input-file peer_pub.der -o shared.p11
openssl pkeyutl -derive -inkey peer.pem -peerkey pub05.pem -out shared.ossl
[ "$(stat -c %s shared.ossl)" -eq 32 ] || { echo "P-256 shared secret is 32 bytes"; exit 1; }
cmp shared.p11 shared.ossl

step "ECDH1-DERIVE with the peer point DER-encoded (--derive-pass-der)"
p11u --derive --derive-pass-der -m ECDH1-DERIVE --id 05 --input-file peer_pub.der -o shared2.p11
cmp shared2.p11 shared.ossl

step "HMAC: generic secret (id 07), SHA256-HMAC sign and verify; compare with openssl"
# pkcs11-tool 0.23 --write-object --type secrkey imports only AES/DES keys ("Unknown key type:
# 0x10" for GENERIC), so the key is generated extractable and non-sensitive and read back for
# openssl when the module lets it.
p11u --keygen --key-type GENERIC:32 --id 07 --label hmac --usage-sign --extractable
p11u --sign --id 07 -m SHA256-HMAC -i data.bin -o mac.p11
[ "$(stat -c %s mac.p11)" -eq 32 ] || { echo "SHA256-HMAC is 32 bytes"; exit 1; }
p11u --verify --id 07 -m SHA256-HMAC -i data.bin --signature-file mac.p11
if p11u --read-object --type secrkey --id 07 -o hmac.key 2>/dev/null && [ -s hmac.key ]; then
    openssl dgst -sha256 -mac HMAC -macopt "hexkey:$(hexof hmac.key)" -binary data.bin >mac.ossl
    cmp mac.p11 mac.ossl
else
    echo "skip openssl cross-check: the generated key's CKA_VALUE is sensitive (tests/keymgmt.rs checks HMAC against OpenSSL)"
fi

step "HMAC with a generated generic secret (id 0a): sign and verify in the module"
p11u --keygen --key-type GENERIC:32 --id 0a --label hmac-gen --usage-sign
p11u --sign --id 0a -m SHA512-HMAC -i data.bin -o mac512.p11
[ "$(stat -c %s mac512.p11)" -eq 64 ] || { echo "SHA512-HMAC is 64 bytes"; exit 1; }
p11u --verify --id 0a -m SHA512-HMAC -i data.bin --signature-file mac512.p11

step "certificate object (id 08): write, list, read back"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout cert.key \
    -subj "/CN=sqlhsm pkcs11-tool test" -days 30 -outform DER -out cert.der
p11u --write-object cert.der --type cert --id 08 --label cert
p11 --token-label "$LABEL" --list-objects --type cert | tee certs.txt
grep -q 'Certificate Object' certs.txt || { echo "certificate not listed"; exit 1; }
p11 --token-label "$LABEL" --read-object --type cert --id 08 -o cert.out
cmp cert.der cert.out

step "data object: write, read back, delete"
head -c 300 /dev/urandom >blob.bin
p11u --write-object blob.bin --type data --label blob --application-label sqlhsm-tool
p11u --list-objects --type data | tee data.txt
grep -q 'Data object' data.txt || grep -q 'Data Object' data.txt || { echo "data object not listed"; exit 1; }
p11u --read-object --type data --label blob -o blob.out
cmp blob.bin blob.out
p11u --delete-object --type data --label blob
if p11u --read-object --type data --label blob -o blob.gone 2>/dev/null; then
    echo "deleted data object still readable"; exit 1
fi

step "import an EC private key (id 09) and its public key, sign, verify with openssl"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -outform DER -out imp.der
openssl pkey -inform DER -in imp.der -pubout -out imp_pub.pem
openssl pkey -inform DER -in imp.der -pubout -outform DER -out imp_pub.der
p11u --write-object imp.der --type privkey --id 09 --label imported --usage-sign
p11u --write-object imp_pub.der --type pubkey --id 09 --label imported
p11u --sign --id 09 -m ECDSA-SHA256 --signature-format openssl -i data.bin -o sig.imp
openssl dgst -sha256 -verify imp_pub.pem -signature sig.imp data.bin

step "wrap / unwrap with AES-KEY-WRAP"
# (--help exits non-zero, so its text goes to a file first: a pipe would fail under pipefail.)
pkcs11-tool --help >tool-help.txt 2>&1 || true
if grep -q -- '--wrap' tool-help.txt && grep -q -- '--unwrap' tool-help.txt; then
    p11u --keygen --key-type AES:32 --id 0b --label kek --usage-wrap
    p11u --keygen --key-type AES:16 --id 0c --label wrapme --extractable --usage-decrypt
    p11u --wrap -m AES-KEY-WRAP --id 0b --application-id 0c -o wrapped.bin
    [ "$(stat -c %s wrapped.bin)" -eq 24 ] || { echo "AES-KW of a 16-byte key is 24 bytes"; exit 1; }
    p11u --unwrap -m AES-KEY-WRAP --id 0b -i wrapped.bin --key-type AES: \
        --application-id 0d --application-label unwrapped --usage-decrypt
    p11u --encrypt --id 0c -m AES-CBC-PAD --iv "$IV" -i plain.bin -o wrap_ct.bin
    p11u --decrypt --id 0d -m AES-CBC-PAD --iv "$IV" -i wrap_ct.bin -o wrap_pt.bin
    cmp plain.bin wrap_pt.bin
    step "a non-extractable key cannot be wrapped"
    if p11u --wrap -m AES-KEY-WRAP --id 0b --application-id 04 -o wrapped04.bin; then
        echo "wrapped a non-extractable key"; exit 1
    fi
else
    echo "skip: this pkcs11-tool has no --wrap/--unwrap"
fi

step "done"
echo "pkcs11-tool scenario: ALL OK"
