/* fork() from a busy program, the way pre-forking servers do it: a parent whose threads sign and
 * generate keys non-stop forks FORKS children; each child must be able to C_Initialize and work
 * (log in, find a key, sign, verify, generate a token key, C_Finalize), and the parent must keep
 * working. A child that does not finish within CHILD_TIMEOUT_S is a hang (killed and counted).
 *
 * Build: cc -std=c11 -D_DEFAULT_SOURCE -Iinclude tests/c/fork.c -ldl -lpthread
 * Run:   SQLHSM_CONF=... FORK_TOKEN=label FORKS=100 ./fork /path/to/libsqlhsm.so
 * With FORK_NO_OS_THREADS=1 the parent and every child initialise with
 * CKF_LIBRARY_CANT_CREATE_OS_THREADS (the store then runs no thread of its own; the parent's
 * threads are the application's).
 * Prints one line "fork summary: forks=… hangs=… child_errors=… parent_ops=… parent_errors=…
 * parent_keys=… child_keys=…" and exits 0 whatever the counts (the test judges them). */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pkcs11.h"

#define CHILD_TIMEOUT_S 30
#define SIGNERS 2
#define GENERATORS 2

static CK_FUNCTION_LIST_PTR f;
static const char *token_label;
static CK_SLOT_ID slot;
static const char *so_pin = "so-pin-0000", *user_pin = "user-pin-1111";
static CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static CK_BBOOL yes = CK_TRUE;

/* The C_Initialize flags of the parent and the children. */
static CK_FLAGS init_flags = CKF_OS_LOCKING_OK;

static atomic_int stop;
static atomic_long parent_ops, parent_errors, parent_keys;

#define DIE(code, what, rv)                                                                  \
    do {                                                                                     \
        dprintf(2, "child: %s failed: 0x%lx\n", what, (unsigned long)(rv));                  \
        _exit(code);                                                                         \
    } while (0)

static void pad(CK_UTF8CHAR *dst, const char *src, size_t n) {
    memset(dst, ' ', n);
    memcpy(dst, src, strlen(src));
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* The slot holding the token labelled `token_label`, or the empty slot when `empty`. */
static CK_RV find_slot(int empty, CK_SLOT_ID *out) {
    CK_SLOT_ID slots[256];
    CK_ULONG n = 256;
    CK_RV rv = f->C_GetSlotList(CK_TRUE, slots, &n);
    if (rv != CKR_OK) return rv;
    CK_UTF8CHAR want[32];
    pad(want, token_label, 32);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_TOKEN_INFO ti;
        rv = f->C_GetTokenInfo(slots[i], &ti);
        if (rv != CKR_OK) return rv;
        int initialized = (ti.flags & CKF_TOKEN_INITIALIZED) != 0;
        if ((empty && !initialized) || (!empty && initialized && !memcmp(ti.label, want, 32))) {
            *out = slots[i];
            return CKR_OK;
        }
    }
    return CKR_TOKEN_NOT_PRESENT;
}

static CK_RV find_one(CK_SESSION_HANDLE h, CK_OBJECT_CLASS cls, const char *label,
                      CK_OBJECT_HANDLE *out) {
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, (void *)label, strlen(label)}};
    CK_RV rv = f->C_FindObjectsInit(h, t, 2);
    if (rv != CKR_OK) return rv;
    CK_ULONG n = 0;
    rv = f->C_FindObjects(h, out, 1, &n);
    f->C_FindObjectsFinal(h);
    if (rv != CKR_OK) return rv;
    return n == 1 ? CKR_OK : CKR_OBJECT_HANDLE_INVALID;
}

static CK_RV gen_ec(CK_SESSION_HANDLE h, const char *label) {
    CK_ATTRIBUTE pub_t[] = {{CKA_TOKEN, &yes, sizeof yes},
                            {CKA_VERIFY, &yes, sizeof yes},
                            {CKA_EC_PARAMS, p256, sizeof p256},
                            {CKA_LABEL, (void *)label, strlen(label)}};
    CK_ATTRIBUTE priv_t[] = {{CKA_TOKEN, &yes, sizeof yes},
                             {CKA_PRIVATE, &yes, sizeof yes},
                             {CKA_SIGN, &yes, sizeof yes},
                             {CKA_LABEL, (void *)label, strlen(label)}};
    CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE pub, priv;
    return f->C_GenerateKeyPair(h, &gen, pub_t, 4, priv_t, 4, &pub, &priv);
}

