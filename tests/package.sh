#!/usr/bin/env bash
# sqlhsm installed as a system PKCS#11 module. Checks `make install` / `make uninstall` into a
# DESTDIR; then installs the .deb `make deb` built on this machine, checks its layout, creates a
# token with the installed /usr/bin/sqlhsm in the store the installed module finds by itself (the
# default one, in a scratch HOME), drives it through p11-kit and GnuTLS's p11tool with no module
# path given, and through p11-kit-proxy.so (also on PostgreSQL when the server is reachable);
# checks that a missing store, a bad configuration and an unreadable store break no p11-kit
# program; uses the shared directory /var/lib/sqlhsm as two members of the group `sqlhsm`; then
# purges the package and checks that nothing is left — except key stores, which a purge keeps.
#
# Usage (as root: it installs and removes a system package; .ci/run runs it after the tests):
#   make deb && bash tests/package.sh [target/deb/sqlhsm_<version>_<arch>.deb]
# Outside CI a missing tool is reported and the test skips; with CI set it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

skip() {
    if [ -n "${CI:-}" ]; then
        echo "FAIL: $*" >&2
        exit 1
    fi
    echo "SKIP: $*"
    exit 0
}
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
step() { printf '\n=== [%3d s] %s\n' "$SECONDS" "$*"; }

[ "$(id -u)" -eq 0 ] || skip "tests/package.sh installs a system package: run it as root"
for tool in dpkg-architecture p11-kit p11tool pkcs11-tool pkg-config cc setpriv openssl; do
    command -v "$tool" >/dev/null ||
        skip "$tool is missing (packages dpkg-dev, p11-kit, gnutls-bin, opensc, pkgconf, gcc, openssl)"
done
openssl engine pkcs11 >/dev/null 2>&1 || skip "OpenSSL's pkcs11 engine is missing (libengine-pkcs11-openssl)"
DEB=${1:-}
if [ -z "$DEB" ]; then
    DEB=$(ls target/deb/sqlhsm_*.deb 2>/dev/null | head -n 1)
fi
[ -f "$DEB" ] || fail "no package ${DEB:-target/deb/sqlhsm_*.deb}: run \`make deb\` first"
DEB=$(realpath "$DEB")
if dpkg-query -W -f '${db:Status-Status}' sqlhsm 2>/dev/null | grep -qv '^not-installed$'; then
    fail "a sqlhsm package is already installed here; this test installs and purges its own"
fi
getent group sqlhsm >/dev/null && fail "the group sqlhsm exists before the package is installed"

MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
MODULE=/usr/lib/$MULTIARCH/pkcs11/libsqlhsm.so
PROXY=/usr/lib/$MULTIARCH/p11-kit-proxy.so
WORK=$(mktemp -d /tmp/sqlhsm-package.XXXXXX)
chmod 755 "$WORK" # the unprivileged steps below enter it
INSTALLED=
# The PostgreSQL server the other tests use (SQLHSM_TEST_PG, as in tests/common/mod.rs).
PG_BASE=${SQLHSM_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}
PG_DB=
cleanup() {
    local status=$?
    if [ -n "$INSTALLED" ]; then
        echo "cleanup: purging the package" >&2
        rm -f /var/lib/sqlhsm/shared.db /var/lib/sqlhsm/shared.db-wal /var/lib/sqlhsm/shared.db-shm
        dpkg --purge sqlhsm >/dev/null 2>&1 || true
    fi
    if [ -n "$PG_DB" ]; then
        psql "$PG_BASE" -w -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT

# The installed command and the programs below see only what a user's login would: the default
# configuration, in a HOME of their own.
unset SQLHSM_DB SQLHSM_CONF SQLHSM_LOG SQLHSM_PIN SQLHSM_SO_PIN XDG_DATA_HOME XDG_CONFIG_HOME
export HOME=$WORK/home
mkdir -p "$HOME"
STORE=$HOME/.local/share/sqlhsm/sqlhsm.db
SO_PIN=so-pin-0000
PIN=user-pin-1111

install_package() {
    apt-get install -y -qq --no-install-recommends "$DEB" >"$WORK/apt.log" 2>&1 ||
        { cat "$WORK/apt.log"; fail "apt-get install $DEB"; }
    INSTALLED=1
}

step "make install and make uninstall (PREFIX=/usr/local, into a DESTDIR)"
STAGE=$WORK/stage
make --no-print-directory install DESTDIR="$STAGE" PREFIX=/usr/local >"$WORK/make.log" 2>&1 ||
    { cat "$WORK/make.log"; fail "make install"; }
(cd "$STAGE" && find . -type f | sort)
for path in /usr/local/lib/pkcs11/libsqlhsm.so /usr/local/bin/sqlhsm \
    /usr/local/include/sqlhsm/sqlhsm.h /usr/local/lib/pkgconfig/sqlhsm.pc \
    /usr/local/share/man/man1/sqlhsm.1.gz /usr/local/share/doc/sqlhsm/examples/sqlhsm.toml; do
    [ -f "$STAGE$path" ] || fail "make install did not install $path"
done
[ -d "$STAGE/var/lib/sqlhsm" ] || fail "make install did not make /var/lib/sqlhsm"
# p11-kit never reads /usr/local: the administrator's module directory, naming the module there.
grep -qx 'module: /usr/local/lib/pkcs11/libsqlhsm.so' "$STAGE/etc/pkcs11/modules/sqlhsm.module" ||
    fail "make install's p11-kit module file does not name /usr/local/lib/pkcs11/libsqlhsm.so"
grep -qx 'module=/usr/local/lib/pkcs11/libsqlhsm.so' "$STAGE/usr/local/lib/pkgconfig/sqlhsm.pc" ||
    fail "make install's sqlhsm.pc does not name the module"
make --no-print-directory uninstall DESTDIR="$STAGE" PREFIX=/usr/local >"$WORK/make.log" 2>&1 ||
    { cat "$WORK/make.log"; fail "make uninstall"; }
[ -z "$(find "$STAGE" -type f)" ] || fail "make uninstall left $(find "$STAGE" -type f)"
[ ! -e "$STAGE/var/lib/sqlhsm" ] || fail "make uninstall left the empty /var/lib/sqlhsm"

step "install $(basename "$DEB")"
dpkg-deb --info "$DEB"
dpkg-deb --contents "$DEB" | awk '{ print $1, $2, $NF }'
install_package
dpkg-query -W -f '${Package} ${Version} ${Status}\n' sqlhsm

step "layout"
for path in "$MODULE" /usr/bin/sqlhsm /usr/include/sqlhsm/sqlhsm.h /usr/include/sqlhsm/pkcs11.h \
    "/usr/lib/$MULTIARCH/pkgconfig/sqlhsm.pc" /usr/share/p11-kit/modules/sqlhsm.module \
    /usr/share/man/man1/sqlhsm.1.gz /usr/share/man/man1/sqlhsm-token-init.1.gz \
    /usr/share/doc/sqlhsm/examples/sqlhsm.toml /usr/share/doc/sqlhsm/copyright; do
    [ -f "$path" ] || fail "$path is not installed"
done
[ "$(stat -c '%U:%G %a' /var/lib/sqlhsm)" = "root:sqlhsm 2770" ] ||
    fail "/var/lib/sqlhsm is $(stat -c '%U:%G %a' /var/lib/sqlhsm), not root:sqlhsm 2770"
# No conffile: the module reads no file in /etc (README, "Install").
if dpkg-query -L sqlhsm | grep -q '^/etc'; then fail "the package ships a file in /etc"; fi
ls -l "$MODULE" /usr/bin/sqlhsm
# Stripped: no symbol table and no debug sections, while the C_* exports stay.
for file in "$MODULE" /usr/bin/sqlhsm; do
    if readelf -S --wide "$file" | grep -qE ' \.(symtab|debug_[a-z]+) '; then
        fail "$file is not stripped"
    fi
done
nm -D --defined-only "$MODULE" | grep -q ' T C_GetFunctionList$' ||
    fail "$MODULE does not export C_GetFunctionList"

step "pkg-config and the header"
[ "$(pkg-config --variable=module sqlhsm)" = "$MODULE" ] ||
    fail "pkg-config names the module $(pkg-config --variable=module sqlhsm)"
[ "$(pkg-config --cflags sqlhsm | tr -d ' ')" = "-I/usr/include/sqlhsm" ] ||
    fail "pkg-config --cflags sqlhsm is $(pkg-config --cflags sqlhsm)"
cat >"$WORK/load.c" <<'C'
/* Loads the module pkg-config names, through the installed header, and prints its CK_INFO. */
#include <dlfcn.h>
#include <stdio.h>
#include <pkcs11.h>
#include <sqlhsm.h>

int main(int argc, char **argv) {
    void *so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (argc != 2 || !so) { fprintf(stderr, "dlopen: %s\n", dlerror()); return 1; }
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(so, "C_GetFunctionList");
    CK_FUNCTION_LIST_PTR f;
    CK_INFO info;
    if (!get || get(&f) != CKR_OK || f->C_Initialize(NULL) != CKR_OK) return 1;
    if (f->C_GetInfo(&info) != CKR_OK) return 1;
    printf("%.32s %.32s vendor attribute base 0x%lx\n", (char *)info.manufacturerID,
           (char *)info.libraryDescription, (unsigned long)CKA_SQLHSM_BASE);
    return f->C_Finalize(NULL) == CKR_OK ? 0 : 1;
}
C
# shellcheck disable=SC2046 # pkg-config's words are separate arguments
cc -Wall -Werror $(pkg-config --cflags sqlhsm) -o "$WORK/load" "$WORK/load.c" -ldl
"$WORK/load" "$(pkg-config --variable=module sqlhsm)" | tee "$WORK/load.txt"
grep -q '^sqlhsm' "$WORK/load.txt" || fail "the module's CK_INFO does not name sqlhsm"
[ ! -e "$STORE" ] || fail "loading the module created $STORE (a store is made by a write only)"

step "manual pages"
zcat /usr/share/man/man1/sqlhsm.1.gz | grep -q '^\.TH sqlhsm 1' || fail "sqlhsm.1 has no .TH"
for sub in token key db; do
    zcat /usr/share/man/man1/sqlhsm.1.gz | grep -q "sqlhsm\\\\-$sub(1)" ||
        fail "sqlhsm.1 does not name sqlhsm-$sub(1)"
done
if command -v man >/dev/null; then
    MANWIDTH=100 man sqlhsm-token-init 2>/dev/null | col -b >"$WORK/man.txt"
    sed -n 1,12p "$WORK/man.txt"
    grep -q -- '--so-pin-file' "$WORK/man.txt" || fail "man sqlhsm-token-init lacks --so-pin-file"
fi

step "the example configuration is valid (it names the shared store, which does not exist yet)"
set +e
SQLHSM_CONF=/usr/share/doc/sqlhsm/examples/sqlhsm.toml sqlhsm db status 2>"$WORK/example.err"
code=$?
set -e
cat "$WORK/example.err"
[ "$code" -eq 3 ] && grep -q 'no key store at /var/lib/sqlhsm/sqlhsm.db' "$WORK/example.err" ||
    fail "sqlhsm db status with the example configuration: exit $code"

step "p11-kit lists sqlhsm with no store yet (its one empty slot), and no file is made"
p11-kit list-modules | tee "$WORK/modules.txt"
grep -qx "sqlhsm: $MODULE" "$WORK/modules.txt" || fail "p11-kit list-modules does not list sqlhsm"
grep -A 2 -x "sqlhsm: $MODULE" "$WORK/modules.txt" | grep -q 'library-manufacturer: sqlhsm' ||
    fail "p11-kit did not initialise sqlhsm"
# GnuTLS leaves uninitialised tokens out: p11tool shows the other modules' tokens, as before.
p11tool --list-tokens | tee "$WORK/tokens.txt"
grep -q 'Label: System Trust' "$WORK/tokens.txt" || fail "p11tool lost p11-kit's trust module"
[ ! -e "$STORE" ] || fail "listing tokens created $STORE"

step "token and key with the installed /usr/bin/sqlhsm, in the default store"
export SQLHSM_SO_PIN=$SO_PIN SQLHSM_PIN=$PIN
/usr/bin/sqlhsm token init pkg-token
/usr/bin/sqlhsm key generate --token pkg-token --algorithm ec-p256 --label pkg-key --id 0a01
/usr/bin/sqlhsm key generate --token pkg-token --algorithm rsa-2048 --label pkg-rsa --id 0a02
unset SQLHSM_SO_PIN SQLHSM_PIN
[ -f "$STORE" ] || fail "sqlhsm token init did not create the default store $STORE"

step "p11-kit and p11tool find the token (no module path given)"
p11-kit list-modules | tee "$WORK/modules.txt"
grep -q 'token: pkg-token' "$WORK/modules.txt" || fail "p11-kit list-modules lacks pkg-token"
p11tool --list-tokens | tee "$WORK/tokens.txt"
grep -q 'Label: pkg-token' "$WORK/tokens.txt" || fail "p11tool --list-tokens lacks pkg-token"
export GNUTLS_PIN=$PIN
p11tool --login --list-all 'pkcs11:token=pkg-token' | tee "$WORK/objects.txt"
for object in 'token=pkg-token;id=%0a%01;object=pkg-key;type=private' \
    'id=%0a%01;object=pkg-key;type=public' 'id=%0a%02;object=pkg-rsa;type=private'; do
    grep -qiE "URL: pkcs11:.*$object" "$WORK/objects.txt" || fail "p11tool --list-all lacks $object"
done

step "p11tool signs and verifies with the EC and RSA keys"
for key in pkg-key pkg-rsa; do
    p11tool --login --test-sign "pkcs11:token=pkg-token;object=$key" 2>&1 | tee "$WORK/sign.txt"
    grep -q 'Verifying against public key in the token\.\.\. ok' "$WORK/sign.txt" ||
        fail "p11tool --test-sign $key did not verify"
done
unset GNUTLS_PIN

step "through p11-kit-proxy.so: OpenSSL's libp11 engine signs by pkcs11: URI, no module named"
# Debian's libp11 engine loads p11-kit-proxy.so when given no MODULE_PATH, so the key is found by
# its URI alone. The signature is checked by plain OpenSSL against the key exported with sqlhsm.
printf '%s' "0123456789abcdef0123456789abcdef" >"$WORK/hash"
openssl pkeyutl -engine pkcs11 -keyform engine -sign -in "$WORK/hash" -out "$WORK/sig" \
    -inkey "pkcs11:token=pkg-token;object=pkg-key;type=private;pin-value=$PIN"
/usr/bin/sqlhsm key export-public 0a01 >"$WORK/pkg-key.pem"
openssl pkeyutl -verify -pubin -inkey "$WORK/pkg-key.pem" -in "$WORK/hash" -sigfile "$WORK/sig" ||
    fail "the signature made through p11-kit-proxy.so does not verify"
pkcs11-tool --module "$PROXY" --token-label pkg-token --list-objects | tee "$WORK/proxy.txt"
grep -q 'label: *pkg-key' "$WORK/proxy.txt" || fail "pkcs11-tool through the proxy lacks pkg-key"

# When sqlhsm's C_Initialize fails, every p11-kit program must go on with the other modules:
# p11tool, `p11-kit list-modules` and p11-kit-proxy.so (which a `critical: yes` would fail).
without_sqlhsm() { # $1 = what is wrong; the rest is the command prefix (env, setpriv …)
    local what=$1
    shift
    "$@" p11tool --list-tokens >"$WORK/tokens.txt" 2>"$WORK/tokens.err" ||
        { cat "$WORK/tokens.err"; fail "p11tool --list-tokens failed with $what"; }
    cat "$WORK/tokens.err"
    grep -q 'Label: pkg-token' "$WORK/tokens.txt" && fail "sqlhsm was used with $what"
    grep -q 'Label: System Trust' "$WORK/tokens.txt" || fail "p11tool lost the other modules ($what)"
    "$@" p11-kit list-modules >"$WORK/modules.txt" 2>&1 ||
        { cat "$WORK/modules.txt"; fail "p11-kit list-modules failed with $what"; }
    grep -q 'token: System Trust' "$WORK/modules.txt" || fail "p11-kit lost the other modules ($what)"
    # (pkcs11-tool exits 1 when no module has a slot, as for nobody here: its C_GetInfo line
    # is what says that the proxy's C_Initialize succeeded.)
    "$@" pkcs11-tool --module "$PROXY" --show-info >"$WORK/proxy.txt" 2>&1 || true
    grep -q 'Library *PKCS#11 Kit Proxy Module' "$WORK/proxy.txt" ||
        { cat "$WORK/proxy.txt"; fail "p11-kit-proxy.so failed with $what"; }
}

step "the installed build on PostgreSQL: a token made by sqlhsm, used through p11-kit"
# Through p11-kit and its proxy. GnuTLS (p11tool) initialises every module with
# CKF_LIBRARY_CANT_CREATE_OS_THREADS, which a PostgreSQL store refuses (it needs its threads):
# README, "Install".
if command -v psql >/dev/null && psql "$PG_BASE" -w -Atqc 'SELECT 1' >/dev/null 2>&1; then
    PG_DB=sqlhsm_package_$$
    psql "$PG_BASE" -w -qc "CREATE DATABASE $PG_DB"
    export SQLHSM_DB=${PG_BASE%/*}/$PG_DB
    SQLHSM_SO_PIN=$SO_PIN SQLHSM_PIN=$PIN /usr/bin/sqlhsm token init pg-token
    SQLHSM_PIN=$PIN /usr/bin/sqlhsm key generate --token pg-token --algorithm ec-p256 \
        --label pg-key --id 0b01
    p11-kit list-modules | grep -q 'token: pg-token' || fail "p11-kit does not list pg-token"
    openssl pkeyutl -engine pkcs11 -keyform engine -sign -in "$WORK/hash" -out "$WORK/pg.sig" \
        -inkey "pkcs11:token=pg-token;object=pg-key;type=private;pin-value=$PIN"
    /usr/bin/sqlhsm key export-public 0b01 >"$WORK/pg-key.pem"
    openssl pkeyutl -verify -pubin -inkey "$WORK/pg-key.pem" -in "$WORK/hash" \
        -sigfile "$WORK/pg.sig" || fail "the PostgreSQL key's signature does not verify"
    unset SQLHSM_DB
    psql "$PG_BASE" -w -qc "DROP DATABASE $PG_DB WITH (FORCE)"
    PG_DB=
elif [ -n "${CI:-}" ]; then
    fail "PostgreSQL is unreachable at $PG_BASE"
else
    echo "SKIP: PostgreSQL is unreachable at $PG_BASE (set SQLHSM_TEST_PG)"
fi

step "a bad configuration: p11-kit programs go on without sqlhsm"
without_sqlhsm "a bad configuration" env SQLHSM_DB=keys.db
grep -q 'sqlhsm: configuration: SQLHSM_DB "keys.db" has an unsupported scheme' "$WORK/tokens.err" ||
    fail "sqlhsm did not say what is wrong with the configuration"

step "a store its user cannot read: p11-kit programs go on without sqlhsm"
NOBODY_HOME=$WORK/nobody
install -d -o nobody "$NOBODY_HOME" "$NOBODY_HOME/.local" "$NOBODY_HOME/.local/share"
install -d -o nobody -m 700 "$NOBODY_HOME/.local/share/sqlhsm"
install -o nobody -m 000 "$STORE" "$NOBODY_HOME/.local/share/sqlhsm/sqlhsm.db"
without_sqlhsm "an unreadable store" \
    setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$NOBODY_HOME"
grep -q 'cannot open the key store .*: Permission denied' "$WORK/tokens.err" ||
    fail "sqlhsm did not say why it cannot open the store"

step "a user whose home does not exist: sqlhsm's empty slot, and nothing created"
setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/nonexistent \
    p11-kit list-modules | grep -A 2 -x "sqlhsm: $MODULE" | grep -q 'library-manufacturer: sqlhsm' ||
    fail "p11-kit run by nobody did not initialise sqlhsm"
[ ! -e /nonexistent ] || fail "the module created /nonexistent"

step "/var/lib/sqlhsm: a store shared by the members of the group sqlhsm"
SHARED=sqlite:/var/lib/sqlhsm/shared.db
as_member() { # $1 = user; the rest runs as that user, in the group sqlhsm only
    local user=$1
    shift
    setpriv --reuid="$user" --regid=sqlhsm --clear-groups env HOME=/nonexistent \
        SQLHSM_DB="$SHARED" "$@"
}
SQLHSM_SO_PIN=$SO_PIN SQLHSM_PIN=$PIN as_member nobody sqlhsm token init shared-token
# The directory gives the new file its group; SQLite creates it 0644 (less the umask), so the
# group gets write access by hand, as the README says. -wal and -shm then follow its mode.
as_member nobody chmod 660 /var/lib/sqlhsm/shared.db
ls -l /var/lib/sqlhsm
[ "$(stat -c '%G' /var/lib/sqlhsm/shared.db)" = sqlhsm ] || fail "the shared store's group is not sqlhsm"
# Another user of the group signs with it: login writes the PIN counter, so this needs write access.
SQLHSM_PIN=$PIN as_member daemon sqlhsm key generate --token shared-token --algorithm ec-p256 \
    --label shared-key
GNUTLS_PIN=$PIN as_member daemon p11tool --login --test-sign \
    'pkcs11:token=shared-token;object=shared-key' 2>&1 | grep -q 'public key in the token\.\.\. ok' ||
    fail "a second member of the group cannot sign with the shared store"

step "purge with a store in /var/lib/sqlhsm: the store and the group are kept"
dpkg --purge sqlhsm
INSTALLED=
[ -f /var/lib/sqlhsm/shared.db ] || fail "purging the package deleted a key store"
getent group sqlhsm >/dev/null || fail "the group owning a kept store was deleted"
install_package
SQLHSM_DB=$SHARED sqlhsm token list | grep -q shared-token ||
    fail "the reinstalled package does not find the kept store"
rm -f /var/lib/sqlhsm/shared.db /var/lib/sqlhsm/shared.db-wal /var/lib/sqlhsm/shared.db-shm

step "purge: nothing is left"
dpkg-query -L sqlhsm >"$WORK/files.txt"
dpkg --purge sqlhsm
INSTALLED=
left=0
while read -r path; do
    [ "$path" = /. ] && continue
    # Directories other packages share (/usr/lib/<multiarch>/pkcs11, /usr/share/man/man1, …).
    if [ -d "$path" ] && [ "$(dpkg-query -S "$path" 2>/dev/null)" != "" ]; then
        continue
    fi
    if [ -e "$path" ] || [ -L "$path" ]; then
        echo "left behind: $path" >&2
        left=1
    fi
done <"$WORK/files.txt"
[ "$left" -eq 0 ] || fail "the purge left files behind"
for path in /var/lib/sqlhsm /usr/include/sqlhsm /usr/share/doc/sqlhsm; do
    [ ! -e "$path" ] || fail "$path is left"
done
getent group sqlhsm >/dev/null && fail "the group sqlhsm is left"
dpkg-statoverride --list /var/lib/sqlhsm >/dev/null && fail "the statoverride of /var/lib/sqlhsm is left"
ls /var/lib/dpkg/info/sqlhsm.* >/dev/null 2>&1 && fail "dpkg still has sqlhsm's control files"
p11-kit list-modules | grep -q '^sqlhsm:' && fail "p11-kit still lists sqlhsm"
echo
echo "package test: ALL OK (${SECONDS} s)"
