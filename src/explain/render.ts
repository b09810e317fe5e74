/**
 * The explain report as a text tree for people. Same content as the JSON; long values and
 * wire frames are shortened (the JSON has them whole).
 */
import type { AnswerInfo, EntryNode, Expansion, ExplainReport, LimitHit, LookupExplanation, SearchNode, ValueNode } from './types.js';

interface TNode {
  text: string;
  /** Further lines of this node's own text. */
  more?: string[];
  kids?: TNode[];
}

const MAX_TEXT = 160;
const CONTROL: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * A string in double quotes for people, cut after `max` characters. Only control characters
 * are escaped: a backslash stays one backslash, as LDAP filters and DNs are read (the JSON
 * report has every string exactly).
 */
export function q(s: string, max = MAX_TEXT): string {
  const cut = s.length <= max ? s : s.slice(0, max);
  // eslint-disable-next-line no-control-regex
  const shown = cut.replace(/[\x00-\x1f\x7f]/g, (c) => CONTROL[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`);
  return s.length <= max ? `"${shown}"` : `"${shown}"...(${s.length} chars)`;
}

function draw(nodes: TNode[], prefix: string, out: string[]): void {
  nodes.forEach((n, i) => {
    const last = i === nodes.length - 1;
    out.push(`${prefix}${last ? '└─ ' : '├─ '}${n.text}`);
    const cont = prefix + (last ? '   ' : '│  ');
    const bar = n.kids && n.kids.length > 0 ? '│ ' : '  ';
    for (const m of n.more ?? []) out.push(`${cont}${bar}${m}`);
    if (n.kids) draw(n.kids, cont, out);
  });
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function answerText(a: AnswerInfo): string {
  switch (a.kind) {
    case 'found':
      return `found, ${plural(a.valueBytes ?? 0, 'byte')}: ${q(a.value ?? '')}`;
    case 'notfound':
      return 'not found';
    default:
      return `${a.kind === 'perm' ? 'configuration error' : a.kind === 'timeout' ? 'timeout' : 'temporary error'}: ${a.reason ?? ''}`;
  }
}

function limitNode(h: LimitHit): TNode {
  const name = h.kind === 'recursion' ? 'recursion_limit' : h.kind === 'expansion' ? 'expansion_limit' : 'size_limit';
  return { text: `LIMIT ${name} exceeded: ${h.detail} -> temporary error` };
}

function expansionNode(name: string, e: Expansion): TNode {
  const more: string[] = [];
  for (const s of e.substitutions) {
    more.push(s.raw === s.escaped
      ? `${s.code} = ${q(s.raw)}`
      : `${s.code} = ${q(s.raw)}, ${e.escaping === 'filter' ? 'filter' : 'DN'}-escaped to ${q(s.escaped)}`);
  }
  if (e.substitutions.length === 0) return { text: `${name}: ${q(e.value)} (fixed: no substitutions)` };
  return { text: `${name}: ${q(e.template)} -> ${q(e.value)}`, more };
}

interface Ctx {
  /** Entries get a terminal/leaf line (not when the map has neither kind of attribute). */
  entryState: boolean;
}

function searchNode(s: SearchNode, ctx: Ctx): TNode {
  const where = s.server ?? (s.servers ? `one of ${s.servers.join(', ')}` : 'server unknown');
  const head = `search #${s.id} (depth ${s.depth}) on ${where}`;
  const more = [
    `base ${q(s.base)}, scope ${s.scope}${s.deref ? `, dereference ${s.deref}` : ''}`,
    `filter ${q(s.filter)}`,
    `attributes ${s.attributes.join(', ') || '(none)'}`,
    `${s.ms !== undefined ? `${s.ms} ms: ` : ''}${s.fate}`,
  ];
  const kids: TNode[] = [...s.entries.map((e) => entryNode(e, ctx)), ...s.limits.map(limitNode)];
  return { text: head, more, kids };
}

function entryNode(e: EntryNode, ctx: Ctx): TNode {
  const kids: TNode[] = e.values.map((v) => valueNode(v, ctx));
  for (const l of e.limits) kids.push(limitNode(l));
  if (e.loop) kids.push({ text: `LOOP: ${e.loop.join(' -> ')} -> temporary error (Postfix would recurse until recursion_limit, then fail the same way)` });
  if (kids.length === 0) kids.push({ text: 'no attribute of this map with values' });
  return { text: `entry ${e.dn}`, more: ctx.entryState ? [`${e.terminalWhy}; ${e.leafWhy}`] : [], kids };
}

function valueNode(v: ValueNode, ctx: Ctx): TNode {
  let text = `${v.attr}: ${q(v.value)} [${v.class}] ${v.why}`;
  if (v.output !== undefined) text += `, as ${q(v.output)}`;
  const kids: TNode[] = [];
  if (v.search) kids.push(searchNode(v.search, ctx));
  else if (v.child !== undefined) kids.push({ text: `search #${v.child} was never reported` });
  for (const l of v.limits) kids.push(limitNode(l));
  return kids.length ? { text, kids } : { text };
}

function limitsNode(l: LookupExplanation['limits']): TNode {
  const per = (limit: number) => (limit > 0 ? String(limit) : '0 = none');
  return {
    text: 'limits',
    more: [
      `recursion: deepest search at depth ${l.recursion.deepest}, recursion_limit ${l.recursion.limit}${l.recursion.exceeded ? ` EXCEEDED: ${l.recursion.exceeded}` : ''}`,
      `values: ${l.expansion.values} appended, expansion_limit ${per(l.expansion.limit)}${l.expansion.exceeded ? ` EXCEEDED: ${l.expansion.exceeded}` : ''}`,
      `entries: at most ${l.size.largest} per search, size_limit ${per(l.size.limit)}${l.size.exceeded ? ` EXCEEDED: ${l.size.exceeded}` : ''}`,
    ],
  };
}

function lookupNodes(l: LookupExplanation, m: ExplainReport['settings'], ctx: Ctx): TNode[] {
  const nodes: TNode[] = [];
  if (l.folded === null) {
    nodes.push({ text: `key: ${l.foldNote ?? 'not searched'}` });
  } else {
    nodes.push({ text: l.folded === l.key ? `key: ${q(l.key)} (folding changes nothing)` : `key: folded to ${q(l.folded)}` });
  }
  if (l.domain) {
    const list = l.domain.list.join(', ');
    nodes.push({
      text: l.domain.matched
        ? `domain: ${q(l.domain.domain ?? '')} is in the domain list (${list})`
        : l.domain.domain === null
          ? `domain: the key has no domain part, the domain list (${list}) cannot match -> not found, no search`
          : `domain: ${q(l.domain.domain)} is not in the domain list (${list}) -> not found, no search`,
    });
  }
  if (l.connectFailure !== undefined) nodes.push({ text: `LDAP connection failed before any search (dict_ldap connects before expanding templates): ${l.connectFailure}` });
  if (l.suppressed !== undefined) {
    nodes.push({
      text: `search suppressed: ${l.suppressed} -> not found, no LDAP search`,
      more: [`search_base ${q(m.searchBase)}, query_filter ${q(m.queryFilter)}, result_format ${q(m.resultFormat)}`],
    });
  }
  if (l.expansions) {
    nodes.push(expansionNode('search_base', l.expansions.searchBase));
    nodes.push(expansionNode('query_filter', l.expansions.queryFilter));
  }
  if (l.search && !ctx.entryState) {
    nodes.push({ text: 'terminal/leaf: neither terminal_result_attribute nor leaf_result_attribute is set, no entry is terminal or non-leaf' });
  }
  if (l.search) nodes.push(searchNode(l.search, ctx));
  for (const o of l.orphans) nodes.push({ text: 'search with no known parent', kids: [searchNode(o, ctx)] });
  if (l.loop) nodes.push({ text: `loop detected: ${l.loop.join(' -> ')}` });
  if (l.searches > 0) nodes.push(limitsNode(l.limits));
  nodes.push({ text: `result: ${answerText(l.result)} (${plural(l.searches, 'search', 'searches')}, ${l.elapsedMs} ms)` });
  return nodes;
}

export function renderReport(r: ExplainReport): string {
  const out: string[] = [];
  const ctx: Ctx = { entryState: r.settings.terminalResultAttribute.length > 0 || r.settings.leafResultAttribute.length > 0 };
  out.push(`map ${r.map} (${r.file}), ${r.source === 'daemon' ? 'as the running daemon sees it (cache included)' : 'asked LDAP directly (no cache)'}`);
  out.push(`key ${q(r.key)} (${plural(r.keyBytes, 'byte')})`);
  for (const l of r.lookups) {
    out.push('');
    out.push(l.role === 'key' ? `lookup of ${q(l.key)}` : `fallback lookup of ${q(l.key)} (${l.role})`);
    draw(lookupNodes(l, r.settings, ctx), '', out);
  }
  out.push('');
  if (r.cache) {
    const c = r.cache;
    let text: string;
    if (!c.enabled) text = 'disabled for this map';
    else if (c.state === 'absent') text = 'nothing cached for this key: the next request asks LDAP';
    else if (c.state === 'fresh') text = `fresh (${Math.round((c.ageMs ?? 0) / 1000)} s old, expires in ${Math.round((c.expiresInMs ?? 0) / 1000)} s): a request now is answered from the cache: ${answerText(c.cached!)}`;
    else text = `expired ${Math.round(-(c.expiresInMs ?? 0) / 1000)} s ago, kept ${Math.round((c.staleForMs ?? 0) / 1000)} s more for stale_if_error: ${answerText(c.cached!)}`;
    out.push(`cache: ${text}${c.inFlight ? ' (a lookup of this key is in flight)' : ''}`);
    out.push(`LDAP now: ${answerText(r.ldapAnswer)}`);
  }
  const src = r.answer.source === 'ldap' ? 'from LDAP' : r.answer.source === 'cache' ? 'from the cache' : 'from the cache (stale, LDAP failed)';
  out.push(`answer ${src}: ${answerText(r.answer)}`);
  const sm = r.wire.socketmap;
  const tcp = r.wire.tcpTable;
  out.push('on the wire:');
  out.push(`  socketmap  ${q(sm.frame)}`);
  out.push(`             payload ${sm.payloadBytes} bytes, limit ${sm.limit}: ${sm.fits ? 'fits' : `the answer needs ${sm.needed} bytes, does not fit: TEMP instead`}`);
  out.push(`  tcp_table  ${q(tcp.line)}`);
  out.push(`             line ${tcp.bytes} bytes, limit ${tcp.limit}: ${tcp.fits ? 'fits' : `the answer needs ${tcp.needed} bytes, does not fit: 400 instead`}`);
  if (r.servers.used.length > 0 || r.servers.failedConnects.length > 0) {
    const parts = [];
    if (r.servers.used.length > 0) parts.push(`searched ${r.servers.used.join(', ')}`);
    if (r.servers.failedConnects.length > 0) parts.push(`connect failed on ${r.servers.failedConnects.join(', ')}`);
    out.push(`servers: ${parts.join('; ')}`);
  }
  for (const n of r.notes) out.push(`note: ${n}`);
  return `${out.join('\n')}\n`;
}
