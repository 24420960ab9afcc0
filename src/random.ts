/**
 * Counter-based random streams for sampling: the u-th draw of stream s under seed k is a pure function
 * hash(k, s, u), so a sequence's samples depend only on its own stream — never on its batch-mates, the
 * batch size or the order of calls — and resuming needs no state beyond (seed, stream, step). The hash
 * is MurmurHash3's 32-bit finaliser applied twice for 53 bits (the counter-based idea of Salmon et al.
 * 2011, "Parallel random numbers: as easy as 1, 2, 3"; not cryptographic).
 */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The key of stream `stream` under `seed` (both integers; only their low 32 bits matter). */
export function streamKey(seed: number, stream: number): number {
  return fmix32(fmix32(seed >>> 0) ^ Math.imul((stream + 1) >>> 0, 0x9e3779b1));
}

/** A uniform draw in [0, 1) with 53 random bits: draw number `step` of the stream with key `key`. */
export function uniformAt(key: number, step: number): number {
  const hi = fmix32(key ^ fmix32(Math.imul(2 * step + 1, 0x27d4eb2f)));
  const lo = fmix32(hi ^ key ^ fmix32(Math.imul(2 * step + 2, 0x165667b1)));
  return (hi * 2 ** 21 + (lo >>> 11)) / 2 ** 53;
}

/**
 * mulberry32 (Tommy Ettinger): a tiny sequential seeded PRNG in [0, 1), for data orders and test
 * fuzzing where a replayable stream is all that is needed.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
