/**
 * TLS material for the ext_proc port. As upstream: `--cert-path` with `tls.crt`/`tls.key`, or a self-signed
 * certificate generated at start (RSA 4096, O=Inference Ext, random 128-bit serial, 10 years, key usage
 * keyEncipherment + digitalSignature, extended key usage serverAuth). Built with @peculiar/x509 over Node's
 * WebCrypto, so no OpenSSL binary is needed.
 *
 * `--enable-cert-reload`: `CertificateReloader` watches `--cert-path` (fs.watch on the directory, which sees the
 * symlink swap of a Kubernetes Secret volume, plus a slow poll as a fallback) and hands each new, valid pair to
 * grpc-js through its certificate-provider credentials. grpc-js then calls `setSecureContext` on the running
 * HTTP/2 server: new connections get the new certificate, open connections and their streams are untouched.
 * An unreadable or mismatched pair is logged and ignored; the previous certificate stays in use.
 */
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { webcrypto, randomBytes, createPrivateKey, X509Certificate } from 'node:crypto';
import type { experimental } from '@grpc/grpc-js';
import type { Logger } from '../../framework/plugin.ts';
import 'reflect-metadata'; // required by @peculiar/x509 (tsyringe)
import * as x509 from '@peculiar/x509';

export interface TlsMaterial {
  readonly certPem: string;
  readonly keyPem: string;
}

/** Reads `tls.crt`/`tls.key` from `certPath` and checks that they parse and belong together (throws otherwise). */
export function loadCertificate(certPath: string): TlsMaterial {
  const m = {
    certPem: readFileSync(join(certPath, 'tls.crt'), 'utf8'),
    keyPem: readFileSync(join(certPath, 'tls.key'), 'utf8'),
  };
  try {
    validateCertificate(m);
  } catch (err) {
    throw new Error(`--cert-path ${certPath}: ${(err as Error).message}`);
  }
  return m;
}

export async function generateSelfSignedCertificate(modulusLength = 4096): Promise<TlsMaterial> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength };
  const keys = (await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = new Date();
  const notAfter = new Date(now);
  notAfter.setFullYear(now.getFullYear() + 10);
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f; // positive
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: 'O=Inference Ext',
    notBefore: now,
    notAfter,
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    signingAlgorithm: alg,
    extensions: [
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const b64 = Buffer.from(pkcs8).toString('base64').replace(/.{64}/g, '$&\n');
  return { certPem: cert.toString('pem'), keyPem: `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n` };
}

type CertificateProvider = experimental.CertificateProvider;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

/** Parses and cross-checks a certificate/key pair. Throws with a readable reason. Returns the certificate. */
function validateCertificate(m: TlsMaterial): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(m.certPem);
  } catch (err) {
    throw new Error(`tls.crt is not a PEM certificate: ${(err as Error).message}`);
  }
  let key;
  try {
    key = createPrivateKey(m.keyPem);
  } catch (err) {
    throw new Error(`tls.key is not a PEM private key: ${(err as Error).message}`);
  }
  if (!cert.checkPrivateKey(key)) throw new Error('tls.key does not belong to tls.crt');
  return cert;
}

export interface CertificateReloaderOptions {
  /** Fallback poll interval (the directory watch usually fires first). Default 10 s (controller-runtime's certwatcher). */
  readonly pollIntervalMs?: number;
  readonly logger: Logger;
  /** Called after each reload attempt that found changed files. */
  readonly onReload?: (result: 'success' | 'error', cert: X509Certificate | undefined) => void;
}

/**
 * Watches `certPath` and serves its current pair to grpc-js (a `CertificateProvider` for identity certificates).
 * Construct with `CertificateReloader.load` (validates the initial pair), then `start()`; `close()` stops watching.
 */
