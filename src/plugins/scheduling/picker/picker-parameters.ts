/**
 * The parameter every picker takes (epp-spec §3.2): `maxNumOfEndpoints`, how many targets to return — the
 * primary first, then fallbacks for proxy retries. Default 1. Upstream silently turns ≤ 0 into 1; we reject it.
 */
import { z } from 'zod';

export const DEFAULT_MAX_NUM_OF_ENDPOINTS = 1;

export const pickerParametersSchema = z.strictObject({
  maxNumOfEndpoints: z
    .number({ error: 'expected an integer >= 1' })
    .int('expected an integer >= 1')
    .min(1, 'expected an integer >= 1')
    .default(DEFAULT_MAX_NUM_OF_ENDPOINTS),
});
