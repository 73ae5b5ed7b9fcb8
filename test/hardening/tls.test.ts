/**
 * TLS on the ext_proc port: the self-signed default, a provided certificate, and --enable-cert-reload (new
 * connections get the new certificate; a stream opened before the reload runs to its end).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { connect, type DetailedPeerCertificate } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { generateSelfSignedCertificate, type CertificateReloader, type TlsMaterial } from '../../src/server/extproc/tls.ts';
import type { RunningEpp } from '../../src/server/bootstrap-options.ts';
import { FakeEnvoy } from '../support/fake-envoy.ts';
import { startTestEpp } from '../support/epp.ts';
import { within } from '../support/wait.ts';
import { chatBody, CHAT_PATH, fullStreamedRequest, http, sampleValue, sseChunk, USAGE_TAIL } from '../observability/helpers.ts';

function peerCertificate(port: number): Promise<DetailedPeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['h2'] }, () => {
      const cert = socket.getPeerCertificate(true);
      socket.destroy();
      resolve(cert);
    });
    socket.on('error', reject);
  });
}

/** A fake Envoy that trusts exactly `certPem` (no hostname check: the certificates carry no SAN, as upstream's). */
function trustingEnvoy(port: number, certPem: string): FakeEnvoy {
  return new FakeEnvoy(port, credentials.createSsl(Buffer.from(certPem), null, null, { checkServerIdentity: () => undefined }), {
    'grpc.use_local_subchannel_pool': 1,
  });
}

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

function writePair(dir: string, m: TlsMaterial): void {
  // Write then rename, as an atomic Secret update would: the reader never sees a half-written file.
  writeFileSync(join(dir, 'tls.crt.tmp'), m.certPem);
  writeFileSync(join(dir, 'tls.key.tmp'), m.keyPem);
  renameSync(join(dir, 'tls.key.tmp'), join(dir, 'tls.key'));
  renameSync(join(dir, 'tls.crt.tmp'), join(dir, 'tls.crt'));
}

/**
 * Resolves when the reloader hands `certPem` to its identity-certificate listeners: the event grpc-js itself follows
 * to switch the served certificate (the listener grpc-js registered earlier has run by then). Register before the
 * files change.
 */
function published(reloader: CertificateReloader, certPem: string): Promise<void> {
  return new Promise((resolve) => {
    const listener = (update: { certificate: Buffer } | null): void => {
      if (update?.certificate.toString() !== certPem) return; // e.g. the current certificate, sent on registration
      reloader.removeIdentityCertificateListener(listener);
      resolve();
    };
    reloader.addIdentityCertificateListener(listener);
  });
}

