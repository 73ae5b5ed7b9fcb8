// Public API of the fleet simulator. Other parts of the project import from here only.

export { startFleet } from './fleet.ts';
export type { Fleet, FleetOptions, FleetServer } from './fleet.ts';
export { registerSimCommand } from './cli.ts';
export type { SimCommandHooks } from './cli.ts';
export { SimServer } from './sim-server.ts';
export type { Admission, AdmittedChoice, GenerationRequest, PromptInput, SimServerInit } from './sim-server.ts';
export { SimHttpServer } from './http/sim-http-server.ts';
export { RealClock, VirtualClock } from './clock.ts';
export type { SimClock, TimerHandle } from './clock.ts';
export { SeededRandom } from './rng.ts';
export type { RandomSource } from './rng.ts';
export { KNOBS, defaultServerOptions, resolveServerOptions } from './config.ts';
export type { SimServerOptions, LatencyModelName, MetricsFlavor, FailureType } from './config.ts';
export type { KvEvent, KvEventBatch, KvEventListener } from './kv-events.ts';
export type { SchedulerState } from './engine.ts';
export type { LagSnapshot } from './metrics/server-metrics.ts';
export { createTokenizer, renderChatPrompt } from './tokenizer.ts';
export { runClosedLoop } from './closed-loop.ts';
export type { ClosedLoopSpec, LoadResult } from './closed-loop.ts';
export { sharedPrefixPrompts } from './shared-prefix-workload.ts';
