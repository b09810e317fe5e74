/**
 * dict_ldap's four attribute classes (terminal, leaf, result, special): which attributes a map
 * asks for, in which order, which class a returned attribute description belongs to, and the
 * two tests the walk's sticky flags are made of.
 */
import type { Entry } from 'ldapts';
import type { MapConfig } from '../config/map-config.js';
import type { AttrClass } from '../contracts/trace.js';

/** Attribute classes in the order dict_ldap lists them: terminal, leaf, result, special. */
export enum Cls { Terminal, Leaf, Result, Special }

export const CLASS_NAME: Record<Cls, AttrClass> = { [Cls.Terminal]: 'terminal', [Cls.Leaf]: 'leaf', [Cls.Result]: 'result', [Cls.Special]: 'special' };

const ORDER = [Cls.Terminal, Cls.Leaf, Cls.Result, Cls.Special] as const;

export class AttributeClasses {
  /** Requested attribute list, in dict_ldap's order: terminal, leaf, result, special. */
  readonly requested: string[];
  private readonly counts: Record<Cls, number>;
  private readonly terminalNames: string[];
  private readonly specialNames: string[];
  private readonly classOf = new Map<string, Cls | null>();

  constructor(config: Pick<MapConfig, 'terminalResultAttribute' | 'leafResultAttribute' | 'resultAttribute' | 'specialResultAttribute'>) {
    this.requested = [
      ...config.terminalResultAttribute,
      ...config.leafResultAttribute,
      ...config.resultAttribute,
      ...config.specialResultAttribute,
    ];
    this.counts = {
      [Cls.Terminal]: config.terminalResultAttribute.length,
      [Cls.Leaf]: config.leafResultAttribute.length,
      [Cls.Result]: config.resultAttribute.length,
      [Cls.Special]: config.specialResultAttribute.length,
    };
    this.terminalNames = config.terminalResultAttribute.map((a) => a.toLowerCase());
    this.specialNames = config.specialResultAttribute.map((a) => a.toLowerCase());
  }

  /**
   * The class of a returned attribute description: that of the first configured attribute it is
   * a subtype of (`mail;lang-de` counts as `mail`), names compared case-insensitively.
   */
  classify(returned: string): Cls | null {
    let cls = this.classOf.get(returned);
    if (cls !== undefined) return cls;
    cls = null;
    let i = 0;
    for (const c of ORDER) {
      for (let n = 0; n < this.counts[c]; n++, i++) {
        if (isSubtype(this.requested[i]!, returned)) {
          cls = c;
          break;
        }
      }
      if (cls !== null) break;
    }
    this.classOf.set(returned, cls);
    return cls;
  }

  /** The entry sets the (sticky) terminal flag: it has a terminal attribute with values. */
  makesTerminal(entry: Entry): boolean {
    return this.counts[Cls.Terminal] > 0 && hasAnyValue(entry, this.terminalNames);
  }

  /** The entry clears the (sticky) leaf flag: leaf attributes are configured and it has special values. */
  makesNonLeaf(entry: Entry): boolean {
    return this.counts[Cls.Leaf] > 0 && hasAnyValue(entry, this.specialNames);
  }

  /** URL attributes ∩ configured ones; of a pair differing only in options, the more specific. */
  intersect(urlAttrs: string[]): string[] {
    // dict_ldap's url_attrs: for each URL attribute, every map attribute it relates to, the more
    // specific of the two (duplicates are harmless: the server returns an attribute once).
    const result: string[] = [];
    for (const u of urlAttrs) {
      for (const c of this.requested) {
        if (isSubtype(u, c)) result.push(c);
        else if (isSubtype(c, u)) result.push(u);
      }
    }
    return result;
  }
}

/**
 * dict_ldap's attrdesc_subtype(a, b) > 0: `b` is `a` or `a` with more options after it, compared
 * case-insensitively as text (`mail;lang-en` does not cover `mail;lang-de;lang-en`).
 */
export function isSubtype(a: string, b: string): boolean {
  if (b.length < a.length) return false;
  if (b.length > a.length && b.charCodeAt(a.length) !== 0x3b /* ; */) return false;
  return b.slice(0, a.length).toLowerCase() === a.toLowerCase();
}

const NO_VALUES: Buffer[] = [];

/** An attribute's values as Buffers (the entry's own array when it holds Buffers already; not to be changed). */
export function valuesOf(v: Entry[string] | undefined): Buffer[] {
  if (v === undefined) return NO_VALUES;
  if (Buffer.isBuffer(v)) return [v];
  if (typeof v === 'string') return [Buffer.from(v, 'utf8')];
  for (const x of v) if (!Buffer.isBuffer(x)) return v.map((y) => (Buffer.isBuffer(y) ? y : Buffer.from(y, 'utf8')));
  return v as Buffer[];
}

/** ldap_get_values_len semantics: an exact (case-insensitive) attribute name with values. */
function hasAnyValue(entry: Entry, lowerNames: string[]): boolean {
  for (const attr of Object.keys(entry)) {
    if (attr === 'dn') continue;
    const v = entry[attr];
    if (lowerNames.includes(attr.toLowerCase()) && v !== undefined && (!Array.isArray(v) || v.length > 0)) return true;
  }
  return false;
}
