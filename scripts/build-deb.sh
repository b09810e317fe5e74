#!/usr/bin/env bash
# `npm run deb`: builds build/deb/ldap-socketmap_VERSION_all.deb from this checkout with
# dpkg-deb (no debhelper). Network: none beyond `npm ci` (here with --prefer-offline, which
# the checkout's own `npm ci` has already filled the cache for).
#
# Layout (Debian 12):
#   /usr/lib/ldap-socketmap/{dist,node_modules,package.json}   the build + production deps
#   /usr/bin/ldap-socketmap                                    runs it with the system node
#   /lib/systemd/system/ldap-socketmap.{service,socket}        systemd/ (not enabled on install)
#   /etc/ldap-socketmap/ldap-socketmap.conf                    conffile
#   /usr/share/man/man8/ldap-socketmap.8.gz, man5/ldap-socketmap.conf.5.gz
#   /usr/share/ldap-socketmap/ldap-socketmap.rules.yml, dashboards/ldap-socketmap.json
#   /usr/share/doc/ldap-socketmap/{copyright,changelog.gz,README.md.gz,docs/,postfix-snippets/}
# Reproducible: file times are SOURCE_DATE_EPOCH (default: the last commit's time), owners
# root, gzip without names or times, dpkg-deb sorts the members.
set -euo pipefail
export LC_ALL=C.UTF-8 TZ=UTC
umask 022
cd "$(dirname "$0")/.."
REPO=$PWD

PKG=ldap-socketmap
VERSION=$(node -p "require('./package.json').version")
NODE_MIN=$(node -p "require('./package.json').engines.node.replace(/^>=\\s*/, '')")
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
MAINTAINER=${DEB_MAINTAINER:-ldap-socketmap maintainers <ldap-socketmap@users.noreply.github.com>}

OUT=$REPO/build/deb
WORK=$OUT/work
ROOT=$WORK/root
LIB=$ROOT/usr/lib/$PKG
DOC=$ROOT/usr/share/doc/$PKG
DEB=$OUT/${PKG}_${VERSION}_all.deb

say() { printf '==> %s\n' "$*" >&2; }

rm -rf "$WORK" "$DEB"
mkdir -p "$WORK" "$LIB"

say "tsc (into the package, without source maps: src/ is not shipped)"
# Built here rather than taken from dist/: the package is made from the sources of this
# checkout, and a test run that uses dist/ at the same time is not disturbed.
npx --no-install tsc -p tsconfig.json --outDir "$LIB/dist" --sourceMap false
# package.json: "type": "module" makes dist/ ES modules, and yargs reads the version there.
node -e '
  const p = require("./package.json");
  const out = { name: p.name, version: p.version, description: p.description, license: p.license,
    type: p.type, bin: p.bin, engines: p.engines, dependencies: p.dependencies };
  process.stdout.write(JSON.stringify(out, null, 2) + "\n");' >"$LIB/package.json"

say "production node_modules (npm ci --omit=dev)"
mkdir -p "$WORK/deps"
cp package.json package-lock.json "$WORK/deps/"
(cd "$WORK/deps" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error)
# Only what runs: no type declarations, source maps, TypeScript sources, docs or npm's bookkeeping.
find "$WORK/deps/node_modules" \( -name '*.d.ts' -o -name '*.d.cts' -o -name '*.d.mts' -o -name '*.map' \
  -o -name '*.ts' -o -name '*.md' ! -iname 'licen[cs]e*' -o -name '.package-lock.json' -o -name '.npmignore' \
  -o -name '.eslintrc*' -o -name '.travis.yml' -o -name '.editorconfig' \) -type f -delete
find "$WORK/deps/node_modules" \( -name '*.html' -o -path '*/examples/*' \) -type f -delete
find "$WORK/deps/node_modules" -depth -type d -empty -delete
# Modules are loaded, never executed: no executable bits (some upstreams ship them by accident).
find "$WORK/deps/node_modules" -type f -exec chmod 0644 {} +
mv "$WORK/deps/node_modules" "$LIB/node_modules"
# The wrapper runs main.js with /usr/bin/node; its "#!/usr/bin/env node" line would only
# invite running it with whatever node is first on PATH.
sed -i '1{/^#!/d}' "$LIB/dist/cli/main.js"

