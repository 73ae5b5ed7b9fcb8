/**
 * Parameter parsing for plugin factories, shared so every plugin reports errors the same way:
 * `plugin 'my-scorer' (type: queue-scorer): parameters.threshold: expected a number > 0, got -1`.
 *
 * Lenient where upstream is (epp-spec §4.1: parameters are decoded with Go `encoding/json` semantics): unknown
 * parameter keys are ignored, and values upstream silently replaces by a default (`orDefaultWhenNotPositive`) are
 * replaced the same way. Each such case is reported once as a warning naming the field (the config loader logs
 * it); everything upstream rejects stays an error.
 */
import { z } from 'zod';
import type { TypedName } from './plugin.ts';
import { EppConfigError } from './errors.ts';

/** Receives `(field path, message)` for each value accepted leniently during one factory call. */
export type ParameterWarningSink = (field: string, message: string) => void;

let sink: ParameterWarningSink | undefined;

/** Runs `fn` (a plugin factory call) with lenient-value warnings sent to `onWarning`. */
export function collectParameterWarnings<T>(onWarning: ParameterWarningSink, fn: () => T): T {
  const previous = sink;
  sink = onWarning;
  try {
    return fn();
  } finally {
    sink = previous;
  }
}

/** Reports a value accepted leniently (no-op outside `collectParameterWarnings`). */
export function parameterWarning(field: string, message: string): void {
  sink?.(field, message);
}

/**
 * A number field for which upstream turns a value ≤ 0 (or null) into its default (e.g. a picker's `maxNumOfEndpoints: 0`
 * means 1): such a value becomes `fallback`, with a warning; anything else is validated by `schema`.
 */
export function orDefaultWhenNotPositive<S extends z.ZodType>(field: string, fallback: number, schema: S) {
  return z.preprocess((v) => {
    if ((typeof v === 'number' && v <= 0) || v === null) {
      parameterWarning(field, `${String(v)} is not positive: using the default ${fallback}, as upstream does`);
      return fallback;
    }
    return v;
  }, schema);
}

function removeAt(input: unknown, path: readonly PropertyKey[], keys: readonly string[]): void {
  let node = input as Record<PropertyKey, unknown> | undefined;
  for (const p of path) node = node?.[p] as Record<PropertyKey, unknown> | undefined;
  if (node && typeof node === 'object') for (const k of keys) delete node[k];
}

/**
 * Validates `parameters` against `schema` (`z.strictObject` lists the known keys). `undefined`/`null` parameters
 * are treated as `{}`, so defaults in the schema apply. Unknown keys are dropped with a warning (upstream ignores
 * them); every other problem is an EppConfigError naming the plugin and the field.
 */
export function parsePluginParameters<T>(typedName: TypedName, schema: z.ZodType<T>, parameters: unknown): T {
  let input: unknown = parameters === undefined || parameters === null ? {} : parameters;
  let result = schema.safeParse(input);
  for (let round = 0; !result.success && round < 8; round++) {
    const unknown = result.error.issues.filter((i) => i.code === 'unrecognized_keys');
    if (unknown.length === 0) break;
    input = structuredClone(input);
    for (const issue of unknown) {
      const keys = (issue as { keys: string[] }).keys;
      removeAt(input, issue.path, keys);
      for (const k of keys) parameterWarning([...issue.path, k].join('.'), 'unknown field ignored (as upstream); check its spelling');
    }
    result = schema.safeParse(input);
  }
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => {
    const path = issue.path.length > 0 ? `parameters.${issue.path.join('.')}` : 'parameters';
    return `${path}: ${issue.message}`;
  });
  throw new EppConfigError(
    `plugin '${typedName.name}' (type: ${typedName.type}) has invalid parameters: ${issues.join('; ')}`,
    `fix the plugin's parameters; see docs for type '${typedName.type}'`,
  );
}
