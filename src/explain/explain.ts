/**
 * Runs one lookup through the same map chain the daemon serves (LDAP map, fallback emulation
 * when configured, request deadline; the cache is looked at, never used) with a LookupTrace on
 * every LDAP lookup, and turns what happened into an ExplainReport.
 */
import type { CachePeek } from '../cache/cache-map.js';
import type { MapSettings } from '../config/daemon-config.js';
import type { MapConfig } from '../config/map-config.js';
import { DeadlineMap } from '../lookup/deadline.js';
import { FallbackMap } from '../lookup/fallback.js';
import type { LdapMap } from '../lookup/ldap-map.js';
import { temp, type LookupMap, type LookupResult } from '../lookup/result.js';
import { encodeSocketmapReply, SOCKETMAP_MAX_REPLY } from '../protocol/socketmap.js';
import { encodeTcpReply, TCP_MAX_REPLY } from '../protocol/tcp-table.js';
import { answerInfo, LookupRecorder } from './recorder.js';
import type { ServerTap } from './server-tap.js';
import { REPORT_VERSION, type CacheInfo, type ExplainReport, type LookupExplanation, type MapSummary, type WireInfo } from './types.js';

/** One map as explain needs it: the daemon's BuiltMap plus the map's daemon-side settings. */
export interface ExplainTarget {
  name: string;
  file: string;
  config: MapConfig;
  ldap: LdapMap;
  settings: MapSettings;
}

export interface ExplainOptions {
  source: 'cli' | 'daemon';
  /** Observer on the map's pool, for the servers searches went to. */
  tap?: ServerTap;
  /** The daemon's cache for this map. */
  cache?: { peek(key: Buffer): CachePeek };
  /** How long to wait for searches still running after the answer was decided. Default: the map's timeout + 1 s. */
  settleMs?: number;
}

export async function explainLookup(target: ExplainTarget, rawKey: Buffer, opts: ExplainOptions): Promise<ExplainReport> {
  const { config, settings, ldap } = target;
  const notes: string[] = [];
  // Taken before the lookup: what the cache holds is what a request arriving now would see.
  const peek = opts.cache?.peek(rawKey);
  const recorders: LookupRecorder[] = [];
  const inner: Promise<unknown>[] = [];
  const tracing: LookupMap = {
    name: target.name,
    lookup: (key) => {
      const role: LookupExplanation['role'] = recorders.length === 0 ? 'key' : key[0] === 0x40 ? 'catch-all @domain' : 'without extension';
      const rec = new LookupRecorder(role, config, ldap.templates);
      recorders.push(rec);
      const p = ldap.lookup(key, rec.trace).then(
        (r) => { rec.finish(r); return r; },
        (err: unknown) => { rec.finish(temp('internal error')); throw err; },
      );
      inner.push(p.catch(() => undefined));
      return p;
    },
  };
  let chain: LookupMap = tracing;
  if (settings.fallback === 'address') {
    chain = new FallbackMap(chain, { recipientDelimiter: settings.recipientDelimiter, propagateExtension: settings.propagateExtension });
  }
  chain = new DeadlineMap(chain, settings.requestTimeout * 1000);

  const watch = opts.tap?.watch();
  const started = performance.now();
  let result: LookupResult;
  try {
    result = await chain.lookup(rawKey);
  } catch (err) {
    // What the servers do with a bug in a map: a temporary error, never "not found".
    result = temp('internal error');
    notes.push(`the lookup threw: ${err instanceof Error ? err.message : String(err)}`);
  }
  const elapsedMs = Math.round((performance.now() - started) * 100) / 100;
  if (result.kind === 'timeout' && /^no answer within/.test(result.reason)) {
    notes.push(`request_timeout (${settings.requestTimeout} s) ran out: the daemon answers TIMEOUT while the lookup runs on`);
  }

  // Searches still in flight when a failure decided the answer run on; wait for them so the
  // tree is complete (they are marked as finished after the answer).
  const settleMs = opts.settleMs ?? Math.max(1, config.timeout) * 1000 + 1000;
  await Promise.race([Promise.all(inner), new Promise((r) => setTimeout(r, settleMs).unref())]);
  await Promise.all(recorders.map((r) => r.settle(settleMs)));
  watch?.stop();
  const used = [...(watch?.used ?? [])].sort();
  const failedConnects = [...(watch?.failedConnects ?? [])].sort();
  if (opts.source === 'daemon' && used.length > 1) {
    notes.push('the daemon\'s pool talked to several servers while this ran (other traffic included): searches list the candidates');
  }
  if (config.chaseReferrals) {
    notes.push('chase_referrals = yes: entries may come from servers that referrals named; the searches listed are the ones sent to the map\'s own servers');
  }
  const lookups = recorders.map((r) => r.build(used, ldap.templates.dynamicBase));
  for (const l of lookups) {
    if (l.searches > 0 && l.search === undefined) notes.push(`lookup of ${JSON.stringify(l.key)}: searches without a top-level search (unexpected)`);
  }
  if (settings.fallback === 'address' && lookups.length > 1 && result.kind === 'found') {
    const last = lookups[lookups.length - 1]!;
    if (last.result.kind === 'found' && last.result.value !== answerInfo(result).value) {
      notes.push('the address extension was appended to every address of the answer (propagate_extension = yes)');
    }
  }

  const ldapAnswer = answerInfo(result);
  let answer: ExplainReport['answer'] = { ...ldapAnswer, source: 'ldap' };
  let cache: CacheInfo | undefined;
  if (peek) {
    cache = cacheInfo(peek);
    if (peek.state === 'fresh' && peek.result) {
      answer = { ...answerInfo(peek.result), source: 'cache' };
      if (!sameAnswer(peek.result, result)) {
        notes.push(`the daemon answers from its cache, which differs from what LDAP says now; \`ldap-socketmap cache flush ${target.name} KEY\` drops it`);
      }
    } else if (peek.state === 'stale' && peek.result && (result.kind === 'temp' || result.kind === 'timeout')) {
      answer = { ...answerInfo(peek.result), source: 'stale' };
      notes.push('LDAP failed, so the daemon serves the expired cached answer (stale_if_error)');
    }
    if (peek.inFlight) notes.push('a lookup of this key is running in the daemon right now: a request arriving now would share its answer');
  }
  const served: LookupResult = answer.source === 'ldap' ? result : peek!.result!;
  const wire = wireInfo(served);
  if (!wire.socketmap.fits) notes.push(`the answer is ${wire.socketmap.needed} bytes as a socketmap payload, over Postfix's ${SOCKETMAP_MAX_REPLY}: the daemon answers TEMP instead`);
  if (!wire.tcpTable.fits) notes.push(`the answer is ${wire.tcpTable.needed} bytes as a tcp_table line, over Postfix's ${TCP_MAX_REPLY}: the daemon answers 400 instead`);

  const report: ExplainReport = {
    version: REPORT_VERSION,
    map: target.name,
    file: target.file,
    source: opts.source,
    key: rawKey.toString('utf8'),
    keyBytes: rawKey.length,
    settings: summary(config, settings),
    lookups,
    ldapAnswer,
    answer,
    wire,
    servers: { used, failedConnects },
    elapsedMs,
    notes,
  };
  if (cache) report.cache = cache;
  return report;
}

