/**
 * The data layer's view of the fleet, as plugins see it.
 *
 * An `Endpoint` is one model-server port (upstream: one per pod × target port). Endpoints and their metrics
 * are immutable snapshots: the data layer never mutates one in place, it swaps in a new object
 * (copy-on-write), so a scheduling cycle that holds a snapshot never sees a half-updated endpoint.
 */

/**
 * Endpoint labels giving an endpoint's KV-cache event addresses: read by `precise-prefix-cache-producer`
 * (docs/precise-prefix.md), written into endpoints files by `epp demo` and the routing benchmark. Ports are valid
 * Kubernetes label values (on the pod); full `tcp://host:port` addresses are not (endpoints files only).
 */
export const KV_EVENTS_LABELS = Object.freeze({
  port: 'endpoint-picker.io/kv-events-port',
  replayPort: 'endpoint-picker.io/kv-events-replay-port',
  endpoint: 'endpoint-picker.io/kv-events-endpoint',
  replayEndpoint: 'endpoint-picker.io/kv-events-replay-endpoint',
});

/** An endpoints-file entry's labels for a server's KV-event PUB and (when it has one) replay ROUTER addresses. */
export function kvEventsLabels(server: { readonly kvEventsEndpoint: string; readonly kvEventsReplayEndpoint?: string }): Record<string, string> {
  const labels: Record<string, string> = { [KV_EVENTS_LABELS.endpoint]: server.kvEventsEndpoint };
  if (server.kvEventsReplayEndpoint) labels[KV_EVENTS_LABELS.replayEndpoint] = server.kvEventsReplayEndpoint;
  return labels;
}

/** Where an endpoint lives and how it was discovered. Immutable. */
export interface EndpointMetadata {
  /** Unique endpoint name: `<pod>-rank-<i>` in Kubernetes modes, `<address>:<port>` for static endpoints. */
  readonly name: string;
  readonly namespace: string;
  /** Pod (or host) name; several endpoints share it when a pod serves several target ports. */
  readonly podName: string;
  /** IP address (or host name) to route to. */
  readonly address: string;
  readonly port: number;
  /** `host:port` the metrics are scraped from. */
  readonly metricsHost: string;
  /**
   * Per-endpoint metrics path (from an endpoints file) overriding the data source's `path` parameter.
   * Undefined in the other discovery modes.
   */
  readonly metricsPath?: string;
  /** Pod labels (or labels from an endpoints file), e.g. `inference.networking.k8s.io/engine-type: vllm`. */
  readonly labels: Readonly<Record<string, string>>;
}

/** Model-server metrics as scraped (upstream `Metrics`, epp-spec §5.5). Immutable. */
export interface EndpointMetrics {
  /** LoRA adapters currently loaded and running (name → count/flag). */
  readonly activeModels: ReadonlyMap<string, number>;
  /** LoRA adapters requested but waiting for a slot. */
  readonly waitingModels: ReadonlyMap<string, number>;
  /** LoRA slots (`max_lora`). 0 when unknown. */
  readonly maxActiveModels: number;
  readonly runningRequestsSize: number;
  readonly waitingQueueSize: number;
  /** KV-cache utilisation, expected in [0, 1]. */
  readonly kvCacheUsagePercent: number;
  readonly kvCacheMaxTokenCapacity: number;
  /** Tokens per KV block (from cache-config info); 0 when unknown. */
  readonly cacheBlockSize: number;
  /** Number of KV blocks; 0 when unknown. */
  readonly cacheNumBlocks: number;
  /** When the last successful extraction landed (ms since epoch); 0 = never scraped (always stale). */
  readonly updateTime: number;
}

export const EMPTY_METRICS: EndpointMetrics = Object.freeze({
  activeModels: new Map<string, number>(),
  waitingModels: new Map<string, number>(),
  maxActiveModels: 0,
  runningRequestsSize: 0,
  waitingQueueSize: 0,
  kvCacheUsagePercent: 0,
  kvCacheMaxTokenCapacity: 0,
  cacheBlockSize: 0,
  cacheNumBlocks: 0,
  updateTime: 0,
});

/** One endpoint as scheduling sees it. Immutable; replaced as a whole when metadata or metrics change. */
export interface Endpoint {
  readonly metadata: EndpointMetadata;
  readonly metrics: EndpointMetrics;
  /** `address:port` as sent to the proxy (IPv6 addresses bracketed). */
  readonly hostPort: string;
}

/** Formats `address:port`, bracketing IPv6 literals (Go's `net.JoinHostPort`). */
export function joinHostPort(address: string, port: number): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** The pool of endpoints, as the director reads it. Implemented by the data layer. */
export interface EndpointStore {
  /** The current endpoints. O(1); the array and its elements are immutable snapshots. */
  endpoints(): readonly Endpoint[];
  /** True once the pool is known (static list given, file loaded, InferencePool reconciled). Drives readiness. */
  poolKnown(): boolean;
}
