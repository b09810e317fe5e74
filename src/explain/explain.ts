/**
 * Runs one lookup through the map chain the daemon serves with (the very objects: deadline,
 * cache, fallback emulation, LDAP map), asked to look without changing anything, with a
 * recorder as its trace; turns what the code reported into an ExplainReport. When the cache
 * answers, the same chain without the cache is asked too, to show what LDAP says now.
 */
import type { BuiltMap } from '../chain/build.js';
import type { LookupMap } from '../contracts/map.js';
import { temp, type LookupResult } from '../contracts/result.js';
import type { CacheEvent, LookupStep, LookupTrace } from '../contracts/trace.js';
import { encodeSocketmapReply, SOCKETMAP_MAX_REPLY } from '../protocol/socketmap.js';
import { encodeTcpReply, TCP_MAX_REPLY } from '../protocol/tcp-table.js';
import type { MapConfig } from '../config/map-config.js';
import type { MapSettings } from '../config/settings.js';
import { LookupRecorder } from './recorder.js';
import { answerInfo } from './why.js';
import type { ServerTap } from './server-tap.js';
import { REPORT_VERSION, type CacheInfo, type ExplainReport, type MapSummary, type WireInfo } from './types.js';

/** One map as explain needs it: the chain the daemon (or the command line) built. */
export type ExplainTarget = Pick<BuiltMap<unknown>, 'name' | 'file' | 'config' | 'settings' | 'ldap' | 'served' | 'direct'>;

export interface ExplainOptions {
  source: 'cli' | 'daemon';
  /** Observer on the map's pool, for the servers searches went to. */
  tap?: ServerTap;
  /** How long to wait for searches still running after the answer was decided. Default: the map's timeout + 1 s. */
  settleMs?: number;
  /** Postfix's socketmap_max_reply_size, for the wire view. */
  maxReply?: number;
}

/** The trace of one whole request: a LookupRecorder per key the LDAP map was asked, and the chain's own events. */
class ChainRecorder {
  readonly lookups: LookupRecorder[] = [];
  readonly cacheEvents: CacheEvent[] = [];
  deadlineMs: number | undefined;
  readonly trace: LookupTrace;
  private pendingStep: LookupStep | undefined;

  constructor(private readonly target: ExplainTarget) {
    const current = (): LookupTrace => this.current().trace;
    this.trace = {
      step: (step) => { this.pendingStep = step; },
      cache: (e) => { this.cacheEvents.push(e); },
      deadline: (ms) => { this.deadlineMs = ms; },
      key: (raw, folded) => this.start().trace.key!(raw, folded),
      domain: (...a) => current().domain!(...a),
      suppressed: (...a) => current().suppressed!(...a),
      search: (...a) => current().search!(...a),
      searchDone: (...a) => current().searchDone!(...a),
      entry: (...a) => current().entry!(...a),
      value: (...a) => current().value!(...a),
      limit: (...a) => current().limit!(...a),
      loop: (...a) => current().loop!(...a),
      answer: (...a) => current().answer!(...a),
    };
  }

  /** The LDAP map was given a key: the step the fallback announced, else the key itself. */
  private start(): LookupRecorder {
    const rec = new LookupRecorder(this.pendingStep ?? 'key', this.target.config, this.target.ldap.templates);
    this.pendingStep = undefined;
    this.lookups.push(rec);
    return rec;
  }

  private current(): LookupRecorder {
    return this.lookups[this.lookups.length - 1] ?? this.start();
  }

  /** Runs the map with this recorder; a map that throws answers what the servers answer then. */
  async run(map: LookupMap, key: Buffer, notes: string[]): Promise<LookupResult> {
    try {
      return await map.lookup(key, { trace: this.trace, lookOnly: true });
    } catch (err) {
      notes.push(`the lookup threw: ${err instanceof Error ? err.message : String(err)}`);
      for (const l of this.lookups) l.finish(temp('internal error'));
      return temp('internal error');
    }
  }

  async settle(ms: number): Promise<void> {
    await Promise.all(this.lookups.map((r) => r.settle(ms)));
  }
}