describe('TLS: self-signed default', () => {
  let epp: RunningEpp;
  before(async () => {
    epp = await startTestEpp({ secureServing: true });
  });
  after(() => epp.close());

  test('presents upstream-shaped self-signed certificate (RSA 4096, O=Inference Ext, serverAuth, 10 years)', async () => {
    const peer = await peerCertificate(epp.grpcPort);
    assert.equal(peer.subject.O, 'Inference Ext');
    assert.equal(peer.bits, 4096);
    assert.ok(peer.ext_key_usage?.includes('1.3.6.1.5.5.7.3.1'), 'extended key usage serverAuth');
    const years = (Date.parse(peer.valid_to) - Date.parse(peer.valid_from)) / (365.25 * 86400_000);
    assert.ok(Math.abs(years - 10) < 0.01, `validity ${years} years`);
  });

  test('a client trusting that certificate completes a request; a plaintext client does not get through', async () => {
    const peer = await peerCertificate(epp.grpcPort);
    const envoy = trustingEnvoy(epp.grpcPort, new X509Certificate(peer.raw).toString());
    await fullStreamedRequest(envoy.open(), 'hello over tls');
    envoy.close();
    const plain = new FakeEnvoy(epp.grpcPort, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    const s = plain.open();
    s.requestHeaders({ ':path': CHAT_PATH });
    const status = await s.ended;
    assert.notEqual(status.code, 0);
    plain.close();
  });
});

describe('TLS: --cert-path and --enable-cert-reload', () => {
  let dir: string;
  let a: TlsMaterial;
  let b: TlsMaterial;
  let epp: RunningEpp;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'epp-tls-'));
    [a, b] = await Promise.all([generateSelfSignedCertificate(2048), generateSelfSignedCertificate(2048)]);
    writePair(dir, a);
    epp = await startTestEpp({ secureServing: true, certPath: dir, certReload: { pollIntervalMs: 200 }, metricsPort: 0 });
  });
  after(async () => {
    await epp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('serves the provided certificate', async () => {
    const peer = await peerCertificate(epp.grpcPort);
    assert.equal(peer.fingerprint256, fingerprint(a.certPem));
  });

  test('a changed certificate is served to new connections while a stream opened before keeps going', async () => {
    const oldEnvoy = trustingEnvoy(epp.grpcPort, a.certPem);
    const s = oldEnvoy.open();
    s.requestHeaders({ ':path': CHAT_PATH, 'content-type': 'application/json' });
    s.requestBody(chatBody('opened before the reload'), true);
    await s.nextN(2);
    s.responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' });
    await s.next();

    const reloaded = published(epp.certificates as CertificateReloader, b.certPem);
    writePair(dir, b);
    await within(reloaded, 'the reload');
    assert.equal(epp.certificates?.generation, 1);
    assert.equal((await peerCertificate(epp.grpcPort)).fingerprint256, fingerprint(b.certPem));

    // The old stream (and its connection) still work after the switch.
    for (let i = 0; i < 3; i++) {
      s.responseBody(sseChunk(i), false);
      await s.next();
    }
    s.responseBody(USAGE_TAIL, true);
    await s.next();
    s.end();
    assert.equal((await s.ended).code, 0);
    oldEnvoy.close();

    const newEnvoy = trustingEnvoy(epp.grpcPort, b.certPem);
    await fullStreamedRequest(newEnvoy.open(), 'after the reload');
    newEnvoy.close();
    const staleTrust = trustingEnvoy(epp.grpcPort, a.certPem);
    const rejected = staleTrust.open();
    rejected.requestHeaders({ ':path': CHAT_PATH });
    assert.notEqual((await rejected.ended).code, 0);
    staleTrust.close();

    const text = (await http(epp.metricsPort as number, '/metrics')).body;
    assert.equal(sampleValue(text, 'epp_tls_certificate_reloads_total{result="success"}'), 1);
    assert.equal(sampleValue(text, 'epp_tls_certificate_expiry_timestamp_seconds{source="cert-path"}'), Date.parse(new X509Certificate(b.certPem).validTo) / 1000);
  });

  test('an invalid pair (key of another certificate) is refused and the current certificate stays', async () => {
    writePair(dir, { certPem: a.certPem, keyPem: b.keyPem });
    assert.equal(await epp.certificates?.check(), false);
    assert.equal(epp.certificates?.generation, 1);
    assert.equal((await peerCertificate(epp.grpcPort)).fingerprint256, fingerprint(b.certPem));
    const text = (await http(epp.metricsPort as number, '/metrics')).body;
    assert.ok((sampleValue(text, 'epp_tls_certificate_reloads_total{result="error"}') ?? 0) >= 1);
  });
});

describe('TLS: startup errors', () => {
  test('a --cert-path without a valid pair fails startup with the reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'epp-tls-bad-'));
    writeFileSync(join(dir, 'tls.crt'), 'not a certificate');
    writeFileSync(join(dir, 'tls.key'), 'not a key');
    try {
      await assert.rejects(startTestEpp({ secureServing: true, certPath: dir, certReload: true }), /tls\.crt is not a PEM certificate/);
      await assert.rejects(startTestEpp({ secureServing: true, certPath: dir }), /--cert-path .*tls\.crt is not a PEM certificate/);
      await assert.rejects(startTestEpp({ secureServing: true, certPath: join(dir, 'missing') }), /ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
