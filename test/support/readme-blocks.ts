/**
 * The README's runnable examples: fenced blocks tagged ```sh demo. In such a block a line
 * starting with "$ " is a command (a trailing "\" continues it on the next line); the lines
 * after it, up to the next command, are the output the README promises. Pure parsing and
 * matching, so the rules are unit-tested apart from the demo they run against.
 */

export interface Example {
  /** 1-based README line of the command. */
  line: number;
  command: string;
  expected: string[];
}

export function demoExamples(markdown: string): Example[] {
  const lines = markdown.split('\n');
  const out: Example[] = [];
  let inDemo = false;
  let inOther = false;
  let current: Example | undefined;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const fence = /^```(.*)$/.exec(l);
    if (fence) {
      if (inDemo) { inDemo = false; current = undefined; continue; }
      if (inOther) { inOther = false; continue; }
      if (fence[1]!.trim() === 'sh demo') inDemo = true; else inOther = true;
      continue;
    }
    if (!inDemo) continue;
    if (l.startsWith('$ ')) {
      const start = i + 1;
      let command = l.slice(2);
      while (command.endsWith('\\') && i + 1 < lines.length) command = `${command.slice(0, -1).trimEnd()} ${lines[++i]!.trim()}`;
      current = { line: start, command: command.replace(/\s+/g, ' ').trim(), expected: [] };
      out.push(current);
    } else if (current) {
      current.expected.push(l);
    } else if (l.trim() !== '') {
      throw new Error(`README line ${i + 1}: text before the first "$ " command of a demo block`);
    }
  }
  if (inDemo) throw new Error('README: a ```sh demo block is not closed');
  return out;
}

/** Times vary from run to run: "2.85 ms", "3.1 s" compare as "N ms", "N s". */
function normalize(line: string): string {
  return line.replace(/\d+(?:\.\d+)? (ms|s)\b/g, 'N $1').trimEnd();
}

function lineMatches(expected: string, actual: string): boolean {
  const e = normalize(expected);
  const a = normalize(actual);
  if (!e.includes('…')) return e === a;
  const re = new RegExp(`^${e.split('…').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*?')}$`);
  return re.test(a);
}

/**
 * Does the output match what the README shows? Each expected line matches one output line in
 * order (times normalized, "…" inside a line stands for any text); a line "..." skips any
 * number of output lines. Output after the last expected line is a mismatch unless the
 * expectation ends with "...". Returns undefined when it matches, else the reason.
 */
export function mismatch(expected: string[], output: string): string | undefined {
  const exp = [...expected];
  while (exp.length && exp[exp.length - 1]!.trim() === '') exp.pop();
  const act = output.replace(/\n$/, '').split('\n');
  if (output === '') act.length = 0;
  const match = (ei: number, ai: number): boolean => {
    if (ei === exp.length) return ai === act.length;
    if (exp[ei]!.trim() === '...') {
      for (let k = ai; k <= act.length; k++) if (match(ei + 1, k)) return true;
      return false;
    }
    return ai < act.length && lineMatches(exp[ei]!, act[ai]!) && match(ei + 1, ai + 1);
  };
  if (match(0, 0)) return undefined;
  // Point at the first line that differs, for the failure message.
  let ai = 0;
  for (const e of exp) {
    if (e.trim() === '...') return `output differs after a "..." (expected next: ${JSON.stringify(exp[exp.indexOf(e) + 1] ?? '(end)')})`;
    if (ai >= act.length) return `output ended, README expects ${JSON.stringify(e)}`;
    if (!lineMatches(e, act[ai]!)) return `README: ${JSON.stringify(e)}\nactual: ${JSON.stringify(act[ai])}`;
    ai++;
  }
  return `output goes on after what the README shows: ${JSON.stringify(act[ai])}`;
}
