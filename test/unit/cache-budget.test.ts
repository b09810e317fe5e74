import { describe, expect, it } from 'vitest';
import { defaultMapSettings } from '../../src/config/settings.js';
import { cacheBudget, HEAP_RESERVE_BYTES } from '../../src/runtime/runtime.js';

const MiB = 2 ** 20;
const map = (over: Partial<ReturnType<typeof defaultMapSettings>> = {}) => ({ settings: { ...defaultMapSettings(), ...over } });

describe('cacheBudget: all caches together fit in the V8 heap limit', () => {
  it('the default caches fit the systemd unit\'s --max-old-space-size=512 (heap limit 560 MiB) many times over', () => {
    const b = cacheBudget([map(), map()], 560 * MiB);
    expect(b).toEqual({ scale: 1, total: 128 * MiB, budget: 560 * MiB - HEAP_RESERVE_BYTES });
    expect(cacheBudget(Array.from({ length: 7 }, () => map()), 560 * MiB).scale).toBe(1);
  });

  it('more than fits: each cache gets the same share, and the warning says what to raise', () => {
    const b = cacheBudget([map({ cacheMaxBytes: 512 * MiB }), map({ cacheMaxBytes: 256 * MiB }), map()], 560 * MiB);
    expect(b.total).toBe(832 * MiB);
    expect(b.scale).toBeCloseTo((560 * MiB - HEAP_RESERVE_BYTES) / (832 * MiB), 9);
    expect(b.warning).toMatch(/cache_max_bytes of 3 maps add up to 832 MiB/);
    expect(b.warning).toMatch(/held to 55% of its cache_max_bytes/);
    expect(b.warning).toMatch(/NODE_OPTIONS=--max-old-space-size=960\b/);
  });

  it('maps that cache nothing do not count', () => {
    const b = cacheBudget([map({ cacheTtl: 0, cacheNegativeTtl: 0, cacheMaxBytes: 4096 * MiB }), map()], 560 * MiB);
    expect(b.total).toBe(64 * MiB);
    expect(b.scale).toBe(1);
  });
});
