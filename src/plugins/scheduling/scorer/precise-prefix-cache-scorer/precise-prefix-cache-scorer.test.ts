import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { PrefixCacheMatchInfoKey, TokenizedPromptKey } from '../../../../framework/attributes.ts';
import { factoryError, makeCandidate, makeEndpoint, makeHandle, makeRequest } from '../../../../../test/support/plugin-fixtures.ts';
import { PRECISE_PREFIX_CACHE_SCORER_TYPE, PrecisePrefixCacheScorer, precisePrefixCacheScorerFactory, precisePrefixScorerSettings } from './index.ts';

interface Want {
  blockSize: number;
  speculative: { enabled: boolean; ttlMs: number };
  socketPort: number;
  topicFilter: string;
  bindAddress: string | undefined;
  ignored: string[];
}
const DEFAULTS: Want = { blockSize: 16, speculative: { enabled: true, ttlMs: 2000 }, socketPort: 5557, topicFilter: 'kv@', bindAddress: undefined, ignored: [] };

describe('precise-prefix-cache-scorer: llm-d parameters → the precise producer', () => {
  const cases: ReadonlyArray<{ name: string; params: unknown; want: Partial<Want> }> = [
    { name: 'no parameters: producer defaults, dial every endpoint at 5557', params: undefined, want: {} },
    { name: 'tokenProcessorConfig.blockSize', params: { tokenProcessorConfig: { blockSize: 64 } }, want: { blockSize: 64 } },
    { name: 'the older indexerConfig.tokenProcessorConfig.blockSize', params: { indexerConfig: { tokenProcessorConfig: { blockSize: 32 } } }, want: { blockSize: 32 } },
    { name: 'the same block size twice is fine', params: { blockSize: 64, tokenProcessorConfig: { blockSize: 64 } }, want: { blockSize: 64 } },
    {
      name: 'global socket mode: discoverPods false + zmqEndpoint binds',
      params: { kvEventsConfig: { zmqEndpoint: 'tcp://*:5557', topicFilter: 'kv', discoverPods: false } },
      want: { bindAddress: 'tcp://*:5557', topicFilter: 'kv' },
    },
    { name: 'zmqEndpoint without discoverPods binds too', params: { kvEventsConfig: { zmqEndpoint: 'tcp://0.0.0.0:6000' } }, want: { bindAddress: 'tcp://0.0.0.0:6000' } },
    {
      name: 'pod discovery: dial each endpoint at podDiscoveryConfig.socketPort',
      params: { kvEventsConfig: { discoverPods: true, podDiscoveryConfig: { socketPort: 5556, podLabelSelector: 'app=vllm' } } },
      want: { socketPort: 5556, ignored: ['kvEventsConfig.podDiscoveryConfig.podLabelSelector'] },
    },
    {
      name: 'pod discovery wins over zmqEndpoint (named as ignored)',
      params: { kvEventsConfig: { discoverPods: true, zmqEndpoint: 'tcp://*:5557' } },
      want: { ignored: ['kvEventsConfig.zmqEndpoint (discoverPods: true dials every endpoint instead)'] },
    },
    { name: 'speculativeIndexing false', params: { speculativeIndexing: false }, want: { speculative: { enabled: false, ttlMs: 2000 } } },
    { name: 'speculativeTTL in nanoseconds (Go time.Duration)', params: { speculativeIndexing: true, speculativeTTL: 5_000_000_000 }, want: { speculative: { enabled: true, ttlMs: 5000 } } },
    { name: 'speculativeTTL as a Go duration string', params: { speculativeTTL: '1.5s' }, want: { speculative: { enabled: true, ttlMs: 1500 } } },
    { name: 'speculativeTTL 0 → the default, as llm-d', params: { speculativeTTL: 0 }, want: {} },
    { name: 'indexerConfig.speculativeIndexing', params: { indexerConfig: { speculativeIndexing: false } }, want: { speculative: { enabled: false, ttlMs: 2000 } } },
    {
      name: 'hash seed, tokenizer pool, external index: accepted, named as ignored',
      params: {
        tokenProcessorConfig: { blockSize: 64, hashSeed: '42' },
        indexerConfig: { tokenizersPoolConfig: { modelName: 'Qwen/Qwen3-32B', uds: { socketFile: '/tmp/t.sock' } }, kvBlockIndexConfig: { valkeyConfig: { address: 'valkey://v:6379' } } },
        kvEventsConfig: { concurrency: 4, discoverPods: true },
      },
      want: { blockSize: 64, ignored: ['tokenProcessorConfig.hashSeed', 'indexerConfig.tokenizersPoolConfig', 'indexerConfig.kvBlockIndexConfig', 'kvEventsConfig.concurrency'] },
    },
    { name: "the producer's own parameters pass through", params: { events: { socketPort: 7000, replaySocketPort: 7001 } }, want: { socketPort: 7000 } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const s = precisePrefixScorerSettings('p', c.params);
      const want = { ...DEFAULTS, ...c.want };
      assert.deepEqual(
        { blockSize: s.producer.blockSize, speculative: s.producer.speculative, socketPort: s.producer.events.socketPort, topicFilter: s.producer.events.topicFilter, bindAddress: s.bindAddress, ignored: [...s.ignored] },
        want,
      );
    });
  }

  const rejections: ReadonlyArray<[string, unknown, RegExp]> = [
    ['conflicting block sizes', { blockSize: 16, tokenProcessorConfig: { blockSize: 64 } }, /parameters\.blockSize: conflicting block sizes \(tokenProcessorConfig\.blockSize: 64, blockSize: 16\)/],
    ['a zero block size', { tokenProcessorConfig: { blockSize: 0 } }, /parameters\.tokenProcessorConfig\.blockSize: expected a positive integer/],
    ['a malformed speculativeTTL', { speculativeTTL: 'soon' }, /parameters\.speculativeTTL: .*soon/],
    ['a zmqEndpoint that is no address', { kvEventsConfig: { zmqEndpoint: '*:5557' } }, /parameters\.kvEventsConfig: zmqEndpoint '\*:5557' is not a ZeroMQ address/],
    ['a bad socket port', { kvEventsConfig: { podDiscoveryConfig: { socketPort: 70000 } } }, /parameters\.kvEventsConfig\.podDiscoveryConfig\.socketPort: expected a TCP port/],
    ['a bad producer parameter', { desync: { fallback: 'guess' } }, /parameters\.desync\.fallback: expected approx or none/],
  ];
  for (const [name, params, re] of rejections) {
    it(`rejects ${name}`, () => assert.match(factoryError(() => precisePrefixCacheScorerFactory('p', params, makeHandle())), re));
  }
});

