// A small version of inference-perf's `shared_prefix` data generator (sim-spec §7.2) for sweeps and tests:
// `groups` random system prompts, each followed by `promptsPerGroup` random questions, shuffled with a seed.
// With the chars4 tokenizer N tokens are 4N ASCII characters, and the system prompt ends on a block boundary
// when its token count is a multiple of 16.

import { SeededRandom } from './rng.ts';

export interface SharedPrefixSpec {
  readonly groups: number;
  readonly promptsPerGroup: number;
  readonly systemPromptTokens: number;
  readonly questionTokens: number;
  readonly seed: number;
  /** `shuffled` (inference-perf) or `group-major` (a group's prompts back to back). */
  readonly order?: 'shuffled' | 'group-major';
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz     ';

function randomText(rng: SeededRandom, chars: number): string {
  let out = '';
  for (let i = 0; i < chars; i++) out += ALPHABET[rng.int(ALPHABET.length)];
  return out;
}

/** Prompt texts in request order; each prompt is `systemPrompt + question` (4 chars per token). */
export function sharedPrefixPrompts(spec: SharedPrefixSpec): { prompts: string[]; groupOf: number[] } {
  const rng = new SeededRandom(spec.seed);
  const items: { text: string; group: number }[] = [];
  for (let g = 0; g < spec.groups; g++) {
    const system = randomText(rng, spec.systemPromptTokens * 4);
    for (let p = 0; p < spec.promptsPerGroup; p++) items.push({ text: system + randomText(rng, spec.questionTokens * 4), group: g });
  }
  if ((spec.order ?? 'shuffled') === 'shuffled') {
    for (let i = items.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [items[i], items[j]] = [items[j] as { text: string; group: number }, items[i] as { text: string; group: number }];
    }
  }
  return { prompts: items.map((i) => i.text), groupOf: items.map((i) => i.group) };
}
