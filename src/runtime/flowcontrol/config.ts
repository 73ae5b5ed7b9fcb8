/**
 * Builds the flow controller's configuration from the `flowControl` section of an EndpointPickerConfig
 * (epp-spec §4.1, §6.4). Errors name the source, the field and the fix.
 */
import { EppConfigError } from '../../framework/errors.ts';
import {
  isFairnessPolicy,
  isOrderingPolicy,
  isUsageLimitPolicy,
  type FairnessPolicy,
  type OrderingPolicy,
  type UsageLimitPolicy,
} from '../../framework/flowcontrol.ts';
import type { Plugin } from '../../framework/plugin.ts';
import { parseGoDuration } from '../../util/duration.ts';
import { DEFAULT_BAND_MAX_BYTES, type BandConfig, type FlowControlConfig } from './controller.ts';

/** Plugins instantiated by default for flow control (upstream adds them whatever the gates). */
export const DEFAULT_ORDERING_POLICY = 'fcfs-ordering-policy';
export const DEFAULT_FAIRNESS_POLICY = 'global-strict-fairness-policy';
export const DEFAULT_USAGE_LIMIT_POLICY = 'static-usage-limit-policy';

type Quantity = number | string;

interface BandSection {
  readonly priority?: number;
  readonly maxBytes?: Quantity;
  readonly maxRequests?: Quantity;
  readonly fairnessPolicyRef?: string;
  readonly orderingPolicyRef?: string;
}

export interface FlowControlSection {
  readonly maxBytes?: Quantity;
  readonly maxRequests?: Quantity;
  readonly defaultRequestTTL?: string;
  readonly defaultPriorityBand?: BandSection;
  readonly priorityBands?: readonly BandSection[];
  readonly usageLimitPolicyPluginRef?: string;
}

const SUFFIX: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** Parses a Kubernetes resource quantity (`100`, `1.5Gi`, `500M`, `1e3`) to a number, rounded up. */
export function parseQuantity(value: Quantity): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`invalid quantity ${value}`);
    return Math.ceil(value);
  }
  const m = /^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?\s*$/.exec(value);
  if (m === null) throw new Error(`invalid quantity '${value}' (expected e.g. 100, 512Mi, 1G)`);
  return Math.ceil(Number(m[1]) * (SUFFIX[m[2] ?? ''] as number));
}

export function buildFlowControlConfig(
  section: FlowControlSection | null | undefined,
  lookup: (name: string) => Plugin | undefined,
  origin: string,
): FlowControlConfig {
  const s = section ?? {};
  const fail = (field: string, problem: string, fix: string): never => {
    throw new EppConfigError(`${origin}: flowControl.${field}: ${problem}`, fix);
  };
  const quantity = (field: string, v: Quantity | undefined): number => {
    if (v === undefined) return 0;
    let n: number;
    try {
      n = parseQuantity(v);
    } catch (err) {
      return fail(field, (err as Error).message, 'use a non-negative quantity, e.g. 100 or 512Mi');
    }
    if (n < 0) fail(field, `must not be negative, got ${String(v)}`, 'use 0 (unlimited) or a positive quantity');
    return n;
  };
  const ordering = (field: string, ref: string | undefined): OrderingPolicy => {
    const name = ref || DEFAULT_ORDERING_POLICY;
    const p = lookup(name);
    if (p === undefined) return fail(field, `no ordering policy registered for name '${name}'`, 'define the plugin under plugins[] (e.g. type edf-ordering-policy)');
    if (!isOrderingPolicy(p)) return fail(field, `plugin '${name}' is not a flowcontrol.OrderingPolicy`, 'reference an ordering policy (fcfs-ordering-policy, edf-ordering-policy, slo-deadline-ordering-policy)');
    return p;
  };
  const fairness = (field: string, ref: string | undefined): FairnessPolicy => {
    const name = ref || DEFAULT_FAIRNESS_POLICY;
    const p = lookup(name);
    if (p === undefined) return fail(field, `no fairness policy registered for name '${name}'`, 'define the plugin under plugins[] (e.g. type round-robin-fairness-policy)');
    if (!isFairnessPolicy(p)) return fail(field, `plugin '${name}' is not a flowcontrol.FairnessPolicy`, 'reference a fairness policy (global-strict-fairness-policy, round-robin-fairness-policy)');
    return p;
  };

  let ttl = 0;
  if (s.defaultRequestTTL !== undefined && s.defaultRequestTTL !== '') {
    try {
      ttl = parseGoDuration(s.defaultRequestTTL);
    } catch (err) {
      fail('defaultRequestTTL', (err as Error).message, 'use a Go duration, e.g. 30s');
    }
    if (ttl < 0) fail('defaultRequestTTL', `must not be negative, got ${s.defaultRequestTTL}`, 'use 0 (no TTL) or a positive duration');
  }

  const d = s.defaultPriorityBand ?? {};
  const defaultBand = {
    maxBytes: quantity('defaultPriorityBand.maxBytes', d.maxBytes) || DEFAULT_BAND_MAX_BYTES,
    maxRequests: quantity('defaultPriorityBand.maxRequests', d.maxRequests),
    fairness: fairness('defaultPriorityBand.fairnessPolicyRef', d.fairnessPolicyRef),
    ordering: ordering('defaultPriorityBand.orderingPolicyRef', d.orderingPolicyRef),
  };

  const seen = new Set<number>();
  const bands: BandConfig[] = (s.priorityBands ?? []).map((b, i) => {
    const priority = b.priority ?? 0;
    if (seen.has(priority)) fail(`priorityBands[${i}].priority`, `duplicate priority level ${priority}`, 'declare each priority once');
    seen.add(priority);
    return {
      priority,
      maxBytes: quantity(`priorityBands[${i}].maxBytes`, b.maxBytes) || DEFAULT_BAND_MAX_BYTES,
      maxRequests: quantity(`priorityBands[${i}].maxRequests`, b.maxRequests),
      fairness: b.fairnessPolicyRef ? fairness(`priorityBands[${i}].fairnessPolicyRef`, b.fairnessPolicyRef) : defaultBand.fairness,
      ordering: b.orderingPolicyRef ? ordering(`priorityBands[${i}].orderingPolicyRef`, b.orderingPolicyRef) : defaultBand.ordering,
    };
  });

  const usageRef = s.usageLimitPolicyPluginRef || DEFAULT_USAGE_LIMIT_POLICY;
  const usage = lookup(usageRef);
  if (usage === undefined) fail('usageLimitPolicyPluginRef', `no usage limit policy registered for name '${usageRef}'`, 'define the plugin under plugins[] (type static-usage-limit-policy)');
  if (!isUsageLimitPolicy(usage as Plugin)) fail('usageLimitPolicyPluginRef', `plugin '${usageRef}' is not a flowcontrol.UsageLimitPolicy`, 'reference a usage limit policy');

  return {
    maxBytes: quantity('maxBytes', s.maxBytes),
    maxRequests: quantity('maxRequests', s.maxRequests),
    defaultRequestTtlMs: ttl,
    defaultBand,
    bands,
    usageLimit: usage as UsageLimitPolicy,
  };
}
