/**
 * Preloaded into every test process by scripts/test.mjs (`node --import`) when RLHF_TEST_THREADS is set:
 * every test then runs on that many libtorch and OpenBLAS threads, the ones that never fix a count too.
 * Without it nothing is loaded, so the pure tier stays free of native code.
 */
import { useTestThreads } from './env.js';

useTestThreads();
