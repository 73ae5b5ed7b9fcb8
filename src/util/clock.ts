/**
 * The one real clock: wall-clock milliseconds since the epoch, read from the monotonic high-resolution timer
 * (so a wall-clock step does not move it backwards). Everything that reads time takes a `Clock` (or `now`)
 * and defaults to this one; tests inject their own (see src/framework/plugin.ts).
 */
import type { Clock } from '../framework/plugin.ts';

export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
};
