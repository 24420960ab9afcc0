/**
 * Progress on stderr. Every long phase already logs a line per unit of work with its count, `k/N` (a
 * training step `step 3/12`, a sampling batch `sampled 64/128`, a round `round 2/5`). On a terminal those
 * lines become one bar per phase, redrawn in place (`\r` and erase-line), with the count, the rate and an
 * ETA, the rest of the line as its caption; other lines (evaluations, notes) print above the bar. Off a
 * terminal (CI, pipes, --json) every line is written as it is. With --quiet nothing is, but the command's
 * one-line failure reason. The bar is drawn here rather than by a library: one line of ANSI, no dependency.
 */

/** A line's phase (its leading `[tag]`, or '') and count, when it reports one. */
export function progressOf(line: string): { phase: string; done: number; total: number; rest: string } | null {
  const m = line.match(/^(\[[^\]]*\]\s*)?(?:.*?\b)?(\d+)\/(\d+)\b(.*)$/);
  if (!m) return null;
  const done = Number(m[2]);
  const total = Number(m[3]);
  if (!(total > 0 && done <= total)) return null;
  return { phase: (m[1] ?? '').trim(), done, total, rest: m[4]!.trim() };
}

const fmtTime = (s: number): string => (Number.isFinite(s) ? `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}` : '--:--');

/** One bar line: `[phase] ████░░░░ 3/12 0.41/s ETA 0:22 caption`, cut to the terminal's width. */
export function renderBar(p: { phase: string; done: number; total: number; rest: string }, rate: number, width: number): string {
  const cells = 24;
  const full = Math.round((cells * p.done) / p.total);
  const eta = rate > 0 ? (p.total - p.done) / rate : Infinity;
  const bar = `${p.phase ? p.phase + ' ' : ''}${'█'.repeat(full)}${'░'.repeat(cells - full)} ${p.done}/${p.total} ${rate > 0 ? rate.toFixed(2) : '-'}/s ETA ${fmtTime(eta)} ${p.rest}`;
  return bar.length > width ? bar.slice(0, Math.max(10, width - 1)) : bar;
}

type Write = typeof process.stderr.write;

/**
 * Routes stderr through the progress display until the returned function is called: a bar on a
 * terminal, lines off one, nothing with `quiet` (see the header). `failure` lines (the command's error)
 * always pass.
 */
export function installProgress(opts: { tty: boolean; quiet: boolean; columns?: number }): () => void {
  const original: Write = process.stderr.write.bind(process.stderr);
  let pending = '';
  let bar: { phase: string; start: number; startDone: number; line: string } | null = null;
  const clearBar = () => {
    if (bar) original('\r\x1b[2K');
  };
  const onLine = (line: string) => {
    if (opts.quiet) return line.startsWith('rlhf: ') ? void original(line + '\n') : undefined;
    if (!opts.tty) return void original(line + '\n');
    const p = progressOf(line);
    if (!p) {
      clearBar();
      original(line + '\n');
      if (bar) original(bar.line);
      return;
    }
    if (!bar || bar.phase !== p.phase || p.done < bar.startDone) {
      if (bar) original('\n'); // the finished phase's bar stays on its line
      // The rate counts from the phase's first line (a resumed run starts at its checkpoint's count): none until the second.
      bar = { phase: p.phase, start: Date.now(), startDone: p.done, line: '' };
    }
    const seconds = (Date.now() - bar.start) / 1000;
    const rate = seconds > 0 && p.done > bar.startDone ? (p.done - bar.startDone) / seconds : 0;
    bar.line = renderBar(p, rate, opts.columns ?? (process.stderr.columns || 120));
    original(`\r\x1b[2K${bar.line}`);
  };
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    pending += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const l of lines) onLine(l);
    const cb = rest.find((x) => typeof x === 'function') as (() => void) | undefined;
    cb?.();
    return true;
  }) as Write;
  return () => {
    if (pending) onLine(pending);
    if (bar) original('\n');
    process.stderr.write = original;
  };
}
