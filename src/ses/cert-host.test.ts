// Which hosts the DEFAULT sns.signing_cert_hosts pattern lets serve an SNS signing
// certificate. Trust in a certificate comes only from the host it is downloaded from (see
// sns.ts), so a pattern loosened to, say, any *.amazonaws.com host would accept a
// certificate from an S3 bucket anyone can create. Every envelope below is signed by the
// simulator's key and its certificate is "downloaded" without the network: a host the
// pattern wrongly admits therefore verifies, and the test fails.
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSigningMaterial, signEnvelope, type SigningMaterial } from '../sim/sns/signer.js';
import { parseConfig } from '../config/load.js';
import { DEFAULT_SIGNING_CERT_HOST as CONFIG_DEFAULT_HOST } from '../config/schema.js';
import { CertCache, DEFAULT_SIGNING_CERT_HOST, DEFAULT_SIGNING_CERT_HOSTS, SnsVerificationError, verifySnsMessage, type VerifySnsOptions } from './sns.js';

const NOW = Date.parse('2024-05-01T12:00:00.000Z');

let material: SigningMaterial;
beforeAll(async () => {
  material = await loadSigningMaterial();
});

/** The configuration default, as `serve` hands it to the verifier (src/engine/ingest.ts). */
function configuredHosts(): string[] {
  return parseConfig({ connectors: { 'amazon-ses': { region: 'us-east-1' } } }, { env: {}, requireBrevoKey: false }).connectors['amazon-ses'].sns
    .signing_cert_hosts;
}

const DEFAULTS: Array<[string, () => Pick<VerifySnsOptions, 'signingCertHosts'>]> = [
  ['the verifier default (no signingCertHosts)', () => ({})],
  ['the configuration default', () => ({ signingCertHosts: configuredHosts() })],
];

/** Verifies a notification of a topic in `region` whose certificate URL is on `host`. */
function verifyFrom(host: string, region: string, hosts: Pick<VerifySnsOptions, 'signingCertHosts'>) {
  const partition = region.startsWith('cn-') ? 'aws-cn' : 'aws';
  const topic = `arn:${partition}:sns:${region}:123456789012:ses-events`;
  const env = signEnvelope(
    { Type: 'Notification', MessageId: `m-${host}`, TopicArn: topic, Message: '{}', Timestamp: new Date(NOW - 1000).toISOString() },
    material.privateKey,
    { certUrl: `https://${host}/SimpleNotificationService-0123456789abcdef.pem` },
  );
  return verifySnsMessage(env, {
    topicArns: [topic],
    maxMessageAgeMs: 3_600_000,
    now: () => NOW,
    certCache: new CertCache(),
    fetchCertificate: () => Promise.resolve(material.certPem),
    ...hosts,
  });
}

describe('default SNS certificate hosts', () => {
  it('the configuration default is the verifier default, one definition', () => {
    expect(CONFIG_DEFAULT_HOST).toBe(DEFAULT_SIGNING_CERT_HOST);
    expect(DEFAULT_SIGNING_CERT_HOSTS).toEqual([DEFAULT_SIGNING_CERT_HOST]);
    expect(configuredHosts()).toEqual(DEFAULT_SIGNING_CERT_HOSTS);
  });

  describe.each(DEFAULTS)('with %s', (_, hosts) => {
    it.each([
      ['an S3 bucket host', 'bucket.s3.amazonaws.com'],
      ['another AWS service', 'ec2.us-east-1.amazonaws.com'],
      ['a prefix before sns', 'evil-sns.us-east-1.amazonaws.com'],
      ['a subdomain of an SNS host', 'x.sns.us-east-1.amazonaws.com'],
      ['an SNS host under another domain', 'sns.us-east-1.amazonaws.com.evil.com'],
      ['a percent-encoded dot before another domain', 'sns.us-east-1.amazonaws.com%2eevil.com'],
      ['an ideographic full stop before another domain', 'sns.us-east-1.amazonaws.com\u3002evil.com'],
      ['any character for the first dot', 'snsXus-east-1.amazonaws.com'],
      ['any character for the dot before amazonaws', 'sns.us-east-1Xamazonaws.com'],
      ['any character for the dot before com', 'sns.us-east-1.amazonawsXcom'],
      ['.co instead of .com', 'sns.us-east-1.amazonaws.co'],
      ['a longer top-level domain', 'sns.us-east-1.amazonaws.community'],
      ['.cn followed by more', 'sns.cn-north-1.amazonaws.com.cn.evil.com'],
      ['an empty region', 'sns..amazonaws.com'],
      ['no region', 'sns.amazonaws.com'],
      ['a region with a dot', 'sns.us.east-1.amazonaws.com'],
      ['a trailing dot', 'sns.us-east-1.amazonaws.com.'],
    ])('refuses %s (%s) with cert_host_not_allowed', async (_, host) => {
      const err = await verifyFrom(host, 'us-east-1', hosts()).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, `${host} was accepted`).toBeInstanceOf(SnsVerificationError);
      expect((err as SnsVerificationError).code).toBe('cert_host_not_allowed');
    });

    it.each([
      ['sns.us-east-1.amazonaws.com', 'us-east-1'],
      ['sns.eu-central-1.amazonaws.com', 'eu-central-1'],
      ['sns.cn-north-1.amazonaws.com.cn', 'cn-north-1'],
      // Host names are case-insensitive; the URL parser lower-cases them before the pattern sees them.
      ['SNS.US-EAST-1.AMAZONAWS.COM', 'us-east-1'],
    ])('accepts %s', async (host, region) => {
      await expect(verifyFrom(host, region, hosts())).resolves.toMatchObject({ Type: 'Notification' });
    });
  });
});
