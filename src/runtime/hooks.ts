/**
 * The per-phase hook arrays, built once at startup from the configured plugins (config order). A phase with
 * no hooks is `null`, so the hot path pays one comparison and allocates nothing for it.
 */
import type { Plugin } from '../framework/plugin.ts';
import {
  isAdmitter,
  isDataProducer,
  isPreRequestHook,
  isResponseChunkHook,
  isResponseCompleteHook,
  isResponseHeadersHook,
  type Admitter,
  type DataProducer,
  type PreRequestHook,
  type ResponseChunkHook,
  type ResponseCompleteHook,
  type ResponseHeadersHook,
} from '../framework/requestcontrol.ts';

export interface CompiledHooks {
  /** Data producers in dependency order (producers before consumers). */
  readonly prepareData: readonly DataProducer[] | null;
  readonly admit: readonly Admitter[] | null;
  readonly preRequest: readonly PreRequestHook[] | null;
  readonly responseHeaders: readonly ResponseHeadersHook[] | null;
  readonly responseChunk: readonly ResponseChunkHook[] | null;
  readonly responseComplete: readonly ResponseCompleteHook[] | null;
}

function orNull<T>(xs: T[]): readonly T[] | null {
  return xs.length === 0 ? null : Object.freeze(xs);
}

/**
 * Sorts plugins into phases. `producersInOrder` is the data producers already ordered by their
 * declared dependencies (see data-graph.ts); the other phases keep config order.
 */
export function compileHooks(plugins: readonly Plugin[], producersInOrder: readonly DataProducer[]): CompiledHooks {
  return Object.freeze({
    prepareData: orNull([...producersInOrder]),
    admit: orNull(plugins.filter(isAdmitter)),
    preRequest: orNull(plugins.filter(isPreRequestHook)),
    responseHeaders: orNull(plugins.filter(isResponseHeadersHook)),
    responseChunk: orNull(plugins.filter(isResponseChunkHook)),
    responseComplete: orNull(plugins.filter(isResponseCompleteHook)),
  });
}

/** Orders data producers so that every producer runs before the plugins consuming its keys. */
export function orderDataProducers(plugins: readonly Plugin[]): DataProducer[] {
  const producers = plugins.filter(isDataProducer);
  const producerOf = new Map<string, DataProducer>();
  for (const p of producers) for (const key of p.produces) if (!producerOf.has(key)) producerOf.set(key, p);
  // Kahn's algorithm; ties broken by config order, so the result is deterministic.
  const deps = new Map<DataProducer, Set<DataProducer>>();
  for (const p of producers) {
    const d = new Set<DataProducer>();
    for (const key of p.consumes) {
      const prod = producerOf.get(key);
      if (prod && prod !== p) d.add(prod);
    }
    deps.set(p, d);
  }
  const out: DataProducer[] = [];
  const done = new Set<DataProducer>();
  while (out.length < producers.length) {
    const next = producers.find((p) => !done.has(p) && [...(deps.get(p) ?? [])].every((d) => done.has(d)));
    if (!next) {
      const stuck = producers.filter((p) => !done.has(p)).map((p) => p.typedName.name);
      throw new Error(`data producers form a dependency cycle: ${stuck.join(' -> ')}; remove one produces/consumes edge`);
    }
    done.add(next);
    out.push(next);
  }
  return out;
}
