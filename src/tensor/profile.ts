/**
 * Where time goes at the boundary: runs `fn` with every addon function wrapped by a timer, and reports
 * how many native calls it made and how long they took (libtorch dispatch + kernels) against the total.
 * total − native is the time spent in JavaScript (our facade, the caller's loop). The timers add
 * ~0.1 µs a call, so profile a separate run, not the one you time.
 */
import { native } from './native.js';

/** profileBoundary's result: the function's value, native calls made and time spent outside libtorch. */
export interface BoundaryProfile<T> {
  result: T;
  calls: number;
  nativeSeconds: number;
  totalSeconds: number;
}

/** Runs fn counting the native calls it makes and the time spent in JavaScript between them. */
export function profileBoundary<T>(fn: () => T): BoundaryProfile<T> {
  const table = native as unknown as Record<string, unknown>;
  const originals = new Map<string, (...a: unknown[]) => unknown>();
  let calls = 0;
  let nativeNs = 0n;
  for (const [name, v] of Object.entries(table)) {
    if (typeof v !== 'function') continue;
    const f = v as (...a: unknown[]) => unknown;
    originals.set(name, f);
    table[name] = (...args: unknown[]) => {
      calls++;
      const t0 = process.hrtime.bigint();
      try {
        return f(...args);
      } finally {
        nativeNs += process.hrtime.bigint() - t0;
      }
    };
  }
  const t0 = process.hrtime.bigint();
  try {
    const result = fn();
    return { result, calls, nativeSeconds: Number(nativeNs) / 1e9, totalSeconds: Number(process.hrtime.bigint() - t0) / 1e9 };
  } finally {
    for (const [name, f] of originals) table[name] = f;
  }
}
