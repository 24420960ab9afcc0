/**
 * Tensor lifetime. JavaScript's garbage collector does not see native memory, so lifetime is explicit:
 * `scope(fn)` frees every tensor created inside it except those it returns (tfjs's `tidy`); `dispose()`
 * and `using` free one; a FinalizationRegistry is only a backstop for tensors that escape every scope.
 * Registering costs ~0.5 µs per tensor (measured), so only escaped tensors are registered:
 * tensors born inside a scope cost one array push.
 */
import { native } from './native.js';

/** What lifetime tracking needs from a tensor (the Tensor class implements it). */
export interface Tracked {
  /** The native handle; -1 once disposed. */
  _h: number;
  /** Whether the FinalizationRegistry holds it. */
  _reg: boolean;
  dispose(): void;
}

const frames: Tracked[][] = [];

const registry = new FinalizationRegistry<number>((h) => {
  // The tensor object was collected without dispose(): free its native side now.
  native.free(h);
});

/** Called once for every tensor the facade creates. */
export function track(t: Tracked): void {
  const top = frames.length;
  if (top > 0) frames[top - 1]!.push(t);
  else register(t);
}

/** Hands a tensor to the FinalizationRegistry backstop. */
export function register(t: Tracked): void {
  registry.register(t, t._h, t);
  t._reg = true;
}

/** Called by dispose(): the registry must not free a handle that may already be reused. */
export function untrack(t: Tracked): void {
  if (t._reg) {
    registry.unregister(t);
    t._reg = false;
  }
}

/** Collects the tensors inside a scope's result: a tensor, or arrays / plain objects holding tensors. */
function collect(v: unknown, out: Set<Tracked>, depth = 0): void {
  if (v === null || typeof v !== 'object' || depth > 4) return;
  if ('_h' in v && '_reg' in v) {
    out.add(v as Tracked);
    return;
  }
  if (Array.isArray(v)) for (const x of v) collect(x, out, depth + 1);
  else if (Object.getPrototypeOf(v) === Object.prototype || v instanceof Map) {
    for (const x of v instanceof Map ? v.values() : Object.values(v)) collect(x, out, depth + 1);
  }
}

/**
 * Runs `fn`; frees every tensor created during it except those in its result (a tensor, or arrays and
 * plain objects of tensors), which move to the enclosing scope. Synchronous only: an async function
 * would let other work interleave with the scope, so a promise result is an error.
 */
export function scope<T>(fn: () => T): T {
  frames.push([]);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    for (const t of frames.pop()!) if (t._h >= 0) t.dispose();
    throw e;
  }
  const frame = frames.pop()!;
  if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
    for (const t of frame) if (t._h >= 0) t.dispose();
    throw new Error('scope(fn) needs a synchronous fn: it returned a promise (await outside the scope instead)');
  }
  const keep = new Set<Tracked>();
  collect(result, keep);
  // Free in one native call: a decode step's scope holds hundreds of intermediates. The handles go in an
  // Int32Array, which the addon reads in place (a plain array costs a property lookup per element there),
  // reused across scopes: nothing below runs user code, so no other scope can end while it is filled.
  if (deadHandles.length < frame.length) deadHandles = new Int32Array(Math.max(frame.length, 2 * deadHandles.length));
  let n = 0;
  for (const t of frame) {
    if (t._h < 0) continue;
    if (keep.size > 0 && keep.has(t)) adopt(t);
    else {
      untrack(t);
      deadHandles[n++] = t._h;
      t._h = -1;
    }
  }
  if (n > 0) native.freeMany(deadHandles.subarray(0, n));
  return result;
}

let deadHandles = new Int32Array(256);

/** Moves a tensor to the enclosing scope, or registers it when no scope encloses. */
function adopt(t: Tracked): void {
  if (frames.length > 0) frames[frames.length - 1]!.push(t);
  else register(t);
}

/**
 * Exempts a tensor from its scope's cleanup (tfjs's `keep`): it lives until disposed or collected.
 * Returns the tensor for chaining.
 */
export function keep<T extends Tracked>(t: T): T {
  for (let i = frames.length - 1; i >= 0; i--) {
    const f = frames[i]!;
    const k = f.lastIndexOf(t);
    if (k >= 0) {
      f.splice(k, 1);
      break;
    }
  }
  if (!t._reg && t._h >= 0) register(t);
  return t;
}

/** Live native tensors and the bytes libtorch's CPU allocator holds (autograd and optimiser state included). */
export function memory(): { liveTensors: number; nativeBytes: number; nativePeakBytes: number } {
  const b = native.nativeBytes();
  return { liveTensors: native.liveTensors(), nativeBytes: b.cpu, nativePeakBytes: b.cpuPeak };
}

/**
 * Restarts the peak of memory().nativePeakBytes from the bytes held now, so the peak read after a phase
 * (generation, scoring, an update) is that phase's. Returns the bytes held at the reset.
 */
export function resetPeakMemory(): number {
  native.resetPeakBytes();
  return native.nativeBytes().cpu;
}

/** Runs `fn` and returns its result with the peak native bytes during it (above what was held before: `extra`). */
export function peakDuring<T>(fn: () => T): { result: T; peakBytes: number; extraBytes: number } {
  const before = resetPeakMemory();
  const result = fn();
  const peak = native.nativeBytes().cpuPeak;
  return { result, peakBytes: peak, extraBytes: peak - before };
}

/** Disposes every tensor in a (possibly nested) array or object. */
export function dispose(v: unknown): void {
  const s = new Set<Tracked>();
  collect(v, s);
  for (const t of s) if (t._h >= 0) t.dispose();
}