export async function explainLookup(target: ExplainTarget, rawKey: Buffer, opts: ExplainOptions): Promise<ExplainReport> {
  const { config, settings } = target;
  const notes: string[] = [];
  const watch = opts.tap?.watch();
  const started = performance.now();
  const served = new ChainRecorder(target);
  const result = await served.run(target.served, rawKey, notes);
  const hit = served.cacheEvents.find((e) => e.outcome === 'hit');
  // The cache answered without asking LDAP: ask the chain below it what LDAP says now.
  const asked = hit ? new ChainRecorder(target) : served;
  const ldapResult = hit ? await asked.run(target.direct, rawKey, notes) : result;
  const elapsedMs = Math.round((performance.now() - started) * 100) / 100;
  if (served.deadlineMs !== undefined || asked.deadlineMs !== undefined) {
    notes.push(`request_timeout (${settings.requestTimeout} s) ran out: the daemon answers TIMEOUT while the lookup runs on`);
  }

  // Searches still in flight when a failure decided the answer run on; wait for them so the
  // tree is complete (they are marked as finished after the answer).
  await asked.settle(opts.settleMs ?? Math.max(1, config.timeout) * 1000 + 1000);
  watch?.stop();
  const used = [...(watch?.used ?? [])].sort();
  const failedConnects = [...(watch?.failedConnects ?? [])].sort();
  if (opts.source === 'daemon' && used.length > 1) {
    notes.push('the daemon\'s pool talked to several servers while this ran (other traffic included): searches list the candidates');
  }
  for (const f of target.ldap.pool.failingServers) {
    notes.push(`circuit breaker open for ${f.server} since ${Math.round(f.openForMs / 1000)} s (${f.reason}): lookups skip it until a background probe answers`);
  }
  if (config.chaseReferrals) {
    notes.push('chase_referrals = yes: entries may come from servers that referrals named; the searches listed are the ones sent to the map\'s own servers');
  }
  const lookups = asked.lookups.map((r) => r.build(used, target.ldap.templates.dynamicBase));
  for (const l of lookups) {
    if (l.searches > 0 && l.search === undefined) notes.push(`lookup of ${JSON.stringify(l.key)}: searches without a top-level search (unexpected)`);
  }
  const stale = served.cacheEvents.some((e) => e.outcome === 'stale');
  // Served stale: the chain returned the cached answer; LDAP's own was the last lookup's failure.
  const ldapAnswer = stale && lookups.length > 0 ? lookups[lookups.length - 1]!.result : answerInfo(ldapResult);
  if (settings.fallback === 'address' && lookups.length > 1 && ldapAnswer.kind === 'found') {
    const last = lookups[lookups.length - 1]!;
    if (last.result.kind === 'found' && last.result.value !== ldapAnswer.value) {
      notes.push('the address extension was appended to every address of the answer (propagate_extension = yes)');
    }
  }

  const source = hit ? 'cache' : stale ? 'stale' : 'ldap';
  const answer: ExplainReport['answer'] = { ...answerInfo(result), source };
  if (hit && !sameAnswer(result, ldapResult)) {
    notes.push(`the daemon answers from its cache, which differs from what LDAP says now; \`ldap-socketmap cache flush ${target.name} KEY\` drops it`);
  }
  if (stale) notes.push('LDAP failed, so the daemon serves the expired cached answer (stale_if_error)');
  const first = served.cacheEvents[0];
  if (first?.inFlight) notes.push('a lookup of this key is running in the daemon right now: a request arriving now would share its answer');
  const wire = wireInfo(result, opts.maxReply);
  if (!wire.socketmap.fits) notes.push(`the answer is ${wire.socketmap.needed} bytes as a socketmap payload, over Postfix's ${wire.socketmap.limit}: the daemon answers TEMP instead`);
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
  if (opts.source === 'daemon' && first) report.cache = cacheInfo(first);
  return report;
}

function sameAnswer(a: LookupResult, b: LookupResult): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === 'found' && b.kind === 'found') return a.value.equals(b.value);
  return true;
}

/** What the cache reported on the request, as the report shows it. */
function cacheInfo(e: CacheEvent): CacheInfo {
  const h = e.held;
  const c: CacheInfo = { enabled: e.outcome !== 'disabled', state: h ? (h.expiresInMs > 0 ? 'fresh' : 'stale') : 'absent', inFlight: e.inFlight };
  if (!h) return c;
  c.cached = answerInfo(h.result);
  c.ageMs = h.ageMs;
  c.expiresInMs = h.expiresInMs;
  if (h.staleForMs !== undefined) c.staleForMs = h.staleForMs;
  if (h.refreshAhead !== undefined) c.refreshAhead = h.refreshAhead;
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
export function wireInfo(result: LookupResult, maxReply = SOCKETMAP_MAX_REPLY): WireInfo {
  const sm = encodeSocketmapReply(result, maxReply);
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
      limit: maxReply,
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
