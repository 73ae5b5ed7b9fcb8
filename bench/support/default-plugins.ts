/**
 * The plugins the micro-benchmarks (gateway, response path, flow control, ext_proc echo + routing) run by default:
 * upstream's scoring over the approximate index with a fallback endpoint (`approx-322`, what `epp-default` was
 * before it moved to the precise index). Their upstreams are fakes that publish no KV events, so precise routing
 * would only measure its fallback; keeping these plugins keeps the figures comparable across that switch.
 */
import { APPROX_322_WITH_FALLBACK_CONFIG_TEXT, CONFIG_PRESETS } from '../../src/config/presets.ts';

export const BENCH_DEFAULT_PLUGINS = 'approx-322';

/** Config text of `name`: `approx-322`, or a preset of src/config/presets.ts. Throws naming the known ones. */
export function benchConfigText(name: string): string {
  if (name === BENCH_DEFAULT_PLUGINS) return APPROX_322_WITH_FALLBACK_CONFIG_TEXT;
  const preset = CONFIG_PRESETS[name];
  if (preset === undefined) throw new Error(`unknown preset ${name}; one of ${[BENCH_DEFAULT_PLUGINS, ...Object.keys(CONFIG_PRESETS)].join(', ')}`);
  return preset;
}
