# Builds and installs sqlhsm like a system PKCS#11 module (README, "Install").
#
#   make                                   release build and the manual pages (as yourself)
#   sudo make install [PREFIX=/usr/local] [LIBDIR=…] [DESTDIR=…]
#   sudo make uninstall                    with the same variables as install
#   make deb                               target/deb/sqlhsm_<version>_<arch>.deb (Debian, Ubuntu)
#
# `make deb` is `make install` into a staging directory with Debian's paths, plus the package's
# control files: both install exactly the same layout, written once, here.

CARGO ?= cargo
INSTALL ?= install

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
# Where PKCS#11 modules live: Debian's is /usr/lib/<multiarch>/pkcs11, as for opensc and p11-kit.
PKCS11DIR ?= $(LIBDIR)/pkcs11
INCLUDEDIR ?= $(PREFIX)/include
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
DOCDIR ?= $(DATADIR)/doc/sqlhsm
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# p11-kit reads the module files of packages in /usr/share/p11-kit/modules and those an
# administrator adds in /etc/pkcs11/modules (`pkg-config --variable=p11_module_configs
# p11-kit-1` names the first); it never looks under /usr/local.
ifeq ($(PREFIX),/usr)
P11KIT_MODULEDIR ?= $(DATADIR)/p11-kit/modules
else
P11KIT_MODULEDIR ?= /etc/pkcs11/modules
endif
# For key stores shared on this host. Mode 0700 (root's) unless STATEGROUP names a group, which
# then gets it with mode 2770; the Debian package does that with its group `sqlhsm`.
STATEDIR ?= /var/lib/sqlhsm
STATEGROUP ?=

VERSION := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)

RELEASE := target/release
SO := $(RELEASE)/libsqlhsm.so
BIN := $(RELEASE)/sqlhsm
MAN := $(RELEASE)/man

.PHONY: all build install uninstall deb

all: build

# cargo decides what is out of date; the pages come from the clap definitions as built. One
# cargo invocation: the example's dev-dependencies change the features of shared dependencies
# (bitflags' `std`), so building it separately would rebuild the library every other time.
build:
	$(CARGO) build --release --locked --lib --bin sqlhsm --example man
	$(RELEASE)/examples/man $(MAN)

# `sudo make install` after `make` builds nothing (these exist); alone, it builds first.
$(SO) $(BIN) $(MAN)/sqlhsm.1:
	$(MAKE) build

# The p11-kit module file and the pkg-config file name the installed paths. They are written
# straight into place, so `sudo make install` leaves nothing of root's in the build tree.
SUBST = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@PKCS11DIR@|$(PKCS11DIR)|g' \
    -e 's|@P11KIT_MODULEDIR@|$(P11KIT_MODULEDIR)|g' -e 's|@VERSION@|$(VERSION)|g'

install: $(SO) $(BIN) $(MAN)/sqlhsm.1
	$(INSTALL) -Dm 644 $(SO) $(DESTDIR)$(PKCS11DIR)/libsqlhsm.so
	$(INSTALL) -Dm 755 $(BIN) $(DESTDIR)$(BINDIR)/sqlhsm
	$(INSTALL) -Dm 644 -t $(DESTDIR)$(INCLUDEDIR)/sqlhsm include/sqlhsm.h include/pkcs11.h
	$(INSTALL) -d $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(P11KIT_MODULEDIR)
	$(SUBST) packaging/sqlhsm.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/sqlhsm.pc
	$(SUBST) packaging/sqlhsm.module.in > $(DESTDIR)$(P11KIT_MODULEDIR)/sqlhsm.module
	chmod 644 $(DESTDIR)$(PKGCONFIGDIR)/sqlhsm.pc $(DESTDIR)$(P11KIT_MODULEDIR)/sqlhsm.module
	$(INSTALL) -d $(DESTDIR)$(MANDIR)/man1
	for page in $(MAN)/*.1; do \
	    gzip -9n < $$page > $(DESTDIR)$(MANDIR)/man1/$${page##*/}.gz || exit 1; \
	    chmod 644 $(DESTDIR)$(MANDIR)/man1/$${page##*/}.gz; \
	done
	$(INSTALL) -Dm 644 README.md $(DESTDIR)$(DOCDIR)/README.md
	$(INSTALL) -Dm 644 packaging/sqlhsm.toml $(DESTDIR)$(DOCDIR)/examples/sqlhsm.toml
	# An existing state directory keeps its owner and mode: they are the administrator's.
	if [ ! -d $(DESTDIR)$(STATEDIR) ]; then \
	    $(INSTALL) -d -m 0700 $(DESTDIR)$(STATEDIR) || exit 1; \
	    if [ -n "$(STATEGROUP)" ]; then \
	        chgrp $(STATEGROUP) $(DESTDIR)$(STATEDIR) && chmod 2770 $(DESTDIR)$(STATEDIR); \
	    fi; \
	fi

# Removes what install put there; a state directory that still holds stores is kept.
uninstall:
	rm -f $(DESTDIR)$(PKCS11DIR)/libsqlhsm.so $(DESTDIR)$(BINDIR)/sqlhsm \
	    $(DESTDIR)$(INCLUDEDIR)/sqlhsm/sqlhsm.h $(DESTDIR)$(INCLUDEDIR)/sqlhsm/pkcs11.h \
	    $(DESTDIR)$(PKGCONFIGDIR)/sqlhsm.pc $(DESTDIR)$(P11KIT_MODULEDIR)/sqlhsm.module \
	    $(DESTDIR)$(MANDIR)/man1/sqlhsm.1.gz $(DESTDIR)$(MANDIR)/man1/sqlhsm-*.1.gz \
	    $(DESTDIR)$(DOCDIR)/README.md $(DESTDIR)$(DOCDIR)/examples/sqlhsm.toml
	rmdir $(DESTDIR)$(INCLUDEDIR)/sqlhsm $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) \
	    2>/dev/null || true
	@rmdir $(DESTDIR)$(STATEDIR) 2>/dev/null || \
	    echo "kept $(DESTDIR)$(STATEDIR): it is not empty (key stores?)"