static CK_RV gen_aes(CK_SESSION_HANDLE h, const char *label) {
    CK_ULONG len = 32;
    CK_ATTRIBUTE t[] = {{CKA_TOKEN, &yes, sizeof yes},
                        {CKA_VALUE_LEN, &len, sizeof len},
                        {CKA_LABEL, (void *)label, strlen(label)}};
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE key;
    return f->C_GenerateKey(h, &gen, t, 3, &key);
}

static CK_RV sign_verify(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub) {
    CK_MECHANISM ecdsa = {CKM_ECDSA_SHA256, NULL, 0};
    CK_BYTE msg[] = "signed while forking";
    CK_BYTE sig[64];
    CK_ULONG siglen = sizeof sig;
    CK_RV rv = f->C_SignInit(h, &ecdsa, priv);
    if (rv == CKR_OK) rv = f->C_Sign(h, msg, sizeof msg, sig, &siglen);
    if (rv == CKR_OK) rv = f->C_VerifyInit(h, &ecdsa, pub);
    if (rv == CKR_OK) rv = f->C_Verify(h, msg, sizeof msg, sig, siglen);
    return rv;
}

static CK_RV open_session(CK_SESSION_HANDLE *h) {
    return f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, h);
}

static void count(CK_RV rv, const char *what) {
    if (rv == CKR_OK) {
        atomic_fetch_add(&parent_ops, 1);
    } else {
        atomic_fetch_add(&parent_errors, 1);
        fprintf(stderr, "parent: %s failed: 0x%lx\n", what, (unsigned long)rv);
    }
}

static void *signer(void *arg) {
    (void)arg;
    CK_SESSION_HANDLE h;
    CK_OBJECT_HANDLE priv = 0, pub = 0;
    CK_RV rv = open_session(&h);
    if (rv == CKR_OK) rv = find_one(h, CKO_PRIVATE_KEY, "fork-signer", &priv);
    if (rv == CKR_OK) rv = find_one(h, CKO_PUBLIC_KEY, "fork-signer", &pub);
    count(rv, "signer set-up");
    while (rv == CKR_OK && !atomic_load(&stop)) count(sign_verify(h, priv, pub), "sign/verify");
    return NULL;
}

static void *generator(void *arg) {
    long t = (long)arg;
    CK_SESSION_HANDLE h;
    CK_RV rv = open_session(&h);
    count(rv, "generator set-up");
    for (long n = 0; rv == CKR_OK && !atomic_load(&stop); n++) {
        char label[64];
        snprintf(label, sizeof label, "fork-parent-%ld-%ld", t, n);
        CK_RV g = (n % 2 == 0) ? gen_ec(h, label) : gen_aes(h, label);
        count(g, "generate");
        if (g == CKR_OK) atomic_fetch_add(&parent_keys, 1);
        /* Busy, but leaving SQLite's one writer lock free now and then: without a pause two
         * generators starve the children's writes for seconds (a property of SQLite's busy
         * handler, not of fork), and the run takes minutes. */
        sleep_ms(1);
    }
    return NULL;
}

/* Everything a child does; exits with a code naming the first step that failed. */
static void child_work(int i) {
    CK_ULONG n = 0;
    CK_RV rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv != CKR_CRYPTOKI_NOT_INITIALIZED) DIE(10, "C_GetSlotList before C_Initialize", rv);
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.flags = init_flags;
    if ((rv = f->C_Initialize(&args)) != CKR_OK) DIE(11, "C_Initialize", rv);
    CK_SLOT_ID s;
    if ((rv = find_slot(0, &s)) != CKR_OK) DIE(12, "finding the token", rv);
    CK_SESSION_HANDLE h;
    if ((rv = f->C_OpenSession(s, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h)) != CKR_OK)
        DIE(13, "C_OpenSession", rv);
    if ((rv = f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin))) != CKR_OK)
        DIE(14, "C_Login", rv);
    CK_OBJECT_HANDLE priv, pub;
    if ((rv = find_one(h, CKO_PRIVATE_KEY, "fork-signer", &priv)) != CKR_OK)
        DIE(15, "finding the private key", rv);
    if ((rv = find_one(h, CKO_PUBLIC_KEY, "fork-signer", &pub)) != CKR_OK)
        DIE(16, "finding the public key", rv);
    if ((rv = sign_verify(h, priv, pub)) != CKR_OK) DIE(17, "sign/verify", rv);
    char label[64];
    snprintf(label, sizeof label, "fork-child-%d", i);
    if ((rv = gen_aes(h, label)) != CKR_OK) DIE(18, "C_GenerateKey", rv);
    if ((rv = f->C_Finalize(NULL)) != CKR_OK) DIE(19, "C_Finalize", rv);
    _exit(0);
}

