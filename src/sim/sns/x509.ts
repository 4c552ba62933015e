// A minimal DER (ITU-T X.690) encoder, just enough to issue a self-signed X.509 v3
// certificate for the SNS simulator. node:crypto generates keys and parses certificates
// but cannot issue them, and the project takes no dependency (or `openssl` binary) only
// to make test fixtures.

import { randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let v = length; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(content.length), content]);
}

/** Unsigned big-endian magnitude -> minimal two's-complement INTEGER content. */
function integerContent(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  if (trimmed.length === 0) return Buffer.from([0]);
  // A set high bit would make the value negative; certificate serials must be positive.
  return (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
}

function oidContent(dotted: string): Buffer {
  const arcs = dotted.split('.').map((s) => {
    const n = Number(s);
    if (!Number.isSafeInteger(n) || n < 0) throw new TypeError(`invalid OID arc "${s}" in ${dotted}`);
    return n;
  });
  const [first, second, ...rest] = arcs;
  if (first === undefined || second === undefined) throw new TypeError(`an OID needs at least two arcs: ${dotted}`);
  const out: number[] = [];
  for (const arc of [first * 40 + second, ...rest]) {
    const groups: number[] = [];
    let v = arc;
    do {
      groups.unshift(v % 128);
      v = Math.floor(v / 128);
    } while (v > 0);
    groups.forEach((g, i) => out.push(i < groups.length - 1 ? g | 0x80 : g));
  }
  return Buffer.from(out);
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

export const der = {
  sequence: (...items: Buffer[]): Buffer => tlv(0x30, Buffer.concat(items)),
  // DER wants SET OF members sorted; every set built here has a single member.
  set: (...items: Buffer[]): Buffer => tlv(0x31, Buffer.concat(items)),
  integer: (value: number | Buffer): Buffer => {
    if (typeof value === 'number') {
      if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`only non-negative safe integers are encoded, got ${value}`);
      const bytes: number[] = [];
      for (let v = value; v > 0; v = Math.floor(v / 256)) bytes.unshift(v % 256);
      return tlv(0x02, integerContent(Buffer.from(bytes)));
    }
    return tlv(0x02, integerContent(value));
  },
  boolean: (value: boolean): Buffer => tlv(0x01, Buffer.from([value ? 0xff : 0x00])),
  null: (): Buffer => Buffer.from([0x05, 0x00]),
  oid: (dotted: string): Buffer => tlv(0x06, oidContent(dotted)),
  utf8String: (s: string): Buffer => tlv(0x0c, Buffer.from(s, 'utf8')),
  octetString: (b: Buffer): Buffer => tlv(0x04, b),
  /** Whole-byte BIT STRING (signatures, key material): zero unused bits. */
  bitString: (b: Buffer): Buffer => tlv(0x03, Buffer.concat([Buffer.from([0]), b])),
  /** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, always in UTC with seconds. */
  time: (d: Date): Buffer => {
    const y = d.getUTCFullYear();
    const rest = `${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}Z`;
    return y >= 1950 && y < 2050
      ? tlv(0x17, Buffer.from(`${two(y % 100)}${rest}`, 'ascii'))
      : tlv(0x18, Buffer.from(`${String(y).padStart(4, '0')}${rest}`, 'ascii'));
  },
  explicit: (tagNumber: number, inner: Buffer): Buffer => tlv(0xa0 | tagNumber, inner),
};

const OID = {
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  commonName: '2.5.4.3',
  organizationName: '2.5.4.10',
  basicConstraints: '2.5.29.19',
};

function name(commonName: string, organization: string): Buffer {
  return der.sequence(
    der.set(der.sequence(der.oid(OID.organizationName), der.utf8String(organization))),
    der.set(der.sequence(der.oid(OID.commonName), der.utf8String(commonName))),
  );
}

export interface SelfSignedCertificateOptions {
  publicKey: KeyObject;
  /** Must be an RSA key: the certificate is signed with sha256WithRSAEncryption. */
  privateKey: KeyObject;
  commonName: string;
  organization?: string;
  notBefore?: Date;
  notAfter?: Date;
  /** Unsigned big-endian bytes; default 16 random bytes. */
  serialNumber?: Buffer;
}

export interface SelfSignedCertificate {
  der: Buffer;
  pem: string;
}

export function toPem(derBytes: Buffer, label = 'CERTIFICATE'): string {
  const b64 = derBytes.toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export function createSelfSignedCertificate(opts: SelfSignedCertificateOptions): SelfSignedCertificate {
  if (opts.privateKey.asymmetricKeyType !== 'rsa')
    throw new TypeError('createSelfSignedCertificate signs with sha256WithRSAEncryption: pass an RSA private key');
  const now = Date.now();
  // Backdated so that a verifier with a slightly slow clock still sees it as valid.
  const notBefore = opts.notBefore ?? new Date(now - 60 * 60 * 1000);
  const notAfter = opts.notAfter ?? new Date(now + 365 * 24 * 60 * 60 * 1000);
  const serial = opts.serialNumber ?? randomBytes(16);
  const subject = name(opts.commonName, opts.organization ?? 'Tajo SNS simulator');
  const signatureAlgorithm = der.sequence(der.oid(OID.sha256WithRSAEncryption), der.null());
  const spki = opts.publicKey.export({ type: 'spki', format: 'der' });

  const extensions = der.explicit(
    3,
    der.sequence(
      // An end-entity certificate: cA defaults to FALSE, so the value is an empty SEQUENCE.
      // No keyUsage: a self-signed certificate restricted to digitalSignature would not be a
      // valid issuer of itself (OpenSSL's X509_check_issued wants keyCertSign).
      der.sequence(der.oid(OID.basicConstraints), der.boolean(true), der.octetString(der.sequence())),
    ),
  );

  const tbs = der.sequence(
    der.explicit(0, der.integer(2)), // v3, required because extensions are present
    der.integer(serial),
    signatureAlgorithm,
    subject, // issuer: self-signed
    der.sequence(der.time(notBefore), der.time(notAfter)),
    subject,
    spki,
    extensions,
  );
  const signature = cryptoSign('sha256', tbs, opts.privateKey);
  const certificate = der.sequence(tbs, signatureAlgorithm, der.bitString(signature));
  return { der: certificate, pem: toPem(certificate) };
}
