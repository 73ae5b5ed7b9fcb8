/**
 * `request-attribute-reporter`: evaluates a CEL expression over the response's token usage and reports the
 * number to the proxy as dynamic metadata on the final reply (epp-spec §3.6), e.g. a request cost that Envoy
 * rate limiting can consume.
 *
 * The CEL library (@bufbuild/cel, ≈ 18 MiB and 140 ms to load) is loaded the first time a reporter is built, not
 * when this module is imported: a process whose configuration has no reporter never loads it. It is required
 * synchronously (its CommonJS build) because plugin factories are synchronous and an invalid expression must fail
 * at startup, where the configuration is compiled.
 */
import { createRequire } from 'node:module';
import { z } from 'zod';
import { EppConfigError } from '../../../framework/errors.ts';
import type { Logger, PluginFactory, TypedName } from '../../../framework/plugin.ts';
import { parsePluginParameters } from '../../../framework/params.ts';
import type { Usage } from '../../../framework/request.ts';
import type { Outcome, ResponseCompleteHook, ResponseInfo } from '../../../framework/requestcontrol.ts';

export const REQUEST_ATTRIBUTE_REPORTER_TYPE = 'request-attribute-reporter';

const parametersSchema = z.strictObject({
  attributes: z
    .array(
      z.strictObject({
        key: z.strictObject({
          namespace: z.string().min(1).default('envoy.lb'),
          name: z.string().min(1, 'is required'),
        }),
        expression: z.string().trim().min(1, 'is required (a CEL expression over `usage`)'),
        condition: z.string().trim().min(1).optional(),
      }),
    )
    .length(1, 'must contain exactly one attribute'),
});

type Cel = typeof import('@bufbuild/cel');
let cel: Cel | undefined;
/** The CEL library, loaded on first use. */
const loadCel = (): Cel => (cel ??= createRequire(import.meta.url)('@bufbuild/cel') as Cel);

type UsageBinding = Map<string, number | Map<string, number>>;
type Program = (bindings: { usage: UsageBinding }) => unknown;

function compile(typedName: TypedName, field: string, source: string): Program {
  const { celEnv, parse, plan } = loadCel();
  try {
    const run = plan(celEnv(), parse(source));
    return (bindings) => run(bindings);
  } catch (err) {
    throw new EppConfigError(
      `plugin '${typedName.name}' (type: ${typedName.type}): parameters.attributes[0].${field} is not valid CEL: ${(err as Error).message}`,
      'write a CEL expression over the variable `usage`, e.g. `usage.completion_tokens`',
    );
  }
}

/** Usage as upstream exposes it to CEL: a Struct, so every number is a double. */
function usageBinding(usage: Usage): UsageBinding {
  const m: UsageBinding = new Map<string, number | Map<string, number>>([
    ['prompt_tokens', usage.promptTokens],
    ['completion_tokens', usage.completionTokens],
    ['total_tokens', usage.totalTokens],
  ]);
  if (usage.cachedTokens !== undefined) m.set('prompt_token_details', new Map([['cached_tokens', usage.cachedTokens]]));
  return m;
}

function toInteger(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? Math.trunc(value) : undefined;
  if (typeof value === 'bigint') return Number(value);
  if (loadCel().isCelUint(value)) return Number(value.value);
  return undefined;
}

export class RequestAttributeReporter implements ResponseCompleteHook {
  readonly typedName: TypedName;
  readonly #namespace: string;
  readonly #key: string;
  readonly #expression: Program;
  readonly #condition: Program | undefined;
  readonly #logger: Logger;
  readonly #isError: Cel['isCelError'];

  constructor(typedName: TypedName, params: z.infer<typeof parametersSchema>, logger: Logger) {
    this.typedName = typedName;
    const attr = params.attributes[0] as (typeof params.attributes)[number];
    this.#namespace = attr.key.namespace;
    this.#key = attr.key.name;
    this.#isError = loadCel().isCelError;
    this.#expression = compile(typedName, 'expression', attr.expression);
    this.#condition = attr.condition === undefined ? undefined : compile(typedName, 'condition', attr.condition);
    this.#logger = logger;
  }

  /** Evaluates on successful completion; the value rides on the final reply to the proxy. */
  onResponseComplete(response: ResponseInfo, outcome: Outcome): void {
    if (outcome.kind !== 'success' || response.usage === undefined) return;
    const value = this.evaluate(response.usage);
    if (value === undefined) return;
    const ns = (response.dynamicMetadata[this.#namespace] ??= {});
    ns[this.#key] = value;
  }

  /** The reported number for this usage, or undefined when the condition is false, the value is 0 or on error. */
  evaluate(usage: Usage): number | undefined {
    const bindings = { usage: usageBinding(usage) };
    if (this.#condition) {
      const ok = this.#condition(bindings);
      if (this.#isError(ok)) {
        this.#logger.debug({ plugin: this.typedName.name, err: String(ok) }, 'condition evaluation failed');
        return undefined;
      }
      if (ok !== true) return undefined;
    }
    const result = this.#expression(bindings);
    if (this.#isError(result)) {
      this.#logger.debug({ plugin: this.typedName.name, err: String(result) }, 'expression evaluation failed');
      return undefined;
    }
    const n = toInteger(result);
    return n === undefined || n === 0 ? undefined : n;
  }
}

export const requestAttributeReporterFactory: PluginFactory = (name, parameters, handle) => {
  const typedName = { type: REQUEST_ATTRIBUTE_REPORTER_TYPE, name };
  if (parameters === undefined || parameters === null) {
    throw new EppConfigError(
      `plugin '${name}' (type: ${REQUEST_ATTRIBUTE_REPORTER_TYPE}) requires parameters`,
      'add parameters.attributes with one {key: {namespace, name}, expression, condition?} entry',
    );
  }
  const params = parsePluginParameters(typedName, parametersSchema, parameters);
  return new RequestAttributeReporter(typedName, params, handle.logger);
};
