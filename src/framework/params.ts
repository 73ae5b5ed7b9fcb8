/**
 * Strict parameter parsing for plugin factories, shared so every plugin reports errors the same way:
 * `plugin 'my-scorer' (type: queue-scorer): parameters.threshold: expected a number > 0, got -1`.
 */
import { z } from 'zod';
import type { TypedName } from './plugin.ts';
import { EppConfigError } from './errors.ts';

/**
 * Validates `parameters` against `schema` (use `z.strictObject` so unknown keys are rejected).
 * `undefined`/`null` parameters are treated as `{}`, so defaults in the schema apply.
 */
export function parsePluginParameters<T>(typedName: TypedName, schema: z.ZodType<T>, parameters: unknown): T {
  const input = parameters === undefined || parameters === null ? {} : parameters;
  const result = schema.safeParse(input);
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