describe('precise-prefix-cache-scorer: plugin', () => {
  it('is a producer of the match (consuming token ids) and an affinity scorer of it', () => {
    const handle = makeHandle();
    const p = precisePrefixCacheScorerFactory('pp', { tokenProcessorConfig: { blockSize: 16, hashSeed: '42' } }, handle) as PrecisePrefixCacheScorer;
    try {
      assert.deepEqual(p.typedName, { type: PRECISE_PREFIX_CACHE_SCORER_TYPE, name: 'pp' });
      assert.deepEqual([p.produces, p.consumes, p.category], [[PrefixCacheMatchInfoKey], [TokenizedPromptKey], 'affinity']);
      const info = (matchBlocks: number) => ({ [PrefixCacheMatchInfoKey]: { matchBlocks, totalBlocks: 8, blockSizeTokens: 16 } });
      const candidates = [makeCandidate(makeEndpoint('a'), info(8)), makeCandidate(makeEndpoint('b'), info(2)), makeCandidate(makeEndpoint('c'), info(0))];
      assert.deepEqual(Array.from(p.score(new Map(), makeRequest(), candidates)), [1, 0.25, 0]);
      assert.equal(handle.logger.entries.filter((r) => r.level === 'warn').length, 1, 'one warning naming the ignored llm-d fields');
      assert.match(JSON.stringify(handle.logger.entries), /tokenProcessorConfig\.hashSeed/);
    } finally {
      p.close();
    }
  });

  it('closes its shared socket with the plugin', () => {
    const p = precisePrefixCacheScorerFactory('pp', { kvEventsConfig: { zmqEndpoint: 'tcp://127.0.0.1:1', discoverPods: false } }, makeHandle()) as PrecisePrefixCacheScorer;
    assert.ok(p.bound);
    p.close();
    assert.equal(p.bound.transportFor('10.0.0.1:8000').replay, undefined, 'no replay in global socket mode');
  });
});
