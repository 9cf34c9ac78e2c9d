"""python-pkcs11 against sqlhsm, run by tests/clients/python-pkcs11.sh in its work directory.

before: sign with get_key(label='signer', PRIVATE_KEY), encrypt with its public key (RSA-OAEP).
after (a rotation later): the same get_key finds exactly one key, the successor, and signs; the
predecessor, found by its derived label, verifies the old signature and decrypts the old
ciphertext, and no longer signs (it is Inactive).
"""
import os
import sys

import pkcs11
from pkcs11 import MGF, Attribute, Mechanism, ObjectClass

OAEP = (Mechanism.RSA_PKCS_OAEP, (Mechanism.SHA256, MGF.SHA256, None))
SIGN = Mechanism.SHA256_RSA_PKCS
SECRET = b"a secret for the key that will be rotated"


def read(name):
    with open(name, "rb") as f:
        return f.read()


def write(name, data):
    with open(name, "wb") as f:
        f.write(data)


def check(ok, what):
    if not ok:
        sys.exit(f"FAILED: {what}")
    print(f"OK {what}")


def main(phase):
    lib = pkcs11.lib(os.environ["MODULE"])
    token = lib.get_token(token_label=os.environ["TOKEN"])
    data = read("data.bin")
    with token.open(user_pin=os.environ["PIN"]) as session:
        # get_key raises MultipleObjectsReturned when more than one object matches.
        key = session.get_key(label="signer", object_class=ObjectClass.PRIVATE_KEY)
        public = session.get_key(label="signer", object_class=ObjectClass.PUBLIC_KEY)
        by_id = session.get_key(id=b"\x01", object_class=ObjectClass.PRIVATE_KEY)
        check(by_id[Attribute.MODULUS] == key[Attribute.MODULUS] == public[Attribute.MODULUS],
              "id 01 is the key labelled signer")
        signature = key.sign(data, mechanism=SIGN)
        check(public.verify(data, signature, mechanism=SIGN), "signer signs; its public key verifies")
        if phase == "before":
            write("py-sig-before.bin", signature)
            ciphertext = public.encrypt(SECRET, mechanism=OAEP[0], mechanism_param=OAEP[1])
            write("py-ct-before.bin", ciphertext)
            check(key.decrypt(ciphertext, mechanism=OAEP[0], mechanism_param=OAEP[1]) == SECRET,
                  "the OAEP ciphertext decrypts")
            return
        write("py-sig-after.bin", signature)
        old_label = os.environ["OLD_LABEL"]
        old_public = session.get_key(label=old_label, object_class=ObjectClass.PUBLIC_KEY)
        old_key = session.get_key(label=old_label, object_class=ObjectClass.PRIVATE_KEY)
        old_signature = read("py-sig-before.bin")
        check(old_public.verify(data, old_signature, mechanism=SIGN),
              f"{old_label} verifies the signature made before the rotation")
        check(not old_public.verify(data, signature, mechanism=SIGN),
              f"{old_label} does not verify the successor's signature")
        check(not public.verify(data, old_signature, mechanism=SIGN),
              "the successor does not verify the predecessor's signature")
        ciphertext = read("py-ct-before.bin")
        check(old_key.decrypt(ciphertext, mechanism=OAEP[0], mechanism_param=OAEP[1]) == SECRET,
              f"{old_label} decrypts the ciphertext made before the rotation")
        old_id = bytes.fromhex(os.environ["OLD_ID"])
        check(session.get_key(id=old_id, object_class=ObjectClass.PRIVATE_KEY)[Attribute.LABEL]
              == old_label, f"CKA_ID {old_id!r} is {old_label}")
        try:
            old_key.sign(data, mechanism=SIGN)
            refused = False
        except pkcs11.PKCS11Error as e:
            print(f"the predecessor refuses to sign, as it should: {type(e).__name__}")
            refused = True
        check(refused, f"{old_label} (Inactive) refuses to sign")


if __name__ == "__main__":
    main(sys.argv[1])
    print(f"python-pkcs11 {sys.argv[1]}: ALL OK")
