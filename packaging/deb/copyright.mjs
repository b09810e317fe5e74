#!/usr/bin/env node
/**
 * Writes debian/copyright (machine-readable format 1.0) for the staged package: the project's
 * own LICENSE for everything, then one paragraph per bundled Node.js module, with the licence
 * named in its package.json and the licence text it ships (quoted in full: Debian wants the
 * text, not a name, and every module's notice must travel with it).
 *
 *   node packaging/deb/copyright.mjs REPO_LICENSE STAGED_NODE_MODULES INSTALLED_PREFIX > copyright
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const [licenseFile, nodeModules, prefix] = process.argv.slice(2);
if (!licenseFile || !nodeModules || !prefix) {
  process.stderr.write('usage: copyright.mjs LICENSE NODE_MODULES_DIR INSTALLED_PREFIX\n');
  process.exit(2);
}

/** A licence text as a DEP-5 continuation: one leading space, empty lines as " .". */
function indent(text) {
  return text
    .replace(/\r\n/g, '\n')
    .trim()
    .split('\n')
    .map((l) => (l.trim() === '' ? ' .' : ` ${l.replace(/\s+$/, '')}`))
    .join('\n');
}

function copyrightLines(text, fallback) {
  // Notices ("Copyright (c) 2015 Name"), not licence prose that happens to start the same way.
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(copyright\b|\(c\)\s*\d{4})/i.test(l) && !/^copyright (notice|license|holders?|owner)|you must|\[yyyy\]/i.test(l));
  const out = [...new Set(lines.map((l) => l.replace(/^copyright\s*(\(c\)|©)?\s*/i, '').trim()))].filter((l) => l !== '');
  return out.length > 0 ? out : [fallback];
}

/** Every package directory under node_modules (scoped and nested ones too), sorted. */
function modules(dir, rel = '') {
  const out = [];
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const path = join(dir, name);
    if (name.startsWith('@')) {
      out.push(...modules(path, `${rel}${name}/`).map((m) => m));
      continue;
    }
    if (!existsSync(join(path, 'package.json'))) continue;
    out.push({ rel: `${rel}${name}`, path });
    out.push(...modules(join(path, 'node_modules'), `${rel}${name}/node_modules/`));
  }
  return out;
}

const own = readFileSync(licenseFile, 'utf8');
const paragraphs = [
  [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    'Upstream-Name: ldap-socketmap',
    'Comment: The program is under the MIT licence; the Node.js modules it runs with are',
    ' bundled under /usr/lib/ldap-socketmap/node_modules, each with its own licence below.',
  ].join('\n'),
  ['Files: *', `Copyright: ${copyrightLines(own, 'the ldap-socketmap authors').join('\n ')}`, 'License: MIT', indent(own)].join('\n'),
];

for (const m of modules(nodeModules)) {
  const pkg = JSON.parse(readFileSync(join(m.path, 'package.json'), 'utf8'));
  const license = typeof pkg.license === 'string' ? pkg.license : 'unknown';
  const file = readdirSync(m.path).find((f) => /^(licen[cs]e|copying)(\.(md|txt|mit))?$|^license-mit\.txt$/i.test(f));
  let text = file ? readFileSync(join(m.path, file), 'utf8') : '';
  // Debian keeps the Apache licence once, in common-licenses, and wants a reference to it.
  if (license === 'Apache-2.0') {
    text =
      `${copyrightLines(text, '').filter((l) => l !== '' && !/\[yyyy\]/.test(l)).map((l) => `Copyright ${l}`).join('\n')}\n\n` +
      'Licensed under the Apache License, Version 2.0. On Debian systems, the complete text of the\n' +
      'Apache License, Version 2.0 can be found in "/usr/share/common-licenses/Apache-2.0".';
  }
  const author = typeof pkg.author === 'string' ? pkg.author : pkg.author?.name;
  const holders = copyrightLines(file ? readFileSync(join(m.path, file), 'utf8') : '', author ? `${author} (named as author; the module has no copyright notice)` : `the authors of ${pkg.name}`);
  paragraphs.push(
    [
      `Files: ${prefix}/${m.rel}/*`,
      `Copyright: ${holders.join('\n ')}`,
      `License: ${license}`,
      indent(text !== '' ? text : `${pkg.name} ${pkg.version} declares the ${license} licence in its package.json and ships no licence text.`),
    ].join('\n'),
  );
}

process.stdout.write(`${paragraphs.join('\n\n')}\n`);
