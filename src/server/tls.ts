/**
 * TLS material for the ext_proc port. As upstream: `--cert-path` with `tls.crt`/`tls.key`, or a self-signed
 * certificate generated at start (RSA 4096, O=Inference Ext, random 128-bit serial, 10 years, key usage
 * keyEncipherment + digitalSignature, extended key usage serverAuth). Built with @peculiar/x509 over Node's
 * WebCrypto, so no OpenSSL binary is needed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { webcrypto, randomBytes } from 'node:crypto';
import 'reflect-metadata'; // required by @peculiar/x509 (tsyringe)
import * as x509 from '@peculiar/x509';

export interface TlsMaterial {
  readonly certPem: string;
  readonly keyPem: string;
}

export function loadCertificate(certPath: string): TlsMaterial {
  return {
    certPem: readFileSync(join(certPath, 'tls.crt'), 'utf8'),
    keyPem: readFileSync(join(certPath, 'tls.key'), 'utf8'),
  };
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
