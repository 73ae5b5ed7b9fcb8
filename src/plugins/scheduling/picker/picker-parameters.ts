/**
 * The parameter every picker takes (epp-spec §3.2): `maxNumOfEndpoints`, how many targets to return — the
 * primary first, then fallbacks for proxy retries. Default 1. A value ≤ 0 means 1, as upstream (with a warning).
 */
import { z } from 'zod';
import { orDefaultWhenNotPositive } from '../../../framework/params.ts';

export const DEFAULT_MAX_NUM_OF_ENDPOINTS = 1;

export const pickerParametersSchema = z.strictObject({
  maxNumOfEndpoints: orDefaultWhenNotPositive(
    'maxNumOfEndpoints',
    DEFAULT_MAX_NUM_OF_ENDPOINTS,
    z.number({ error: 'expected an integer >= 1' }).int('expected an integer >= 1').default(DEFAULT_MAX_NUM_OF_ENDPOINTS),
  ),
});
