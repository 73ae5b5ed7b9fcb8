/**
 * `SyncTransport` over Redis (ioredis): one Stream per pool for batches, a hash per snapshot generation, a
 * string pointing at the current generation and a lease key. Two connections: a writer (appends, snapshots,
 * lease; fails fast: no offline queue, no retries, a command timeout) and a reader dedicated to `XREAD BLOCK`
 * (the engine's watchdog resets it when a blackholed link stops answering).
 *
 * Keys (all share the hash tag `{<namespace>/<pool>}`, so they live in one Cluster slot):
 *   <prefix>:{ns/pool}:sync          stream; fields `b` (the binary batch); trimmed by time with MINID ~
 *   <prefix>:{ns/pool}:snap:cur      string: the current snapshot generation
 *   <prefix>:{ns/pool}:snap:<gen>    hash: `_meta` (JSON) + one field per channel/endpoint; expires
 *   <prefix>:{ns/pool}:snap:lock     string: who writes snapshots (SET NX PX, renewed by its holder)
 */
import { readFileSync } from 'node:fs';
import { Command, Redis, type RedisOptions } from 'ioredis';
import { EppConfigError } from '../../framework/errors.ts';
import type { Logger } from '../../framework/plugin.ts';
import { compareIds } from './codec.ts';
import type { Snapshot, SnapshotMeta, StreamEntry, SyncTransport } from './transport.ts';

export interface RedisTransportOptions {
  /** `redis://…` / `rediss://…`; or `sentinels` + `name`. */
  readonly url?: string;
  readonly sentinels?: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  readonly name?: string;
  readonly username?: string;
  readonly password?: string;
  readonly sentinelPassword?: string;
  readonly tls?: { readonly caFile?: string; readonly serverName?: string; readonly insecureSkipVerify?: boolean };
  readonly db?: number;
  readonly keyPrefix: string;
  /** `<namespace>/<pool>`: the hash tag of every key. */
  readonly pool: string;
  readonly retentionMs: number;
  readonly snapshotIntervalMs: number;
  readonly commandTimeoutMs: number;
  readonly logger: Logger;
}

const LEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0`;

/**
 * A snapshot is written as HSETs of about this many bytes each, one after another, so no single write holds the
 * event loop long and the replica's own appends interleave with the snapshot. (With ioredis' copying encoder one
 * pipeline carrying a 250k-entry index, 2 MB, held the loop for 3–7 ms: bench:replicas-path --transport redis
 * --profile-stalls; the HSETs now go uncopied, `UncopiedCommand`, and each costs the kernel's copy into the socket.)
 * Fields are grouped up to that size (an endpoint of 31,250 blocks is a 250 kB field, so it goes alone).
 */
const SNAPSHOT_BYTES_PER_COMMAND = 256 * 1024;

/**
 * A command whose Buffer arguments reach the socket as they are. ioredis' `Command.toWritable` joins a command
 * that has a Buffer argument into one new buffer: for a snapshot, ≈ 2 MB of short-lived array buffers per write,
 * which V8 counts against the old generation's headroom, so a mark-compact (2–6 ms) followed about every other
 * snapshot (measured: bench:replicas-path --transport redis). This one corks the socket, writes the RESP framing
 * and the caller's buffers as separate chunks (Node passes them to the kernel in one writev, uncopied) and uncorks
 * on the next tick; ioredis writes the last piece it returns. `Command` is ioredis' public class for custom
 * commands and `toWritable` its documented override point (its own `Script` overrides it).
 *
 * Appends (XADD) go through it too (session 11): ioredis' copy of every batch was ≈ 1 MB/s of short-lived array
 * buffers per 1,000 placements/s published.
 *
 * Contract: the Buffer arguments must not change until the command settles, and after a failure (a timeout may
 * leave the bytes queued in the socket) not at all — the syncer then drops the field buffers instead of reusing
 * them. Replayed on a new socket after a reconnect, the command writes itself again the same way.
 */
export class UncopiedCommand extends Command {
  override toWritable(socket: object): string | Buffer {
    if (!isCorkable(socket)) return super.toWritable(socket);
    socket.cork();
    let framing = `*${this.args.length + 1}\r\n$${Buffer.byteLength(this.name)}\r\n${this.name}\r\n`;
    for (const arg of this.args) {
      if (Buffer.isBuffer(arg)) {
        if (arg.length === 0) {
          framing += '$0\r\n\r\n';
          continue;
        }
        socket.write(`${framing}$${arg.length}\r\n`);
        socket.write(arg);
        framing = '\r\n';
      } else {
        const text = String(arg);
        framing += `$${Buffer.byteLength(text)}\r\n${text}\r\n`;
      }
    }
    process.nextTick(() => socket.uncork());
    return framing;
  }
}

interface CorkableSocket {
  cork(): void;
  uncork(): void;
  write(chunk: string | Buffer): boolean;
}

function isCorkable(socket: object): socket is CorkableSocket {
  const s = socket as Partial<CorkableSocket>;
  return typeof s.cork === 'function' && typeof s.uncork === 'function' && typeof s.write === 'function';
}

/** Throws the first error of a pipeline's results. */
function firstError(results: Array<[Error | null, unknown]> | null): void {
  const failed = results?.find(([err]) => err !== null);
  if (failed) throw failed[0] as Error;
}

export class RedisTransport implements SyncTransport {
  readonly description: string;
  readonly #o: RedisTransportOptions;
  readonly #writer: Redis;
  readonly #reader: Redis;
  readonly #streamKey: string;
  readonly #snapPrefix: string;

  constructor(o: RedisTransportOptions) {
    this.#o = o;
    const tag = `{${o.pool}}`;
    this.#streamKey = `${o.keyPrefix}:${tag}:sync`;
    this.#snapPrefix = `${o.keyPrefix}:${tag}:snap`;
    this.description = o.url !== undefined ? redactUrl(o.url) : `sentinel:${o.name ?? ''}@${(o.sentinels ?? []).map((s) => `${s.host}:${s.port}`).join(',')}`;
    const base = this.#baseOptions();
    this.#writer = this.#connect({ ...base, commandTimeout: o.commandTimeoutMs, connectionName: 'epp-sync-writer' });
    this.#reader = this.#connect({ ...base, connectionName: 'epp-sync-reader' });
  }

  #baseOptions(): RedisOptions {
    const o = this.#o;
    let tls: RedisOptions['tls'];
    const wantsTls = o.url?.startsWith('rediss://') === true || o.tls !== undefined;
    if (wantsTls) {
      tls = {};
      if (o.tls?.caFile !== undefined) {
        try {
          tls.ca = readFileSync(o.tls.caFile);
        } catch (err) {
          throw new EppConfigError(`redis-cross-replica-syncer: tls.caFile ${o.tls.caFile}: ${(err as Error).message}`, 'check the path of the CA bundle');
        }
      }
      if (o.tls?.serverName !== undefined) tls.servername = o.tls.serverName;
      if (o.tls?.insecureSkipVerify === true) tls.rejectUnauthorized = false;
    }
    return {
      protocol: 2,
      lazyConnect: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      enableReadyCheck: true,
      connectTimeout: Math.max(1000, o.commandTimeoutMs),
      keepAlive: 5000,
      // Reconnect forever with capped backoff: Redis coming back must need no restart.
      retryStrategy: (times: number) => Math.min(100 * 2 ** Math.min(times, 10), 2000),
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
      ...(o.db !== undefined && o.db > 0 ? { db: o.db } : {}),
      ...(tls !== undefined ? { tls } : {}),
      ...(o.sentinels !== undefined
        ? {
            sentinels: o.sentinels.map((s) => ({ host: s.host, port: s.port })),
            name: o.name ?? 'mymaster',
            ...(o.sentinelPassword !== undefined ? { sentinelPassword: o.sentinelPassword } : {}),
            ...(tls !== undefined ? { enableTLSForSentinelMode: true } : {}),
          }
        : {}),
    };
  }

  #connect(options: RedisOptions): Redis {
    const client = this.#o.url !== undefined ? new Redis(this.#o.url, options) : new Redis(options);
    // Errors surface through the commands (and the engine's up/down log line); never crash, never log per retry.
    client.on('error', () => undefined);
    return client;
  }

  connect(): Promise<void> {
    const ready = (c: Redis): Promise<void> =>
      c.status === 'ready'
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const onReady = (): void => {
              c.off('error', onError);
              resolve();
            };
            const onError = (err: Error): void => {
              c.off('ready', onReady);
              reject(err);
            };
            c.once('ready', onReady);
            c.once('error', onError);
          });
    return Promise.all([ready(this.#writer), ready(this.#reader)]).then(() => undefined);
  }

  async append(payload: Uint8Array): Promise<string> {
    // Redis stream ids start with the Redis server's wall-clock ms, so retention is reckoned in wall-clock time.
    const minId = `${Math.max(0, Date.now() - this.#o.retentionMs)}`;
    // Uncopied (see `UncopiedCommand`): ioredis' encoder would copy every batch into a new buffer, ≈ 1 MB/s of
    // short-lived array buffers per 1,000 placements/s published, which V8 counts against the old generation's
    // headroom until the next scavenge. The payload is never changed after it is appended (SyncTransport.append).
    const id = (await this.#writer.sendCommand(new UncopiedCommand('xadd', [this.#streamKey, 'MINID', '~', minId, '*', 'b', Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)], { replyEncoding: 'utf8' }))) as string | null;
    return id ?? '0-0';
  }

  async read(afterId: string, count: number, blockMs: number): Promise<StreamEntry[]> {
    const args: Array<string | number> = ['COUNT', count];
    if (blockMs > 0) args.push('BLOCK', blockMs);
    args.push('STREAMS', this.#streamKey, afterId);
    const reply = (await this.#reader.callBuffer('XREAD', args)) as Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
    if (reply === null || reply.length === 0) return [];
    const out: StreamEntry[] = [];
    for (const [id, fields] of (reply[0] as [Buffer, Array<[Buffer, Buffer[]]>])[1]) {
      for (let i = 0; i + 1 < fields.length; i += 2) {
        if ((fields[i] as Buffer).toString() === 'b') {
          const v = fields[i + 1] as Buffer;
          out.push({ id: id.toString(), payload: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) });
          break;
        }
      }
    }
    return out;
  }

  async trimmedThrough(): Promise<string | undefined> {
    let info: unknown[];
    try {
      // On the reader's connection: the engine asks right after a read succeeded there.
      info = (await this.#reader.call('XINFO', 'STREAM', this.#streamKey)) as unknown[];
    } catch (err) {
      if (/no such key/i.test((err as Error).message)) return undefined;
      throw err;
    }
    const field = new Map<string, unknown>();
    for (let i = 0; i + 1 < info.length; i += 2) field.set(String(info[i]), info[i + 1]);
    // XDEL records max-deleted-entry-id; trimming (MINID/MAXLEN) does not (Redis 7.0), but it shows as
    // entries-added > length: everything before the first retained entry (or, when the stream is empty,
    // through the last generated id) is gone. Redis 6 reports neither: assume so whenever something is retained.
    let through: string | undefined;
    const maxDeleted = field.get('max-deleted-entry-id');
    if (maxDeleted !== undefined && String(maxDeleted) !== '0-0') through = String(maxDeleted);
    const added = field.get('entries-added');
    const length = Number(field.get('length') ?? 0);
    const deleted = added === undefined ? Infinity : Number(added) - length;
    if (deleted > 0) {
      const first = field.get('first-entry') as unknown[] | null | undefined;
      const candidate = first && first.length > 0 ? idBefore(String(first[0])) : added === undefined ? undefined : String(field.get('last-generated-id'));
      if (candidate !== undefined && (through === undefined || compareIds(candidate, through) > 0)) through = candidate;
    }
    return through;
  }

  async putSnapshot(s: Snapshot): Promise<void> {
    const gen = `${Math.floor(s.meta.createdAtMs)}-${s.meta.origin}`;
    const key = `${this.#snapPrefix}:${gen}`;
    const ttlMs = Math.max(3 * this.#o.snapshotIntervalMs, 120_000);
    // The key expires even when a write is cut short; readers see it only once `cur` names it, set last.
    await this.#writer.pipeline().del(key).hset(key, '_meta', JSON.stringify(s.meta)).pexpire(key, ttlMs).exec().then(firstError);
    let args: Array<string | Buffer> = [];
    let bytes = 0;
    for (const [f, v] of s.fields) {
      // Send what is gathered before a field would take it past the limit (a field larger than it goes alone).
      if (args.length > 0 && bytes + v.byteLength > SNAPSHOT_BYTES_PER_COMMAND) {
        await this.#hsetUncopied(key, args);
        args = [];
        bytes = 0;
      }
      args.push(f, Buffer.from(v.buffer, v.byteOffset, v.byteLength));
      bytes += v.byteLength;
    }
    if (args.length > 0) await this.#hsetUncopied(key, args);
    await this.#writer.set(`${this.#snapPrefix}:cur`, gen, 'PX', ttlMs);
  }

  /** HSET with the field buffers sent as they are (see `UncopiedCommand`); they stay unchanged until it settles. */
  async #hsetUncopied(key: string, fieldsAndValues: Array<string | Buffer>): Promise<void> {
    await this.#writer.sendCommand(new UncopiedCommand('hset', [key, ...fieldsAndValues]));
  }

  async getSnapshot(): Promise<Snapshot | undefined> {
    const gen = await this.#writer.get(`${this.#snapPrefix}:cur`);
    if (gen === null) return undefined;
    const raw = await this.#writer.hgetallBuffer(`${this.#snapPrefix}:${gen}`);
    const metaBuf = raw._meta;
    if (metaBuf === undefined) return undefined;
    let meta: SnapshotMeta;
    try {
      meta = JSON.parse(metaBuf.toString()) as SnapshotMeta;
    } catch {
      return undefined;
    }
    const fields = new Map<string, Uint8Array>();
    for (const [k, v] of Object.entries(raw)) if (k !== '_meta') fields.set(k, new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    return { meta, fields };
  }

  async tryLease(holder: string, ttlMs: number): Promise<boolean> {
    const r = await this.#writer.eval(LEASE_SCRIPT, 1, `${this.#snapPrefix}:lock`, holder, String(Math.floor(ttlMs)));
    return Number(r) === 1;
  }

  resetReader(): void {
    // Drop the (possibly blackholed) socket; ioredis reconnects with its retry strategy.
    this.#reader.disconnect(true);
  }

  async close(): Promise<void> {
    this.#reader.disconnect(false);
    try {
      await this.#writer.quit();
    } catch {
      this.#writer.disconnect(false);
    }
  }
}

/** The greatest id smaller than `id`. */
function idBefore(id: string): string {
  const [ms = 0, seq = 0] = id.split('-').map(Number);
  return seq > 0 ? `${ms}-${seq - 1}` : `${ms - 1}-18446744073709551615`;
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
