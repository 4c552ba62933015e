// Signing material and envelope signing for the SNS simulator, usable without starting
// its HTTP server (unit tests sign envelopes in-process and hand the PEM to the verifier).

import { createHash, generateKeyPair, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { canonicalString, type SnsEnvelope } from '../../ses/sns.js';
import { createSelfSignedCertificate } from './x509.js';

const generateKeyPairAsync = promisify(generateKeyPair);

export interface SigningMaterial {
  privateKey: KeyObject;
  publicKey: KeyObject;
  certPem: string;
  /** Hex fingerprint of the certificate, used to name it like SNS does (SimpleNotificationService-<hex>.pem). */
  certId: string;
}

export type UnsignedSnsEnvelope = Omit<SnsEnvelope, 'Signature' | 'SigningCertURL' | 'SignatureVersion'> & {
  SignatureVersion?: '1' | '2';
  SigningCertURL?: string;
};

let material: Promise<SigningMaterial> | undefined;

/**
 * One RSA-2048 key and certificate per process: generating the key costs tens to hundreds
 * of milliseconds, and every simulator and test in a process can share it.
 */
export function loadSigningMaterial(): Promise<SigningMaterial> {
  material ??= (async () => {
    const { publicKey, privateKey } = await generateKeyPairAsync('rsa', { modulusLength: 2048 });
    const cert = createSelfSignedCertificate({ publicKey, privateKey, commonName: 'sns.tajo-sim.local' });
    const certId = createHash('sha256').update(cert.der).digest('hex').slice(0, 32);
    return { privateKey, publicKey, certPem: cert.pem, certId };
  })();
  // A failed generation must not poison every later caller.
  material.catch(() => {
    material = undefined;
  });
  return material;
}

/**
 * Fills SignatureVersion, SigningCertURL and Signature. Keys come out in the order SNS
 * writes them, so a recorded body looks like a real one.
 */
export function signEnvelope(env: UnsignedSnsEnvelope, privateKey: KeyObject, defaults: { certUrl: string; signatureVersion?: '1' | '2' }): SnsEnvelope {
  const SignatureVersion = env.SignatureVersion ?? defaults.signatureVersion ?? '1';
  const SigningCertURL = env.SigningCertURL ?? defaults.certUrl;
  const unsigned: SnsEnvelope = { ...env, SignatureVersion, SigningCertURL, Signature: '' };
  const data = Buffer.from(canonicalString(unsigned), 'utf8');
  const Signature = cryptoSign(SignatureVersion === '2' ? 'sha256' : 'sha1', data, privateKey).toString('base64');

  const out: Record<string, unknown> = { Type: env.Type, MessageId: env.MessageId };
  if (env.Token !== undefined) out.Token = env.Token;
  out.TopicArn = env.TopicArn;
  if (env.Subject !== undefined) out.Subject = env.Subject;
  out.Message = env.Message;
  if (env.SubscribeURL !== undefined) out.SubscribeURL = env.SubscribeURL;
  out.Timestamp = env.Timestamp;
  out.SignatureVersion = SignatureVersion;
  out.Signature = Signature;
  out.SigningCertURL = SigningCertURL;
  if (env.UnsubscribeURL !== undefined) out.UnsubscribeURL = env.UnsubscribeURL;
  if (env.MessageAttributes !== undefined) out.MessageAttributes = env.MessageAttributes;
  return out as unknown as SnsEnvelope;
}