say "command, units, conffile, man pages, monitoring, docs"
install -D -m 0755 /dev/stdin "$ROOT/usr/bin/$PKG" <<'WRAPPER'
#!/bin/sh
# ldap-socketmap(8): the program in /usr/lib/ldap-socketmap, run with the system's node.
exec /usr/bin/node /usr/lib/ldap-socketmap/dist/cli/main.js "$@"
WRAPPER
install -D -m 0644 systemd/$PKG.service "$ROOT/lib/systemd/system/$PKG.service"
install -D -m 0644 systemd/$PKG.socket "$ROOT/lib/systemd/system/$PKG.socket"
install -D -m 0644 packaging/deb/$PKG.conf "$ROOT/etc/$PKG/$PKG.conf"
install -D -m 0644 man/$PKG.8 "$ROOT/usr/share/man/man8/$PKG.8"
install -D -m 0644 man/$PKG.conf.5 "$ROOT/usr/share/man/man5/$PKG.conf.5"
install -D -m 0644 contrib/prometheus/$PKG.rules.yml "$ROOT/usr/share/$PKG/$PKG.rules.yml"
install -D -m 0644 contrib/dashboards/$PKG.json "$ROOT/usr/share/$PKG/dashboards/$PKG.json"
install -D -m 0644 README.md "$DOC/README.md"
# The README links to docs/ (the long evidence); same relative place here.
mkdir -p "$DOC/docs"
install -m 0644 docs/*.md "$DOC/docs/"
mkdir -p "$DOC/postfix-snippets"
cp -a postfix-snippets/. "$DOC/postfix-snippets/"
install -D -m 0644 packaging/deb/lintian-overrides "$ROOT/usr/share/lintian/overrides/$PKG"
node packaging/deb/copyright.mjs LICENSE "$LIB/node_modules" "usr/lib/$PKG/node_modules" >"$DOC/copyright"
# Their licence texts are now in the copyright file, where Debian keeps them.
find "$LIB/node_modules" -maxdepth 4 -type f \( -iname 'licen[cs]e' -o -iname 'licen[cs]e.md' -o -iname 'licen[cs]e.txt' \
  -o -iname 'license-mit.txt' -o -iname 'copying' \) -delete
DATE=$(date -u -d "@$SOURCE_DATE_EPOCH" -R)
printf '%s (%s) unstable; urgency=medium\n\n  * Package built from the repository, commit %s.\n\n -- %s  %s\n' \
  "$PKG" "$VERSION" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$MAINTAINER" "$DATE" >"$DOC/changelog"
gzip -9n "$DOC/changelog" "$DOC/README.md" "$DOC"/docs/*.md "$ROOT/usr/share/man/man8/$PKG.8" "$ROOT/usr/share/man/man5/$PKG.conf.5"

mkdir -p "$ROOT/DEBIAN"
for s in postinst prerm postrm; do install -m 0755 "packaging/deb/$s" "$ROOT/DEBIAN/$s"; done
echo "/etc/$PKG/$PKG.conf" >"$ROOT/DEBIAN/conffiles"
chmod -R u+rwX,go+rX,go-w "$ROOT"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -print0 | sort -z | xargs -0 md5sum | sed 's| \./| |') >"$ROOT/DEBIAN/md5sums"
INSTALLED_KB=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat >"$ROOT/DEBIAN/control" <<CONTROL
Package: $PKG
Version: $VERSION
Architecture: all
Maintainer: $MAINTAINER
Installed-Size: $INSTALLED_KB
Depends: nodejs (>= $NODE_MIN), adduser, init-system-helpers (>= 1.52)
Suggests: postfix, postfix-ldap, prometheus
Section: mail
Priority: optional
Description: Postfix socketmap/tcp_table daemon answering lookups from LDAP
 ldap-socketmap is a long-running daemon that Postfix asks over its socketmap
 (and tcp_table) protocol to resolve lookup tables such as virtual_alias_maps
 from LDAP. It reads unchanged ldap_table(5) files and answers exactly what
 Postfix's own ldap: table would answer, with concurrent group expansion, a
 cache, Prometheus metrics and health checks.
 .
 Needs Node.js $NODE_MIN or newer (Debian 12 ships 18: use the nodejs package of
 NodeSource or a later Debian release).
CONTROL

find "$ROOT" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
say "dpkg-deb --build"
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >&2
rm -rf "$WORK"
echo "$DEB"
