// `wasi:clocks/monotonic-clock` in a native test: a wait is counted, not waited.
import { state } from '../state.js';

export function subscribeDuration(when: bigint): { block(): void } {
  return {
    block() {
      state.slept += Number(when / 1_000_000n);
    },
  };
}