/* Waits for `pid` at most CHILD_TIMEOUT_S; 0 success, 1 error exit, 2 hang (killed). */
static int reap(pid_t pid) {
    for (int waited = 0; waited < CHILD_TIMEOUT_S * 100; waited++) {
        int status = 0;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
            fprintf(stderr, "child %d ended with status 0x%x\n", (int)pid, status);
            return 1;
        }
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fprintf(stderr, "child %d hung: killed after %d s\n", (int)pid, CHILD_TIMEOUT_S);
    return 2;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s /path/to/libsqlhsm.so\n", argv[0]);
        return 2;
    }
    token_label = getenv("FORK_TOKEN") ? getenv("FORK_TOKEN") : "fork";
    int forks = getenv("FORKS") ? atoi(getenv("FORKS")) : 100;
    if (getenv("FORK_NO_OS_THREADS") && strcmp(getenv("FORK_NO_OS_THREADS"), "1") == 0)
        init_flags |= CKF_LIBRARY_CANT_CREATE_OS_THREADS;
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
    if (!gfl || gfl(&f) != CKR_OK) return 1;
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.flags = init_flags;
    CK_RV rv = f->C_Initialize(&args);
    if (rv != CKR_OK) {
        fprintf(stderr, "C_Initialize: 0x%lx\n", (unsigned long)rv);
        return 1;
    }

    /* The token, its user PIN and the key every signer and child uses. */
    CK_SLOT_ID empty;
    CK_UTF8CHAR tlabel[32];
    pad(tlabel, token_label, 32);
    CK_SESSION_HANDLE h;
    if (find_slot(1, &empty) != CKR_OK ||
        f->C_InitToken(empty, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin), tlabel) != CKR_OK ||
        find_slot(0, &slot) != CKR_OK || open_session(&h) != CKR_OK ||
        f->C_Login(h, CKU_SO, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin)) != CKR_OK ||
        f->C_InitPIN(h, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin)) != CKR_OK ||
        f->C_Logout(h) != CKR_OK ||
        f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)user_pin, strlen(user_pin)) != CKR_OK ||
        gen_ec(h, "fork-signer") != CKR_OK) {
        fprintf(stderr, "set-up failed\n");
        return 1;
    }

    pthread_t threads[SIGNERS + GENERATORS];
    for (long t = 0; t < SIGNERS + GENERATORS; t++)
        pthread_create(&threads[t], NULL, t < SIGNERS ? signer : generator, (void *)t);
    sleep_ms(200);

    int hangs = 0, child_errors = 0;
    srand(7);
    for (int i = 0; i < forks; i++) {
        sleep_ms(5 + rand() % 20);
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) child_work(i);
        int r = reap(pid);
        if (r == 1) child_errors++;
        if (r == 2) hangs++;
    }
    atomic_store(&stop, 1);
    for (int t = 0; t < SIGNERS + GENERATORS; t++) pthread_join(threads[t], NULL);
    /* The parent is intact: it signs again and finalizes. */
    CK_OBJECT_HANDLE priv, pub;
    rv = find_one(h, CKO_PRIVATE_KEY, "fork-signer", &priv);
    if (rv == CKR_OK) rv = find_one(h, CKO_PUBLIC_KEY, "fork-signer", &pub);
    if (rv == CKR_OK) rv = sign_verify(h, priv, pub);
    count(rv, "sign after the forks");
    count(f->C_Finalize(NULL), "C_Finalize");
    printf("fork summary: forks=%d hangs=%d child_errors=%d parent_ops=%ld parent_errors=%ld "
           "parent_keys=%ld child_keys=%d\n",
           forks, hangs, child_errors, atomic_load(&parent_ops), atomic_load(&parent_errors),
           atomic_load(&parent_keys), forks - hangs - child_errors);
    return 0;
}
