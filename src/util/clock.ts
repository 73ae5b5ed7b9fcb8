/** The real clock. Tests inject their own `Clock` (see src/framework/plugin.ts). */
import type { Clock } from '../framework/plugin.ts';

export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
};
