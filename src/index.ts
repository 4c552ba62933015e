// Library exports (CONTRACT.md section 6), for users who run their own Lambda or worker.
export { loadConfig, parseConfig, ConfigError, maskSecrets } from './config/load.js';
export type { TajoConfig, SesConnectorConfig } from './config/schema.js';
export { verifySnsMessage, confirmSubscription, SnsVerificationError, CertCache, canonicalString } from './ses/sns.js';
export type { SnsEnvelope, SnsRejectCode, VerifySnsOptions } from './ses/sns.js';
export { parseSesNotification } from './ses/parse.js';
export { planBrevoOperations, mergeContactPayload } from './core/plan.js';
export type { PlannedOp, ContactOp, EventOp, ContactPayload, EventPayload } from './core/plan.js';
export type { SesEventRecord, SesContactRecord, SesSuppressionRecord, SesRecord, SesEventType } from './core/types.js';
export { createConnector } from './engine/connector.js';
export type { Connector, ConnectorOptions } from './engine/connector.js';
export { buildServer } from './server/app.js';
export { BrevoClient, BrevoError } from './brevo/client.js';
export { Governor } from './brevo/governor.js';
export { TajoError } from './core/errors.js';