function sameAnswer(a: LookupResult, b: LookupResult): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'found' && b.kind === 'found') return a.value.equals(b.value);
  return true;
}

function cacheInfo(p: CachePeek): CacheInfo {
  const c: CacheInfo = { enabled: p.enabled, state: p.state, inFlight: p.inFlight };
  if (p.result) c.cached = answerInfo(p.result);
  if (p.ageMs !== undefined) c.ageMs = p.ageMs;
  if (p.expiresInMs !== undefined) c.expiresInMs = p.expiresInMs;
  if (p.staleForMs !== undefined) c.staleForMs = p.staleForMs;
  if (p.refreshAhead !== undefined) c.refreshAhead = p.refreshAhead;
  return c;
}

function summary(c: MapConfig, s: MapSettings): MapSummary {
  return {
    searchBase: c.searchBase,
    queryFilter: c.queryFilter,
    resultFormat: c.resultFormat,
    scope: c.scope,
    domain: c.domain ? c.domain.items.map((i) => (i.negate ? `!${i.name}` : i.name)) : null,
    terminalResultAttribute: c.terminalResultAttribute,
    leafResultAttribute: c.leafResultAttribute,
    resultAttribute: c.resultAttribute,
    specialResultAttribute: c.specialResultAttribute,
    recursionLimit: c.recursionLimit,
    expansionLimit: c.expansionLimit,
    sizeLimit: c.sizeLimit,
    timeout: c.timeout,
    smtputf8: s.smtputf8,
    loopHandling: s.loopHandling,
    fallback: s.fallback,
    recipientDelimiter: s.recipientDelimiter,
    propagateExtension: s.propagateExtension,
    requestTimeout: s.requestTimeout,
  };
}

/** The answer as both wire protocols carry it, with the same encoders the servers use. */
export function wireInfo(result: LookupResult): WireInfo {
  const sm = encodeSocketmapReply(result);
  const colon = sm.frame.indexOf(0x3a);
  const payload = sm.frame.subarray(colon + 1, sm.frame.length - 1);
  const space = payload.indexOf(0x20);
  const tcp = encodeTcpReply(result);
  const w: WireInfo = {
    socketmap: {
      word: payload.toString('latin1', 0, space < 0 ? payload.length : space),
      frame: sm.frame.toString('utf8'),
      frameBase64: sm.frame.toString('base64'),
      frameBytes: sm.frame.length,
      payloadBytes: payload.length,
      limit: SOCKETMAP_MAX_REPLY,
      fits: sm.oversize === undefined,
    },
    tcpTable: {
      status: tcp.line.toString('latin1', 0, 3),
      line: tcp.line.toString('utf8'),
      lineBase64: tcp.line.toString('base64'),
      bytes: tcp.line.length,
      limit: TCP_MAX_REPLY,
      fits: tcp.oversize === undefined,
    },
  };
  if (sm.oversize !== undefined) w.socketmap.needed = sm.oversize;
  if (tcp.oversize !== undefined) w.tcpTable.needed = tcp.oversize;
  return w;
}

/** Exit status like `query`, from the socketmap answer: 0 OK, 1 NOTFOUND, 2 PERM, 75 TEMP / TIMEOUT. */
export function exitCodeFor(report: ExplainReport): number {
  switch (report.wire.socketmap.word) {
    case 'OK':
      return 0;
    case 'NOTFOUND':
      return 1;
    case 'PERM':
      return 2;
    default:
      return 75;
  }
}
