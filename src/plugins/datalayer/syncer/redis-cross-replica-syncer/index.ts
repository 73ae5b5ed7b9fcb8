/**
 * `redis-cross-replica-syncer`: the settings of cross-replica sync over Redis, referenced from
 * `dataLayer.crossReplicaSyncerPluginRef` (llm-d's field) or `dataLayer.crossReplica.syncerPluginRef`. The
 * plugin validates and holds its parameters; the server builds the sync engine and the Redis transport from
 * them once every plugin exists (src/datalayer/sync/). See docs/replicas.md.
 */
import { z } from 'zod';
import { EppConfigError } from '../../../../framework/errors.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';
import type { CrossReplicaSyncer } from '../../../../framework/replication.ts';

export const REDIS_CROSS_REPLICA_SYNCER_TYPE = 'redis-cross-replica-syncer';

const int = (what: string, min: number, max: number) =>
  z
    .number({ error: `expected an integer (${what})` })
    .int(`expected an integer (${what})`)
    .min(min, `must be >= ${min} (${what})`)
    .max(max, `must be <= ${max} (${what})`);

const endpoint = z.strictObject({
  host: z.string({ error: 'expected a host name' }).min(1, 'expected a host name'),
  port: int('TCP port', 1, 65535).default(26379),
});

const parametersSchema = z
  .strictObject({
    /** `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS). Exclusive with `sentinels`. */
    url: z
      .string({ error: 'expected a redis:// or rediss:// URL' })
      .regex(/^rediss?:\/\/[^\s]+$/, 'expected a redis:// or rediss:// URL, e.g. redis://redis.inference.svc:6379')
      .optional(),
    /** Redis Sentinel: the sentinels to ask, and the monitored master's `name`. */
    sentinels: z.array(endpoint).min(1, 'list at least one sentinel').optional(),
    name: z.string().min(1, 'must not be empty').optional(),
    /** ACL user and password; `passwordEnv` names an environment variable holding the password instead. */
    username: z.string().min(1, 'must not be empty').optional(),
    password: z.string().optional(),
    passwordEnv: z.string().min(1, 'must not be empty').optional(),
    sentinelPassword: z.string().optional(),
    /** TLS (also implied by `rediss://`): a CA bundle file, and an opt-out of verification (test only). */
    tls: z
      .strictObject({
        caFile: z.string().min(1).optional(),
        serverName: z.string().min(1).optional(),
        insecureSkipVerify: z.boolean({ error: 'expected a boolean' }).default(false),
      })
      .optional(),
    db: int('database number', 0, 15).default(0),
    /** Key prefix; keys are `<prefix>:{<namespace>/<pool>}:sync|snap:*`. */
    keyPrefix: z.string().min(1, 'must not be empty').regex(/^[^\s{}]+$/, 'no spaces or braces').default('epp'),
    /** The replica's name in the log (default $POD_NAME, else the host name). */
    replicaName: z.string().min(1).max(200).optional(),
    batchMs: int('ms', 1, 1000).default(5),
    maxBatchBytes: int('bytes', 1024, 16 * 1024 * 1024).default(256 * 1024),
    coalesceMs: int('ms; 0 = off', 0, 60_000).default(1000),
    retentionSeconds: int('seconds', 5, 3600).default(30),
    snapshotIntervalSeconds: int('seconds', 1, 3600).default(10),
    loadStaleMs: int('ms', 10, 60_000).default(500),
    warmupTimeoutMs: int('ms', 0, 120_000).default(5000),
    maxQueueBytes: int('bytes', 64 * 1024, 1024 * 1024 * 1024).default(8 * 1024 * 1024),
    readBlockMs: int('ms', 10, 10_000).default(1000),
    commandTimeoutMs: int('ms', 10, 60_000).default(1000),
    maxLagMs: int('ms', 100, 600_000).default(2000),
  })
  .superRefine((p, ctx) => {
    if ((p.url === undefined) === (p.sentinels === undefined)) {
      ctx.addIssue({ code: 'custom', path: p.url === undefined ? ['url'] : ['sentinels'], message: 'set exactly one of url (redis:// or rediss://) and sentinels' });
    }
    if (p.sentinels !== undefined && p.name === undefined) ctx.addIssue({ code: 'custom', path: ['name'], message: 'is required with sentinels (the monitored master name)' });
    if (p.password !== undefined && p.passwordEnv !== undefined) ctx.addIssue({ code: 'custom', path: ['passwordEnv'], message: 'set password or passwordEnv, not both' });
    if (p.loadStaleMs <= p.batchMs) ctx.addIssue({ code: 'custom', path: ['loadStaleMs'], message: 'must exceed batchMs' });
  });

export type RedisSyncerParameters = z.infer<typeof parametersSchema>;

export class RedisCrossReplicaSyncer implements CrossReplicaSyncer {
  readonly isCrossReplicaSyncer = true as const;
  readonly typedName: TypedName;
  readonly parameters: Readonly<RedisSyncerParameters>;
  constructor(name: string, parameters: RedisSyncerParameters) {
    this.typedName = { type: REDIS_CROSS_REPLICA_SYNCER_TYPE, name };
    this.parameters = Object.freeze({ ...parameters });
  }
  /** The password to use: `password`, else `$<passwordEnv>`, else the URL's (undefined here). */
  password(env: NodeJS.ProcessEnv = process.env): string | undefined {
    if (this.parameters.password !== undefined) return this.parameters.password;
    if (this.parameters.passwordEnv === undefined) return undefined;
    const v = env[this.parameters.passwordEnv];
    if (v === undefined) {
      throw new EppConfigError(
        `plugin '${this.typedName.name}' (type: ${REDIS_CROSS_REPLICA_SYNCER_TYPE}): parameters.passwordEnv: environment variable ${this.parameters.passwordEnv} is not set`,
        'set the variable (e.g. from a Kubernetes Secret) or remove passwordEnv',
      );
    }
    return v;
  }
}

export const redisCrossReplicaSyncerFactory: PluginFactory = (name, parameters) => {
  const typedName = { type: REDIS_CROSS_REPLICA_SYNCER_TYPE, name };
  const syncer = new RedisCrossReplicaSyncer(name, parsePluginParameters(typedName, parametersSchema, parameters));
  syncer.password(); // a missing passwordEnv variable fails at load, not at first connect
  return syncer;
};
