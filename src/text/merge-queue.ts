// The merge candidates of a BPE-style tokenizer: the symbols of a text as a doubly linked list over arrays,
// and a binary heap of adjacent pairs ordered by priority then position, invalidated lazily (an entry is
// dropped when popped if either symbol has changed since it was pushed). Each merge then costs O(log n)
// instead of a rescan of every pair, so encoding is O(n log n) in the text's length, the approach of
// SentencePiece's BPE model and of Hugging Face's `tokenizers` (word.rs `merge_all`).

/**
 * Candidates queued by every MergeQueue so far: the tokenizers' work, which tests read to check that it
 * grows linearly with the text (a quadratic merge loop queued or scanned every pair on every merge).
 */
export const mergeWork = { candidates: 0 };

/** One candidate: merge symbol `left` with the symbol after it, at `priority` (lower merges first). */
interface Candidate {
  priority: number;
  left: number;
  right: number;
  /** The symbols' versions when pushed: a merge bumps the version of the symbol it rewrites. */
  leftVersion: number;
  rightVersion: number;
  /** What the merge produces (the caller's id or piece). */
  result: number;
}

/**
 * A text's symbols (as numbers: token ids or indices into the caller's pieces) and its pending merges.
 * Positions are the symbols' original indices, so "leftmost first" among equal priorities is "smallest
 * `left` first" however many merges have happened.
 */
export class MergeQueue {
  readonly symbols: Int32Array;
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly version: Uint32Array;
  private readonly heap: Candidate[] = [];

  constructor(symbols: readonly number[]) {
    const n = symbols.length;
    this.symbols = Int32Array.from(symbols);
    this.next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    this.prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    this.version = new Uint32Array(n);
  }

  /** The symbol after `i`, or -1. */
  after(i: number): number {
    return this.next[i]!;
  }

  /** The symbol before `i`, or -1. */
  before(i: number): number {
    return this.prev[i]!;
  }

  /** Queues the merge of `left` with the symbol after it (the caller has checked the pair merges at all). */
  push(left: number, priority: number, result: number): void {
    const right = this.next[left]!;
    this.heap.push({ priority, left, right, leftVersion: this.version[left]!, rightVersion: this.version[right]!, result });
    mergeWork.candidates++;
    this.siftUp(this.heap.length - 1);
  }

  /** The best still-valid candidate without removing it, or null when none is left. */
  peek(): Candidate | null {
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      if (this.valid(top)) return top;
      this.pop();
    }
    return null;
  }

  /** Removes and returns the best still-valid candidate, or null. */
  take(): Candidate | null {
    const top = this.peek();
    if (top !== null) this.pop();
    return top;
  }

  /** Whether a candidate's two symbols are still adjacent and unchanged since it was pushed. */
  valid(c: Candidate): boolean {
    return this.next[c.left] === c.right && this.version[c.left] === c.leftVersion && this.version[c.right] === c.rightVersion;
  }

  /** Merges a candidate: its left symbol becomes `c.result`, its right symbol leaves the list. */
  apply(c: Candidate): void {
    const after = this.next[c.right]!;
    this.symbols[c.left] = c.result;
    this.version[c.left]!++;
    this.version[c.right]!++;
    this.next[c.left] = after;
    this.next[c.right] = -1;
    if (after !== -1) this.prev[after] = c.left;
  }

  /** The symbols left, in order. */
  remaining(): number[] {
    const out: number[] = [];
    for (let i = this.symbols.length > 0 ? 0 : -1; i !== -1; i = this.next[i]!) out.push(this.symbols[i]!);
    return out;
  }

  private less(a: Candidate, b: Candidate): boolean {
    return a.priority < b.priority || (a.priority === b.priority && a.left < b.left);
  }

  private pop(): void {
    const last = this.heap.pop()!;
    if (this.heap.length === 0) return;
    this.heap[0] = last;
    this.siftDown(0);
  }

  private siftUp(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(h[i]!, h[parent]!)) return;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  private siftDown(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let best = i;
      if (l < h.length && this.less(h[l]!, h[best]!)) best = l;
      if (r < h.length && this.less(h[r]!, h[best]!)) best = r;
      if (best === i) return;
      [h[i], h[best]] = [h[best]!, h[i]!];
      i = best;
    }
  }
}
