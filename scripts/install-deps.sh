#!/usr/bin/env bash
# Installs the Debian packages ldap-socketmap's demo and tests run for real: OpenLDAP (slapd,
# ldap-utils), Postfix with its LDAP table (the referee), swaks (SMTP client for the end-to-end
# test), prometheus (promtool checks the metrics exposition), systemd (systemd-analyze
# verifies the unit files), strace (a traced run checks the unit's system call filter), and for
# the Debian package (built with dpkg-deb, part of dpkg): lintian (checks it), mandoc
# (lints the man pages), adduser and init-system-helpers (its maintainer scripts); curl for
# the README's examples (test/integration/readme-examples.test.ts).
# Installs only what is missing; asks no questions. Installing slapd or postfix may start
# their system services (Debian's default); nothing here or in the tests stops or
# reconfigures them: the tests use private instances on their own ports.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
exec </dev/null
say() { printf '\n==> %s\n' "$*"; }

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
fi

missing=()
command -v slapd >/dev/null 2>&1 || [ -x /usr/sbin/slapd ] || missing+=(slapd)
command -v ldapsearch >/dev/null 2>&1 || missing+=(ldap-utils)
command -v postmap >/dev/null 2>&1 || [ -x /usr/sbin/postmap ] || missing+=(postfix)
[ -e /usr/lib/postfix/postfix-ldap.so ] || missing+=(postfix-ldap)
command -v swaks >/dev/null 2>&1 || missing+=(swaks)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v strace >/dev/null 2>&1 || [ -x /usr/bin/strace ] || missing+=(strace)
# TLS and SASL tests: a throwaway PKI (openssl), slapd's private sasldb (saslpasswd2) and the
# Cyrus PLAIN/sasldb plugins; unshare gives slapd its private SASL config directory.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
[ -x /usr/sbin/saslpasswd2 ] || missing+=(sasl2-bin)
[ -e /usr/lib/x86_64-linux-gnu/sasl2/libplain.so ] || ls /usr/lib/*/sasl2/libplain.so >/dev/null 2>&1 || missing+=(libsasl2-modules)
command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
# The Debian package test: lintian, mandoc (man page lint), adduser and deb-systemd-helper for
# the maintainer scripts.
command -v lintian >/dev/null 2>&1 || missing+=(lintian)
command -v mandoc >/dev/null 2>&1 || missing+=(mandoc)
command -v adduser >/dev/null 2>&1 || [ -x /usr/sbin/adduser ] || missing+=(adduser)
command -v deb-systemd-helper >/dev/null 2>&1 || missing+=(init-system-helpers)
# 389 Directory Server for the directory suite (npm run test:directories); never started as a service.
[ -x /usr/sbin/dscreate ] && [ -x /usr/sbin/ns-slapd ] || missing+=(389-ds-base)
# Samba AD DC for test/directories/ad.test.ts (npm run test:directories); the tests provision
# and run their own DC in a network namespace, never the system one.
[ -x /usr/sbin/samba ] && [ -x /usr/bin/samba-tool ] || missing+=(samba)
[ -x /usr/sbin/ip ] || missing+=(iproute2)

if [ "${#missing[@]}" -gt 0 ]; then
  say "missing: ${missing[*]}; installing them"
  say "preseeding debconf (postfix: No configuration; slapd: no initial configuration)"
  $SUDO debconf-set-selections <<'EOF'
postfix postfix/main_mailer_type select No configuration
postfix postfix/mailname string ci.invalid
slapd slapd/no_configuration boolean true
EOF
  say "apt-get update"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
  say "apt-get install -y ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}"
else
  say "slapd, ldap-utils, postfix, postfix-ldap, swaks, promtool, systemd-analyze, strace, lintian, mandoc, adduser and init-system-helpers are installed"
fi

# Fail loudly (not skip) if anything the integration tests need is still absent.
for f in /usr/sbin/dscreate /usr/sbin/ns-slapd /usr/sbin/slapd /usr/sbin/slapadd /usr/bin/ldapsearch /usr/bin/ldapmodify /usr/sbin/adduser \
         /usr/sbin/postmap /usr/sbin/postfix /usr/lib/postfix/postfix-ldap.so /usr/sbin/saslpasswd2; do
  if [ ! -e "$f" ]; then
    echo "FATAL: $f is missing after installation" >&2
    exit 1
  fi
done
for f in /usr/sbin/samba /usr/bin/samba-tool /usr/sbin/ip; do
  if [ ! -e "$f" ]; then
    echo "FATAL: $f is missing after installation" >&2
    exit 1
  fi
done
/usr/bin/python3 -c 'import samba.samdb' || { echo "FATAL: python3-samba (samba.samdb) is missing after installation" >&2; exit 1; }
for c in swaks promtool systemd-analyze strace openssl curl unshare dpkg-deb lintian mandoc deb-systemd-helper; do
  command -v "$c" >/dev/null 2>&1 || { echo "FATAL: $c is missing after installation" >&2; exit 1; }
done

