/**
 * The sentences of explain's tree: why a value was skipped, what became of a search, why an
 * entry counted as terminal or leaf. They word what the walk reported (actions, outcomes, flag
 * origins); none of them decides anything the walk did not.
 */
import type { MapConfig } from '../config/map-config.js';
import type { LookupResult } from '../contracts/result.js';
import type { AttrClass, FlagOrigin, ValueAction } from '../contracts/trace.js';
import type { AnswerInfo, EntryNode, SearchNode } from './types.js';

/** Where each walked entry's flags came from, as the walk reported them. */
export const origins = new WeakMap<EntryNode, { terminal: FlagOrigin; nonLeaf: FlagOrigin }>();

export function answerInfo(r: LookupResult): AnswerInfo {
  switch (r.kind) {
    case 'found':
      return { kind: 'found', value: r.value.toString('utf8'), valueBytes: r.value.length };
    case 'notfound':
      return { kind: 'notfound' };
    default:
      return { kind: r.kind, reason: r.reason };
  }
}

export function valueWhy(action: ValueAction, cls: AttrClass, child: number | undefined, skipWhy: string | undefined): string {
  switch (action) {
    case 'appended':
      return 'appended';
    case 'skipped-empty':
      return `skipped: ${skipWhy ?? 'result_format could not be filled from the value'}`;
    case 'skipped-leaf':
      return 'skipped: leaf attribute of a non-leaf entry';
    case 'skipped-terminal':
      return cls === 'special'
        ? 'skipped: the entry is terminal, special values are not followed'
        : 'skipped: the entry is terminal, only terminal_result_attribute values count';
    case 'followed':
      return `followed: nested search #${child}`;
    case 'skipped-url':
      return "skipped: the LDAP URL asks for none of this map's attributes, no search";
    case 'skipped-repeat':
      return 'skipped: loop_handling = expand_once and the same search already ran in this lookup';
    case 'malformed-url':
      return 'malformed LDAP URL: the lookup fails with a temporary error, like Postfix';
  }
}

export function searchFate(n: SearchNode, dynamicBase: boolean, lookupFailed: boolean): string {
  const top = n.parent === undefined;
  let fate: string;
  switch (n.outcome) {
    case 'pending':
      return 'still running when explain stopped waiting; its result was not used';
    case 'entries':
      if (n.entryCount === 0) fate = top ? 'no entry matched' : 'no entry';
      else fate = `${n.entryCount} entr${n.entryCount === 1 ? 'y' : 'ies'}`;
      if (n.limits.length === 0 && n.entryCount! > 0 && n.entries.length === 0 && lookupFailed) fate += ', not walked: the lookup had already failed';
      break;
    case 'noSuchObject':
      if (!top) fate = 'DN not found (noSuchObject): skipped, like Postfix ("DN ... not found, skipping")';
      else if (dynamicBase) fate = 'search base not found (noSuchObject) with a dynamic search_base: not found';
      else fate = 'search base not found (noSuchObject) with a static search_base: temporary error';
      break;
    case 'failed':
      fate = `${n.code === undefined ? 'LDAP error' : n.code < 0 ? `libldap client error ${n.code}` : `LDAP result code ${n.code}`}: ${n.message ?? ''} -> temporary error`;
      break;
  }
  if (n.afterAnswer) fate += ' (finished after the answer was decided: not used)';
  return fate;
}

/** Why each entry counted as terminal / leaf, from the flags and their origins the walk reported. */
export function explainEntries(n: SearchNode, c: MapConfig): void {
  const nT = c.terminalResultAttribute.length;
  const nL = c.leafResultAttribute.length;
  let firstTerminal: string | undefined;
  let firstNonLeaf: string | undefined;
  for (const e of n.entries) {
    const o = origins.get(e) ?? { terminal: e.terminal ? 'own' : 'no', nonLeaf: e.leaf ? 'no' : 'own' };
    const own = (cls: AttrClass) => [...new Set(e.values.filter((v) => v.class === cls).map((v) => v.attr))];
    const terminalAttrs = own('terminal');
    const specialAttrs = own('special');
    if (nT === 0) e.terminalWhy = 'no terminal_result_attribute configured';
    else if (o.terminal === 'no') e.terminalWhy = 'not terminal: no terminal attribute values';
    else if (o.terminal === 'carried') e.terminalWhy = `terminal: the flag carries over from ${firstTerminal ?? 'an entry'} earlier in this result (sticky, as in Postfix)`;
    else e.terminalWhy = terminalAttrs.length > 0 ? `terminal: has ${terminalAttrs.join(', ')}` : 'terminal: has terminal attribute values';
    if (e.terminal) firstTerminal ??= e.dn;

    if (e.terminal) e.leafWhy = 'leaf check not applied: terminal entry';
    else if (nL === 0) e.leafWhy = 'no leaf_result_attribute configured: leaf check not done';
    else if (o.nonLeaf === 'no') e.leafWhy = 'leaf: no special attribute values';
    else if (o.nonLeaf === 'carried') e.leafWhy = `non-leaf: the flag carries over from ${firstNonLeaf ?? 'an entry'} earlier in this result (sticky, as in Postfix)`;
    else e.leafWhy = `non-leaf: has ${specialAttrs.join(', ') || 'special'} values`;
    if (!e.terminal && !e.leaf) firstNonLeaf ??= e.dn;
  }
}