export class CertificateReloader implements CertificateProvider {
  readonly #certPath: string;
  readonly #o: CertificateReloaderOptions;
  readonly #listeners = new Set<IdentityListener>();
  #current: TlsMaterial;
  #notAfter: Date;
  #generation = 0;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #checking: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(certPath: string, initial: TlsMaterial, cert: X509Certificate, options: CertificateReloaderOptions) {
    this.#certPath = certPath;
    this.#current = initial;
    this.#notAfter = new Date(cert.validTo);
    this.#o = options;
  }

  /** Reads and validates the initial pair (throws when it is missing or invalid, as startup should). */
  static load(certPath: string, options: CertificateReloaderOptions): CertificateReloader {
    const initial = loadCertificate(certPath);
    const cert = new X509Certificate(initial.certPem);
    return new CertificateReloader(certPath, initial, cert, options);
  }

  get material(): TlsMaterial {
    return this.#current;
  }

  /** Expiry of the certificate in use. */
  get notAfter(): Date {
    return this.#notAfter;
  }

  /** Number of successful reloads so far. */
  get generation(): number {
    return this.#generation;
  }

  start(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setInterval(() => void this.check(), this.#o.pollIntervalMs ?? 10_000);
    this.#timer.unref();
    try {
      this.#watcher = watch(this.#certPath, { persistent: false }, () => {
        // Secret volumes swap a symlink and several files change at once: settle, then read once.
        clearTimeout(this.#debounce);
        this.#debounce = setTimeout(() => void this.check(), 50);
        this.#debounce.unref();
      });
      this.#watcher.on('error', () => this.#watcher?.close());
    } catch {
      // No inotify (or the directory vanished): the poll still catches changes.
    }
  }

  /**
   * Re-reads the files (after any check already running, so the result reflects the files as they are now);
   * switches to them when they changed and are valid. Resolves true on a switch.
   */
  check(): Promise<boolean> {
    const next = this.#checking.then(() => this.#check());
    this.#checking = next.catch(() => false);
    return next;
  }

  async #check(): Promise<boolean> {
    if (this.#closed) return false;
    let next: TlsMaterial;
    try {
      const [certPem, keyPem] = await Promise.all([
        readFile(join(this.#certPath, 'tls.crt'), 'utf8'),
        readFile(join(this.#certPath, 'tls.key'), 'utf8'),
      ]);
      next = { certPem, keyPem };
    } catch (err) {
      this.#o.logger.warn({ certPath: this.#certPath, err: (err as Error).message }, 'TLS certificate reload: cannot read the files; keeping the current certificate');
      return false;
    }
    if (next.certPem === this.#current.certPem && next.keyPem === this.#current.keyPem) return false;
    let cert: X509Certificate;
    try {
      cert = validateCertificate(next);
    } catch (err) {
      // Often a half-written update (new tls.crt, old tls.key): the next event or poll retries.
      this.#o.logger.warn({ certPath: this.#certPath, err: (err as Error).message }, 'TLS certificate reload: invalid pair; keeping the current certificate');
      this.#o.onReload?.('error', undefined);
      return false;
    }
    if (this.#closed) return false;
    this.#current = next;
    this.#notAfter = new Date(cert.validTo);
    this.#generation++;
    const update = { certificate: Buffer.from(next.certPem), privateKey: Buffer.from(next.keyPem) };
    for (const l of this.#listeners) l(update);
    this.#o.logger.info({ certPath: this.#certPath, subject: cert.subject, notAfter: cert.validTo, fingerprint256: cert.fingerprint256 }, 'TLS certificate reloaded');
    this.#o.onReload?.('success', cert);
    return true;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    clearTimeout(this.#debounce);
    this.#watcher?.close();
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#listeners.add(listener);
    const m = this.#current;
    // Asynchronously: grpc-js registers its server watcher only after this call returns.
    process.nextTick(() => {
      if (this.#listeners.has(listener)) listener({ certificate: Buffer.from(m.certPem), privateKey: Buffer.from(m.keyPem) });
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#listeners.delete(listener);
  }

  addCaCertificateListener(): void {
    // Identity only: the ext_proc server does not verify client certificates.
  }

  removeCaCertificateListener(): void {}
}
