/**
 * `static-usage-limit-policy` (epp-spec §6.4): the same saturation ceiling for every priority band. A band
 * dispatches while the pool's saturation is below `threshold` (default 1.0, i.e. until saturated).
 */
import { z } from 'zod';
import type { UsageLimitPolicy } from '../../../../framework/flowcontrol.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';

export const STATIC_USAGE_LIMIT_POLICY_TYPE = 'static-usage-limit-policy';

const parametersSchema = z.strictObject({
  threshold: z.number({ error: 'threshold must be a number > 0' }).positive('threshold must be a number > 0').default(1),
});

export class StaticUsageLimitPolicy implements UsageLimitPolicy {
  readonly typedName: TypedName;
  readonly threshold: number;
  constructor(name: string = STATIC_USAGE_LIMIT_POLICY_TYPE, threshold = 1) {
    this.typedName = { type: STATIC_USAGE_LIMIT_POLICY_TYPE, name };
    this.threshold = threshold;
  }
  ceiling(_priority: number): number {
    return this.threshold;
  }
}

export const staticUsageLimitPolicyFactory: PluginFactory = (name, parameters) => {
  const p = parsePluginParameters({ type: STATIC_USAGE_LIMIT_POLICY_TYPE, name }, parametersSchema, parameters);
  return new StaticUsageLimitPolicy(name, p.threshold);
};
