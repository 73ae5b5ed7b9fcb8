/**
 * Built-in engine mappings (epp-spec §5.3). Metric names are the engines' own; the table is upstream's plus a
 * `tgi` entry that upstream lacks.
 */

/** One `engineConfigs[]` entry, as written in the config (all specs optional; empty = disabled). */
export interface EngineConfig {
  readonly name: string;
  readonly queuedRequestsSpec?: string;
  readonly runningRequestsSpec?: string;
  readonly kvUsageSpec?: string;
  readonly loraSpec?: string;
  /** Info-style gauge whose labels carry the cache geometry. */
  readonly cacheInfoSpec?: string;
  /** Label of `cacheInfoSpec` holding the block size; default `block_size`. */
  readonly cacheBlockSizeLabelName?: string;
  /** Label of `cacheInfoSpec` holding the number of blocks; default `num_gpu_blocks`. */
  readonly cacheNumBlocksLabelName?: string;
  /** Gauge whose value is the block size (alternative to `cacheInfoSpec`). */
  readonly cacheBlockSizeSpec?: string;
  /** Gauge whose value is the number of blocks (alternative to `cacheInfoSpec`). */
  readonly cacheNumBlocksSpec?: string;
}

export const DEFAULT_ENGINE_LABEL_KEY = 'inference.networking.k8s.io/engine-type';
export const DEFAULT_ENGINE = 'vllm';
/** Reserved name: upstream registers the default engine's mapping under it. */
export const RESERVED_ENGINE_NAME = 'default';
export const DEFAULT_CACHE_BLOCK_SIZE_LABEL = 'block_size';
export const DEFAULT_CACHE_NUM_BLOCKS_LABEL = 'num_gpu_blocks';

export const BUILTIN_ENGINES: readonly EngineConfig[] = [
  {
    name: 'vllm',
    queuedRequestsSpec: 'vllm:num_requests_waiting',
    runningRequestsSpec: 'vllm:num_requests_running',
    kvUsageSpec: 'vllm:kv_cache_usage_perc',
    loraSpec: 'vllm:lora_requests_info',
    cacheInfoSpec: 'vllm:cache_config_info',
  },
  {
    name: 'sglang',
    queuedRequestsSpec: 'sglang:num_queue_reqs',
    runningRequestsSpec: 'sglang:num_running_reqs',
    kvUsageSpec: 'sglang:token_usage',
    cacheInfoSpec: 'sglang:cache_config_info',
    cacheBlockSizeLabelName: 'page_size',
    cacheNumBlocksLabelName: 'num_pages',
  },
  {
    name: 'trtllm-serve',
    queuedRequestsSpec: 'trtllm_num_requests_waiting',
    runningRequestsSpec: 'trtllm_num_requests_running',
    kvUsageSpec: 'trtllm_kv_cache_utilization',
    cacheBlockSizeSpec: 'trtllm_kv_cache_tokens_per_block',
    cacheNumBlocksSpec: 'trtllm_kv_cache_max_blocks',
  },
  {
    name: 'triton-tensorrt-llm',
    queuedRequestsSpec: 'nv_trt_llm_request_metrics{request_type=waiting}',
    runningRequestsSpec: 'nv_trt_llm_request_metrics{request_type=scheduled}',
    kvUsageSpec: 'nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=fraction}',
    cacheBlockSizeSpec: 'nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=tokens_per}',
    cacheNumBlocksSpec: 'nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=max}',
  },
  {
    // Hugging Face text-generation-inference. TGI exports no KV-cache utilisation, LoRA or cache-geometry
    // metrics, so those stay disabled: a kv-cache scorer sees 0 for TGI endpoints and should not be weighted
    // for TGI-only pools. `tgi_batch_current_size` is the number of requests in the running batch.
    name: 'tgi',
    queuedRequestsSpec: 'tgi_queue_size',
    runningRequestsSpec: 'tgi_batch_current_size',
  },
];
