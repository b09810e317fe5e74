/**
 * src/ is layered one way (scripts/check-layers.mjs, `npm run check:layers`): no import cycle,
 * no import from a lower layer to a higher one. The checker itself must catch both.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkLayers } from '../../scripts/check-layers.mjs';
import { makeTmpDir } from '../support/tmp.js';

const check = checkLayers;

function tree(files: Record<string, string>): string {
  const dir = makeTmpDir('layers-');
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe('layering of src/', () => {
  it('has no import cycle and no upward import', () => {
    const r = check(resolve(__dirname, '../../src'));
    expect(r.files).toBeGreaterThan(50);
    expect(r.problems).toEqual([]);
  });

  it('the checker reports an upward import, a cycle, and a folder with no layer', () => {
    const dir = tree({
      'contracts/a.ts': "import { x } from '../cli/b.js';\nexport const a = 1;\n",
      'cli/b.ts': "export const x = 1;\n",
      'ldap/c.ts': "import { d } from './d.js';\nexport const c = 1;\n",
      'ldap/d.ts': "import type { c } from './c.js';\nexport const d = 1;\n",
      'newfolder/e.ts': "export const e = 1;\n",
    });
    const { problems } = check(dir);
    expect(problems).toContainEqual(expect.stringMatching(/^contracts\/a\.ts: imports cli\/b\.ts \(contracts, layer 0, may not import cli, layer 9\)/));
    expect(problems).toContain('import cycle: ldap/c.ts <-> ldap/d.ts');
    expect(problems).toContainEqual(expect.stringMatching(/newfolder\/e\.ts: folder newfolder has no layer/));
    expect(problems).toHaveLength(3);
  });
});
