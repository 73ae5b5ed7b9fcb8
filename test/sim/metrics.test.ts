// Acceptance check 6 of sim-spec §6.5: /metrics parses as Prometheus text, EPP gauges exist from start-up.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VirtualClock } from '../../src/sim/clock.ts';
import { SimServer } from '../../src/sim/sim-server.ts';
import { buckets125 } from '../../src/sim/metrics/histogram.ts';
import { parsePrometheusText, sampleValue, submit, textOfTokens, virtualServer } from './helpers.ts';

const EPP_GAUGES = ['vllm:num_requests_waiting', 'vllm:num_requests_running', 'vllm:kv_cache_usage_perc', 'vllm:lora_requests_info', 'vllm:cache_config_info'];

describe('/metrics exposition', () => {
  it('parses strictly and has the EPP gauges before any request', () => {
    const { server } = virtualServer();
    const families = parsePrometheusText(server.metrics.render());
    for (const name of EPP_GAUGES) assert.equal(families.get(name)?.type, 'gauge', name);
    assert.equal(sampleValue(families, 'vllm:num_requests_waiting', { model_name: server.baseModel, engine: '0' }), 0);
    assert.equal(sampleValue(families, 'vllm:cache_config_info', { block_size: '16', num_gpu_blocks: '2048' }), 1);
    assert.equal(sampleValue(families, 'vllm:lora_requests_info', { max_lora: '1', running_lora_adapters: '', waiting_lora_adapters: '' }), 1_767_225_600);
    assert.equal(families.get('vllm:request_success_total')?.type, 'counter');
  });

  it('reflects traffic: counters, histograms, gauges and LoRA series', () => {
    const { clock, server } = virtualServer({ loras: { tuned: '/t' } });
    const prompt = textOfTokens(512, 'm');
    submit(server, prompt, 10);
    clock.runUntilIdle();
    submit(server, prompt, 10, { model: 'tuned' });
    clock.advanceBy(20);
    let families = parsePrometheusText(server.metrics.render());
    assert.equal(sampleValue(families, 'vllm:num_requests_running'), 1);
    const lora = families.get('vllm:lora_requests_info')?.samples ?? [];
    const newest = lora.reduce((a, b) => (b.value > a.value ? b : a));
    assert.equal(newest.labels['running_lora_adapters'], 'tuned');
    clock.runUntilIdle();
    families = parsePrometheusText(server.metrics.render());
    assert.equal(sampleValue(families, 'vllm:request_success_total', { finished_reason: 'length' }), 2);
    assert.equal(sampleValue(families, 'vllm:generation_tokens_total'), 20);
    assert.equal(sampleValue(families, 'vllm:prompt_tokens_total'), 1024);
    assert.equal(sampleValue(families, 'vllm:prefix_cache_queries_total'), 1024);
    assert.equal(sampleValue(families, 'vllm:time_to_first_token_seconds', {}, 'vllm:time_to_first_token_seconds_count'), 2);
    assert.equal(sampleValue(families, 'vllm:inter_token_latency_seconds', {}, 'vllm:inter_token_latency_seconds_count'), 18);
    assert.equal(sampleValue(families, 'vllm:request_prompt_tokens', { le: '1000' }, 'vllm:request_prompt_tokens_bucket'), 2);
    assert.equal(sampleValue(families, 'vllm:request_prompt_tokens', { le: '500' }, 'vllm:request_prompt_tokens_bucket'), 0);
    assert.equal(sampleValue(families, 'vllm:kv_cache_usage_perc'), 0);
  });

  it('reuses histogram text within metrics-cache, but gauges are live', () => {
    let realMs = 0;
    const clock = new VirtualClock();
    const server = new SimServer({ id: 's', clock, options: { stepJitter: 0, metricsCacheMs: 1000 }, realNowMs: () => realMs });
    const countOf = () => sampleValue(parsePrometheusText(server.metrics.render()), 'vllm:e2e_request_latency_seconds', {}, 'vllm:e2e_request_latency_seconds_count');
    assert.equal(countOf(), 0);
    const t = submit(server, textOfTokens(64, 'c'), 3);
    clock.runUntilIdle();
    assert.equal(t.finishReason, 'length');
    assert.equal(countOf(), 0, 'cached histogram text');
    assert.equal(sampleValue(parsePrometheusText(server.metrics.render()), 'vllm:generation_tokens_total'), 3, 'counters are live');
    realMs = 1000;
    assert.equal(countOf(), 1);
  });

  it('sglang names for the picker gauges', () => {
    const { server } = virtualServer({ metricsFlavor: 'sglang' });
    const families = parsePrometheusText(server.metrics.render());
    for (const name of ['sglang:num_queue_reqs', 'sglang:num_running_reqs', 'sglang:token_usage', 'sglang:cache_config_info']) {
      assert.equal(families.get(name)?.type, 'gauge', name);
    }
    assert.equal(sampleValue(families, 'sglang:cache_config_info', { page_size: '16', num_pages: '2048' }), 1);
    assert.equal([...families.keys()].some((k) => k.startsWith('vllm:')), false);
  });

  it('metrics-num-gpu-blocks false: the cache-config metric keeps its block size and loses its block count', () => {
    const vllm = parsePrometheusText(virtualServer({ metricsNumGpuBlocks: false }).server.metrics.render());
    const info = vllm.get('vllm:cache_config_info')?.samples ?? [];
    assert.equal(info.length, 1);
    assert.equal(info[0]?.labels['block_size'], '16');
    assert.equal('num_gpu_blocks' in (info[0]?.labels ?? {}), false);
    const sglang = parsePrometheusText(virtualServer({ metricsFlavor: 'sglang', metricsNumGpuBlocks: false }).server.metrics.render());
    const pages = sglang.get('sglang:cache_config_info')?.samples ?? [];
    assert.equal(pages[0]?.labels['page_size'], '16');
    assert.equal('num_pages' in (pages[0]?.labels ?? {}), false);
    assert.equal(sglang.has('sglang:max_total_num_tokens'), false, 'the token capacity would give the count away');
  });

  it('1-2-5 buckets as vLLM builds them', () => {
    assert.deepEqual(buckets125(100), [1, 2, 5, 10, 20, 50, 100]);
    assert.deepEqual(buckets125(16384).slice(-3), [2000, 5000, 10000]);
  });

  it('the test parser rejects malformed text', () => {
    assert.throws(() => parsePrometheusText('x 1\n'), /no preceding TYPE/);
    assert.throws(() => parsePrometheusText('# TYPE x gauge\nx{a="1} 1\n'), /unterminated/);
    assert.throws(() => parsePrometheusText('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'), /cumulative/);
    assert.throws(() => parsePrometheusText('# TYPE x gauge\nx 1\nx 2\n'), /duplicate/);
  });
});
