/* A C application of sqlhsm: dlopen()s the module, gets its function list and its PKCS#11 3.2
 * interface, initialises a token, generates an EC P-256 key pair, signs and verifies (with
 * C_Verify and with 3.2's C_VerifySignature), and checks the raw-ABI rules the cryptoki crate
 * hides: NULL pointers, the two-call output-buffer convention and C_GetAttributeValue with mixed
 * valid/invalid/sensitive attributes.
 *
 * Build: cc -Wall -Werror -Iinclude tests/c/smoke.c -ldl
 * Run:   SQLHSM_CONF=... ./smoke /path/to/libsqlhsm.so
 * Prints "ok: <step>" per step and "ALL OK" at the end; exits non-zero on the first failure. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pkcs11.h" /* the public-domain PKCS#11 3.x header in include/ */
#include "sqlhsm.h" /* sqlhsm's vendor constants */

static CK_FUNCTION_LIST_PTR f;
static CK_FUNCTION_LIST_3_2 *f32; /* the default interface's list */

#define CHECK(expr, want)                                                                   \
    do {                                                                                    \
        CK_RV rv_ = (expr);                                                                 \
        if (rv_ != (CK_RV)(want)) {                                                         \
            fprintf(stderr, "FAIL %s:%d: %s returned 0x%lx, want %s (0x%lx)\n", __FILE__,   \
                    __LINE__, #expr, (unsigned long)rv_, #want, (unsigned long)(want));     \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)
#define ASSERT(cond)                                                                        \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
            exit(1);                                                                        \
        }                                                                                   \
    } while (0)
#define OK(step) printf("ok: %s\n", step)

static void pad(CK_UTF8CHAR *dst, const char *src, size_t n) {
    memset(dst, ' ', n);
    memcpy(dst, src, strlen(src));
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s /path/to/libsqlhsm.so\n", argv[0]);
        return 2;
    }
    const char *label = getenv("SMOKE_LABEL") ? getenv("SMOKE_LABEL") : "c-smoke";
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
    ASSERT(gfl != NULL);
    CHECK(gfl(NULL), CKR_ARGUMENTS_BAD);
    CHECK(gfl(&f), CKR_OK);
    ASSERT(f->version.major >= 2);
    OK("C_GetFunctionList");

    CK_C_GetInterface gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
    ASSERT(gi != NULL);
    CK_INTERFACE *iface = NULL;
    CHECK(gi(NULL, NULL, NULL, 0), CKR_ARGUMENTS_BAD);
    /* The default interface is "PKCS 11" 3.2 (a CK_FUNCTION_LIST_3_2). */
    CHECK(gi(NULL, NULL, &iface, 0), CKR_OK);
    ASSERT(iface != NULL && strcmp((const char *)iface->pInterfaceName, "PKCS 11") == 0);
    f32 = (CK_FUNCTION_LIST_3_2 *)iface->pFunctionList;
    ASSERT(f32->version.major == 3 && f32->version.minor == 2);
    ASSERT(f32->C_VerifySignatureInit != NULL && f32->C_UnwrapKeyAuthenticated != NULL);
    CK_VERSION v32 = {3, 2};
    CHECK(gi((CK_UTF8CHAR *)"PKCS 11", &v32, &iface, 0), CKR_OK);
    ASSERT(iface->pFunctionList == (void *)f32);
    CK_VERSION v30 = {3, 0};
    CHECK(gi((CK_UTF8CHAR *)"PKCS 11", &v30, &iface, 0), CKR_OK);
    ASSERT(((CK_VERSION *)iface->pFunctionList)->minor == 0);
    CK_VERSION v99 = {9, 9};
    CHECK(gi((CK_UTF8CHAR *)"PKCS 11", &v99, &iface, 0), CKR_ARGUMENTS_BAD);
    OK("C_GetInterface");

    CK_SLOT_ID slots[64];
    CK_ULONG n = 64;
    CHECK(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
    /* Before C_Initialize every function answers CKR_CRYPTOKI_NOT_INITIALIZED first (§5.4),
     * whatever else is wrong with its arguments. */
    CHECK(f->C_GetSlotList(CK_TRUE, NULL, NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    CK_BYTE odd_iv[3] = {0};
    CK_MECHANISM odd = {CKM_AES_CBC, odd_iv, sizeof odd_iv}; /* a bad IV length */
    CHECK(f->C_EncryptInit(1, &odd, 1), CKR_CRYPTOKI_NOT_INITIALIZED);
    CHECK(f->C_WaitForSlotEvent(0, NULL, NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    CHECK(f->C_GetInfo(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    CHECK(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    /* Half the mutex callbacks → CKR_ARGUMENTS_BAD. */
    CK_C_INITIALIZE_ARGS bad_args;
    memset(&bad_args, 0, sizeof bad_args);
    bad_args.CreateMutex = (CK_CREATEMUTEX)(void *)1;
    CHECK(f->C_Initialize(&bad_args), CKR_ARGUMENTS_BAD);
    CHECK(f->C_Initialize(NULL), CKR_OK);
    CHECK(f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED);
    CHECK(f->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);
    CK_INFO info;
    CHECK(f->C_GetInfo(&info), CKR_OK);
    ASSERT(info.cryptokiVersion.major == 3);
    OK("C_Initialize/C_GetInfo");

    /* Two-call convention for C_GetSlotList: NULL → count; too small → BUFFER_TOO_SMALL. */
    CHECK(f->C_GetSlotList(CK_TRUE, NULL, NULL), CKR_ARGUMENTS_BAD);
    n = 0;
    CHECK(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK);
    ASSERT(n >= 1 && n <= 64);
    CK_ULONG need = n;
    n = 0;
    CHECK(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_BUFFER_TOO_SMALL);
    ASSERT(n == need);
    CHECK(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    CK_SLOT_ID slot = (CK_SLOT_ID)-1;
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        CHECK(f->C_GetTokenInfo(slots[i], &ti), CKR_OK);
        if (!(ti.flags & CKF_TOKEN_INITIALIZED)) slot = slots[i];
    }
    ASSERT(slot != (CK_SLOT_ID)-1);
    CHECK(f->C_GetTokenInfo(slot, NULL), CKR_ARGUMENTS_BAD);
    CHECK(f->C_GetSlotInfo(slot, NULL), CKR_ARGUMENTS_BAD);
    OK("C_GetSlotList two-call");

    CK_ULONG nm = 0;
    CHECK(f->C_GetMechanismList(slot, NULL, &nm), CKR_OK);
    ASSERT(nm > 10);
    CK_MECHANISM_TYPE mechs[256];
    CK_ULONG small = 1;
    CHECK(f->C_GetMechanismList(slot, mechs, &small), CKR_BUFFER_TOO_SMALL);
    ASSERT(small == nm);
    OK("C_GetMechanismList two-call");

    CK_UTF8CHAR tlabel[32];
    pad(tlabel, label, 32);
    const char *so = "so-pin-0000", *user = "user-pin-1111";
    CHECK(f->C_InitToken(slot, (CK_UTF8CHAR_PTR)so, strlen(so), NULL), CKR_ARGUMENTS_BAD);
    CHECK(f->C_InitToken(slot, (CK_UTF8CHAR_PTR)so, strlen(so), tlabel), CKR_OK);
    OK("C_InitToken");

    CK_SESSION_HANDLE h;
    CHECK(f->C_OpenSession(slot, CKF_RW_SESSION, NULL, NULL, &h), CKR_SESSION_PARALLEL_NOT_SUPPORTED);
    CHECK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, NULL), CKR_ARGUMENTS_BAD);
    CHECK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h), CKR_OK);
    CHECK(f->C_Login(h, CKU_SO, (CK_UTF8CHAR_PTR)so, strlen(so)), CKR_OK);
    CHECK(f->C_InitPIN(h, (CK_UTF8CHAR_PTR)user, strlen(user)), CKR_OK);
    CHECK(f->C_Logout(h), CKR_OK);
    CHECK(f->C_Login(h, 42, (CK_UTF8CHAR_PTR)user, strlen(user)), CKR_USER_TYPE_INVALID);
    CHECK(f->C_Login(h, CKU_USER, NULL, 4), CKR_ARGUMENTS_BAD);
    CHECK(f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)user, strlen(user)), CKR_OK);
    CHECK(f->C_GetSessionInfo(h, NULL), CKR_ARGUMENTS_BAD);
    OK("C_OpenSession/C_Login");

    /* EC P-256 key pair. */
    CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BYTE id[] = {0xc0, 0xde};
    CK_ATTRIBUTE pub_t[] = {
        {CKA_TOKEN, &yes, sizeof yes},       {CKA_VERIFY, &yes, sizeof yes},
        {CKA_EC_PARAMS, p256, sizeof p256},  {CKA_LABEL, "c-ec", 4},
        {CKA_ID, id, sizeof id},
    };
    CK_ATTRIBUTE priv_t[] = {
        {CKA_TOKEN, &yes, sizeof yes},     {CKA_PRIVATE, &yes, sizeof yes},
        {CKA_SIGN, &yes, sizeof yes},      {CKA_SENSITIVE, &yes, sizeof yes},
        {CKA_EXTRACTABLE, &no, sizeof no}, {CKA_LABEL, "c-ec", 4},
        {CKA_ID, id, sizeof id},
    };
    CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE pub, priv;
    CHECK(f->C_GenerateKeyPair(h, NULL, pub_t, 5, priv_t, 7, &pub, &priv), CKR_ARGUMENTS_BAD);
    CHECK(f->C_GenerateKeyPair(h, &gen, pub_t, 5, priv_t, 7, NULL, &priv), CKR_ARGUMENTS_BAD);
    CHECK(f->C_GenerateKeyPair(h, &gen, NULL, 5, priv_t, 7, &pub, &priv), CKR_ARGUMENTS_BAD);
    CHECK(f->C_GenerateKeyPair(h, &gen, pub_t, 5, priv_t, 7, &pub, &priv), CKR_OK);
    /* A CK_BBOOL attribute of the wrong size. */
    CK_ULONG wide = 1;
    CK_ATTRIBUTE bad_t[] = {{CKA_TOKEN, &wide, sizeof wide}, {CKA_EC_PARAMS, p256, sizeof p256}};
    CK_OBJECT_HANDLE x1, x2;
    CHECK(f->C_GenerateKeyPair(h, &gen, bad_t, 2, priv_t, 7, &x1, &x2), CKR_ATTRIBUTE_VALUE_INVALID);
    OK("C_GenerateKeyPair(EC P-256)");

    /* Sign with the two-call convention. */
    CK_MECHANISM ecdsa = {CKM_ECDSA_SHA256, NULL, 0};
    CK_BYTE msg[] = "message signed from C";
    CK_BYTE sig[256];
    CK_ULONG siglen = 0;
    CHECK(f->C_Sign(h, msg, sizeof msg, sig, &siglen), CKR_OPERATION_NOT_INITIALIZED);
    /* A NULL mechanism ends the active operation (PKCS#11 3.0 §5.11); none active: CKR_OK. */
    CHECK(f->C_SignInit(h, NULL, priv), CKR_OK);
    CHECK(f->C_SignInit(h, &ecdsa, priv), CKR_OK);
    CHECK(f->C_SignInit(h, NULL, CK_INVALID_HANDLE), CKR_OK);
    CHECK(f->C_Sign(h, msg, sizeof msg, NULL, &siglen), CKR_OPERATION_NOT_INITIALIZED);
    CHECK(f->C_SignInit(h, &ecdsa, priv), CKR_OK);
    CHECK(f->C_SignInit(h, &ecdsa, priv), CKR_OPERATION_ACTIVE);
    CHECK(f->C_Sign(h, msg, sizeof msg, NULL, NULL), CKR_ARGUMENTS_BAD);
    CHECK(f->C_SignInit(h, &ecdsa, priv), CKR_OK); /* the NULL-pointer failure ended it */
    CHECK(f->C_Sign(h, msg, sizeof msg, NULL, &siglen), CKR_OK);
    ASSERT(siglen == 64);
    siglen = 10;
    CHECK(f->C_Sign(h, msg, sizeof msg, sig, &siglen), CKR_BUFFER_TOO_SMALL);
    ASSERT(siglen == 64);
    /* CKR_BUFFER_TOO_SMALL does not end the operation. */
    CHECK(f->C_Sign(h, msg, sizeof msg, sig, &siglen), CKR_OK);
    ASSERT(siglen == 64);
    CHECK(f->C_Sign(h, msg, sizeof msg, sig, &siglen), CKR_OPERATION_NOT_INITIALIZED);
    OK("C_Sign two-call");

    CHECK(f->C_VerifyInit(h, &ecdsa, pub), CKR_OK);
    CHECK(f->C_Verify(h, msg, sizeof msg, sig, siglen), CKR_OK);
    sig[5] ^= 0xff;
    CHECK(f->C_VerifyInit(h, &ecdsa, pub), CKR_OK);
    CHECK(f->C_Verify(h, msg, sizeof msg, sig, siglen), CKR_SIGNATURE_INVALID);
    sig[5] ^= 0xff;
    OK("C_Verify");

    /* PKCS#11 3.2 through the 3.2 list: the signature given at C_VerifySignatureInit. */
    CHECK(f32->C_VerifySignature(h, msg, sizeof msg), CKR_OPERATION_NOT_INITIALIZED);
    CHECK(f32->C_VerifySignatureInit(h, &ecdsa, pub, sig, siglen), CKR_OK);
    CHECK(f32->C_VerifySignature(h, msg, sizeof msg), CKR_OK);
    CHECK(f32->C_VerifySignature(h, msg, sizeof msg), CKR_OPERATION_NOT_INITIALIZED);
    CHECK(f32->C_VerifySignatureInit(h, &ecdsa, pub, sig, siglen), CKR_OK);
    CHECK(f32->C_VerifySignatureUpdate(h, msg, 10), CKR_OK);
    CHECK(f32->C_VerifySignatureUpdate(h, msg + 10, sizeof msg - 10), CKR_OK);
    CHECK(f32->C_VerifySignatureFinal(h), CKR_OK);
    CHECK(f32->C_VerifySignatureFinal(h), CKR_OPERATION_NOT_INITIALIZED);
    sig[5] ^= 0xff;
    CHECK(f32->C_VerifySignatureInit(h, &ecdsa, pub, sig, siglen), CKR_OK);
    CHECK(f32->C_VerifySignature(h, msg, sizeof msg), CKR_SIGNATURE_INVALID);
    sig[5] ^= 0xff;
    CHECK(f32->C_VerifySignatureInit(h, &ecdsa, pub, sig, siglen - 1), CKR_SIGNATURE_LEN_RANGE);
    CHECK(f32->C_VerifySignatureInit(h, &ecdsa, pub, NULL, siglen), CKR_ARGUMENTS_BAD);
    CHECK(f32->C_AsyncGetID(h, NULL, NULL), CKR_FUNCTION_NOT_SUPPORTED);
    CHECK(f32->C_GetSessionValidationFlags(h, 0, NULL), CKR_FUNCTION_NOT_SUPPORTED);
    OK("C_VerifySignature (3.2)");

    /* C_GetAttributeValue: mixed valid / invalid type / sensitive, with NULL and short buffers. */
    CK_BYTE lbuf[64], vbuf[64], pbuf[128];
    CK_ATTRIBUTE mixed[] = {
        {CKA_LABEL, NULL, 0},
        {CKA_MODULUS, vbuf, sizeof vbuf}, /* not an EC attribute */
        {CKA_VALUE, pbuf, sizeof pbuf},   /* sensitive */
    };
    CHECK(f->C_GetAttributeValue(h, priv, NULL, 3), CKR_ARGUMENTS_BAD);
    CK_RV rv = f->C_GetAttributeValue(h, priv, mixed, 3);
    ASSERT(rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID);
    ASSERT(mixed[0].ulValueLen == 4);
    ASSERT(mixed[1].ulValueLen == CK_UNAVAILABLE_INFORMATION);
    ASSERT(mixed[2].ulValueLen == CK_UNAVAILABLE_INFORMATION);
    mixed[0].pValue = lbuf;
    mixed[0].ulValueLen = 2;
    rv = f->C_GetAttributeValue(h, priv, mixed, 3);
    ASSERT(rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
           rv == CKR_BUFFER_TOO_SMALL);
    ASSERT(mixed[0].ulValueLen == CK_UNAVAILABLE_INFORMATION);
    CK_ATTRIBUTE one[] = {{CKA_LABEL, lbuf, 2}};
    CHECK(f->C_GetAttributeValue(h, priv, one, 1), CKR_BUFFER_TOO_SMALL);
    ASSERT(one[0].ulValueLen == CK_UNAVAILABLE_INFORMATION);
    one[0].ulValueLen = sizeof lbuf;
    CHECK(f->C_GetAttributeValue(h, priv, one, 1), CKR_OK);
    ASSERT(one[0].ulValueLen == 4 && memcmp(lbuf, "c-ec", 4) == 0);
    /* Vendor attributes from sqlhsm.h. */
    CK_ULONG status = 0, mode = 0;
    CK_ATTRIBUTE vendor[] = {
        {CKA_SQLHSM_KEY_STATUS, &status, sizeof status},
        {CKA_SQLHSM_KEY_MODE, &mode, sizeof mode},
        {CKA_SQLHSM_KEY_ID, NULL, 0},
    };
    CHECK(f->C_GetAttributeValue(h, priv, vendor, 3), CKR_OK);
    ASSERT(status == 1 && mode == 1 && vendor[2].ulValueLen > 0);
    /* EC point on the public key: DER OCTET STRING of 65 bytes. */
    CK_ATTRIBUTE point[] = {{CKA_EC_POINT, pbuf, sizeof pbuf}};
    CHECK(f->C_GetAttributeValue(h, pub, point, 1), CKR_OK);
    ASSERT(point[0].ulValueLen == 67 && pbuf[0] == 0x04 && pbuf[1] == 65 && pbuf[2] == 0x04);
    OK("C_GetAttributeValue mixed");

    /* C_FindObjects argument checks and a find by label. */
    CK_ATTRIBUTE find_t[] = {{CKA_LABEL, "c-ec", 4}};
    CK_OBJECT_HANDLE found[4];
    CK_ULONG nfound = 0;
    CHECK(f->C_FindObjects(h, found, 4, &nfound), CKR_OPERATION_NOT_INITIALIZED);
    CHECK(f->C_FindObjectsInit(h, NULL, 1), CKR_ARGUMENTS_BAD);
    CHECK(f->C_FindObjectsInit(h, find_t, 1), CKR_OK);
    CHECK(f->C_FindObjectsInit(h, find_t, 1), CKR_OPERATION_ACTIVE);
    CHECK(f->C_FindObjects(h, found, 4, NULL), CKR_ARGUMENTS_BAD);
    CHECK(f->C_FindObjects(h, found, 4, &nfound), CKR_OK);
    ASSERT(nfound == 2);
    CHECK(f->C_FindObjectsFinal(h), CKR_OK);
    CHECK(f->C_FindObjectsFinal(h), CKR_OPERATION_NOT_INITIALIZED);
    OK("C_FindObjects");

    /* Digest two-call and random. */
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    CK_BYTE dig[64];
    CK_ULONG diglen = 0;
    CHECK(f->C_DigestInit(h, &sha), CKR_OK);
    CHECK(f->C_Digest(h, msg, sizeof msg, NULL, &diglen), CKR_OK);
    ASSERT(diglen == 32);
    diglen = 31;
    CHECK(f->C_Digest(h, msg, sizeof msg, dig, &diglen), CKR_BUFFER_TOO_SMALL);
    ASSERT(diglen == 32);
    CHECK(f->C_Digest(h, msg, sizeof msg, dig, &diglen), CKR_OK);
    CHECK(f->C_GenerateRandom(h, NULL, 16), CKR_ARGUMENTS_BAD);
    CHECK(f->C_GenerateRandom(h, dig, 16), CKR_OK);
    OK("C_Digest/C_GenerateRandom");

    CHECK(f->C_CloseSession(h), CKR_OK);
    CHECK(f->C_CloseSession(h), CKR_SESSION_HANDLE_INVALID);
    /* A forked child inherits no usable module: it must call C_Initialize itself (§5.4), and
     * the parent's instance is untouched. */
    fflush(stdout);
    pid_t child = fork();
    ASSERT(child >= 0);
    if (child == 0) {
        CK_INFO child_info;
        CK_ULONG n = 0;
        if (f->C_GetInfo(&child_info) != CKR_CRYPTOKI_NOT_INITIALIZED) _exit(10);
        if (f->C_Initialize(NULL) != CKR_OK) _exit(11);
        if (f->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_OK || n < 2) _exit(12);
        if (f->C_Finalize(NULL) != CKR_OK) _exit(13);
        _exit(0);
    }
    int child_status = 0;
    ASSERT(waitpid(child, &child_status, 0) == child);
    ASSERT(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0);
    CHECK(f->C_GetInfo(&info), CKR_OK);
    OK("fork: the child must C_Initialize");

    CHECK(f->C_Finalize((CK_VOID_PTR)1), CKR_ARGUMENTS_BAD);
    CHECK(f->C_Finalize(NULL), CKR_OK);
    CHECK(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
    OK("C_Finalize");
    dlclose(lib);
    printf("ALL OK\n");
    return 0;
}
