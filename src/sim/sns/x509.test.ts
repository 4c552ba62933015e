import { X509Certificate, createPublicKey, generateKeyPairSync, verify as cryptoVerify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalString } from '../../ses/sns.js';
import { loadSigningMaterial, signEnvelope } from './signer.js';
import { createSelfSignedCertificate, der } from './x509.js';

describe('DER encoder', () => {
  it('encodes short and long lengths', () => {
    expect(der.octetString(Buffer.alloc(3)).subarray(0, 2)).toEqual(Buffer.from([0x04, 0x03]));
    expect(der.octetString(Buffer.alloc(200)).subarray(0, 3)).toEqual(Buffer.from([0x04, 0x81, 200]));
    expect(der.octetString(Buffer.alloc(300)).subarray(0, 4)).toEqual(Buffer.from([0x04, 0x82, 0x01, 0x2c]));
  });

  it("encodes INTEGERs as minimal positive two's complement", () => {
    expect(der.integer(0)).toEqual(Buffer.from([0x02, 0x01, 0x00]));
    expect(der.integer(2)).toEqual(Buffer.from([0x02, 0x01, 0x02]));
    expect(der.integer(128)).toEqual(Buffer.from([0x02, 0x02, 0x00, 0x80]));
    expect(der.integer(Buffer.from([0x00, 0x00, 0x7f]))).toEqual(Buffer.from([0x02, 0x01, 0x7f]));
    expect(der.integer(Buffer.from([0xff, 0x01]))).toEqual(Buffer.from([0x02, 0x03, 0x00, 0xff, 0x01]));
  });

  it('encodes OIDs', () => {
    expect(der.oid('1.2.840.113549.1.1.11').toString('hex')).toBe('06092a864886f70d01010b');
    expect(der.oid('2.5.4.3').toString('hex')).toBe('0603550403');
  });

  it('switches from UTCTime to GeneralizedTime in 2050', () => {
    expect(der.time(new Date('2049-12-31T23:59:59Z'))).toEqual(Buffer.concat([Buffer.from([0x17, 13]), Buffer.from('491231235959Z')]));
    expect(der.time(new Date('2050-01-02T03:04:05Z'))).toEqual(Buffer.concat([Buffer.from([0x18, 15]), Buffer.from('20500102030405Z')]));
  });
});

describe('createSelfSignedCertificate', () => {
  it('produces a certificate node:crypto parses, self-signed by its own key', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const notBefore = new Date('2024-01-01T00:00:00Z');
    const notAfter = new Date('2060-01-01T00:00:00Z');
    const { pem } = createSelfSignedCertificate({
      publicKey,
      privateKey,
      commonName: 'sns.test',
      notBefore,
      notAfter,
      serialNumber: Buffer.from([0x80, 0x01]),
    });
    const cert = new X509Certificate(pem);
    expect(cert.subject).toContain('CN=sns.test');
    expect(cert.issuer).toBe(cert.subject);
    expect(cert.serialNumber.toUpperCase()).toBe('8001');
    expect(new Date(cert.validFrom).toISOString()).toBe(notBefore.toISOString());
    expect(new Date(cert.validTo).toISOString()).toBe(notAfter.toISOString());
    expect(cert.ca).toBe(false);
    expect(cert.verify(publicKey)).toBe(true);
    expect(cert.publicKey.equals(publicKey)).toBe(true);
    expect(cert.checkIssued(cert)).toBe(true);
  });

  it('refuses non-RSA keys', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => createSelfSignedCertificate({ publicKey, privateKey, commonName: 'x' })).toThrow(/RSA/);
  });
});

describe('simulator signing material', () => {
  it('is generated once per process, and its certificate verifies what signEnvelope signs', async () => {
    const [a, b] = await Promise.all([loadSigningMaterial(), loadSigningMaterial()]);
    expect(a).toBe(b);
    const cert = new X509Certificate(a.certPem);
    expect(cert.verify(cert.publicKey)).toBe(true);
    for (const v of ['1', '2'] as const) {
      const env = signEnvelope(
        {
          Type: 'Notification',
          MessageId: 'm',
          TopicArn: 'arn:aws:sns:us-east-1:1:t',
          Message: 'hi',
          Timestamp: new Date().toISOString(),
          SignatureVersion: v,
        },
        a.privateKey,
        { certUrl: 'http://127.0.0.1/x.pem' },
      );
      expect(Object.keys(env)).toEqual(['Type', 'MessageId', 'TopicArn', 'Message', 'Timestamp', 'SignatureVersion', 'Signature', 'SigningCertURL']);
      const ok = cryptoVerify(
        v === '2' ? 'sha256' : 'sha1',
        Buffer.from(canonicalString(env)),
        createPublicKey(a.certPem),
        Buffer.from(env.Signature, 'base64'),
      );
      expect(ok).toBe(true);
    }
  });
});
