#!/usr/bin/env bash
# python-pkcs11 (PyPI, in the virtual environment $PYTHON belongs to), naming the key by label:
# an RSA-2048 key pair `signer` (CKA_ID 01) made by the admin command.
source "$(dirname "$0")/common.sh"
: "${PYTHON:?the python of a virtual environment with python-pkcs11}"

case "$PHASE" in
setup)
    step "key pair"
    admin key generate --token "$TOKEN" --algorithm rsa-2048 --label signer --id 01
    ;;
before)
    step "python-pkcs11"
    "$PYTHON" "$CLIENTS_DIR/python_pkcs11.py" before
    public_pem "$KID" old.pem
    verify_sha256 old.pem py-sig-before.bin
    ;;
after)
    step "python-pkcs11"
    "$PYTHON" "$CLIENTS_DIR/python_pkcs11.py" after
    public_pem "$NEW_KID" new.pem
    verify_sha256 new.pem py-sig-after.bin
    refute_sha256 old.pem py-sig-after.bin
    ;;
esac
echo "python-pkcs11 $PHASE: ALL OK"
