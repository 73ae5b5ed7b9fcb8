/**
 * `single-profile-handler`: runs the one configured scheduling profile and makes it primary (epp-spec §3.1).
 * The config loader rejects this handler with more than one profile; `processResults` re-checks it.
 */
import { z } from 'zod';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import type { InferenceRequest } from '../../../../framework/request.ts';
import type {
  CycleState,
  ProfileHandler,
  ProfileRunResult,
  SchedulingProfile,
  SchedulingResult,
} from '../../../../framework/scheduling.ts';

export const SINGLE_PROFILE_HANDLER_TYPE = 'single-profile-handler';

const parametersSchema = z.strictObject({});

export class SingleProfileHandler implements ProfileHandler {
  readonly typedName: TypedName;

  constructor(name: string = SINGLE_PROFILE_HANDLER_TYPE) {
    this.typedName = { type: SINGLE_PROFILE_HANDLER_TYPE, name };
  }

  /** Every profile that has no result yet; nothing once each has run (one iteration in practice). */
  pickProfiles(
    _cycle: CycleState,
    _request: InferenceRequest,
    profiles: ReadonlyMap<string, SchedulingProfile>,
    resultsSoFar: ReadonlyMap<string, ProfileRunResult | null>,
  ): readonly SchedulingProfile[] {
    if (resultsSoFar.size === 0) return [...profiles.values()];
    const pending: SchedulingProfile[] = [];
    for (const [name, profile] of profiles) if (!resultsSoFar.has(name)) pending.push(profile);
    return pending;
  }

  processResults(
    _cycle: CycleState,
    _request: InferenceRequest,
    results: ReadonlyMap<string, ProfileRunResult | null>,
  ): SchedulingResult {
    if (results.size !== 1) {
      throw new Error(
        'single profile handler is intended to be used with a single profile, failed to process multiple profiles',
      );
    }
    const [name, result] = results.entries().next().value as [string, ProfileRunResult | null];
    if (result === null) throw new Error(`failed to run scheduler profile '${name}'`);
    return { profileResults: results, primaryProfileName: name };
  }
}

export const singleProfileHandlerFactory: PluginFactory = (name, parameters) => {
  const handler = new SingleProfileHandler(name);
  parsePluginParameters(handler.typedName, parametersSchema, parameters);
  return handler;
};
