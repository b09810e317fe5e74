#!/usr/bin/env bash
# Installs the Debian packages ldap-socketmap's demo and tests run for real: OpenLDAP (slapd,
# ldap-utils), Postfix with its LDAP table (the referee), swaks (SMTP client for the end-to-end
# test), prometheus (promtool checks the metrics exposition), systemd (systemd-analyze
# verifies the unit files) and strace (a traced run checks the unit's system call filter).
# Installs only what is missing; asks no questions.
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
  say "slapd, ldap-utils, postfix, postfix-ldap, swaks, promtool, systemd-analyze and strace are installed"
fi

# Fail loudly (not skip) if anything the integration tests need is still absent.
for f in /usr/sbin/slapd /usr/sbin/slapadd /usr/bin/ldapsearch /usr/bin/ldapmodify \
         /usr/sbin/postmap /usr/sbin/postfix /usr/lib/postfix/postfix-ldap.so; do
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
for c in swaks promtool systemd-analyze strace; do
  command -v "$c" >/dev/null 2>&1 || { echo "FATAL: $c is missing after installation" >&2; exit 1; }
done