# --- Debian package -------------------------------------------------------------------------
# Needs dpkg-dev (dpkg-architecture, dpkg-shlibdeps). The package is not a shared library in
# Debian's sense (no SONAME, nothing links to it: it is loaded as a plugin), so it has no shlibs
# file and no ldconfig trigger.
DEB_ARCH = $(shell dpkg --print-architecture)
DEB_MULTIARCH = $(shell dpkg-architecture -qDEB_HOST_MULTIARCH)
DEB_DIR := target/deb
DEB_ROOT := $(DEB_DIR)/root
MAINTAINER ?= sqlhsm developers <sqlhsm@example.invalid>

deb: build
	rm -rf $(DEB_DIR)
	$(MAKE) install DESTDIR=$(CURDIR)/$(DEB_ROOT) PREFIX=/usr BINDIR=/usr/bin \
	    LIBDIR=/usr/lib/$(DEB_MULTIARCH) PKCS11DIR=/usr/lib/$(DEB_MULTIARCH)/pkcs11 \
	    PKGCONFIGDIR=/usr/lib/$(DEB_MULTIARCH)/pkgconfig INCLUDEDIR=/usr/include \
	    DATADIR=/usr/share MANDIR=/usr/share/man DOCDIR=/usr/share/doc/sqlhsm \
	    P11KIT_MODULEDIR=/usr/share/p11-kit/modules STATEDIR=/var/lib/sqlhsm STATEGROUP=
	$(INSTALL) -Dm 644 packaging/debian/copyright $(DEB_ROOT)/usr/share/doc/sqlhsm/copyright
	$(INSTALL) -Dm 755 -t $(DEB_ROOT)/DEBIAN packaging/debian/postinst packaging/debian/postrm
	# dpkg-shlibdeps reads a debian/control; it only needs to name the package.
	mkdir -p $(DEB_DIR)/debian
	printf 'Source: sqlhsm\n\nPackage: sqlhsm\nArchitecture: any\n' > $(DEB_DIR)/debian/control
	cd $(DEB_DIR) && dpkg-shlibdeps -O -eroot/usr/lib/$(DEB_MULTIARCH)/pkcs11/libsqlhsm.so \
	    -eroot/usr/bin/sqlhsm > substvars
	sed -n 's/^shlibs:Depends=//p' $(DEB_DIR)/substvars > $(DEB_DIR)/depends
	test -s $(DEB_DIR)/depends
	sed -e 's|@VERSION@|$(VERSION)|' -e 's|@ARCH@|$(DEB_ARCH)|' \
	    -e 's|@MAINTAINER@|$(MAINTAINER)|' \
	    -e "s|@INSTALLED_SIZE@|$$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1)|" \
	    -e "s|@DEPENDS@|$$(cat $(DEB_DIR)/depends)|" \
	    packaging/debian/control.in > $(DEB_ROOT)/DEBIAN/control
	cd $(DEB_ROOT) && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z \
	    | xargs -0 md5sum > DEBIAN/md5sums
	dpkg-deb --root-owner-group --build $(DEB_ROOT) \
	    $(DEB_DIR)/sqlhsm_$(VERSION)_$(DEB_ARCH).deb
