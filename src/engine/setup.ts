// Brevo-side prerequisites: the SES_* attributes must exist with the right types before any
// value is sent, because Brevo silently drops values of unknown attributes.
import type { Logger } from 'pino';
import type { BrevoClient } from '../brevo/client.js';
import { BrevoError } from '../brevo/client.js';
import { SES_ATTRIBUTES } from '../core/brevo-model.js';

export interface AttributeReport {
  created: string[];
  present: string[];
  /** Present with another type: values would be dropped; the operator must fix it in Brevo. */
  mismatched: Array<{ name: string; expected: string; found: string }>;
  /** field_mapping targets that do not exist in Brevo. */
  missingMapped: string[];
}

export async function ensureAttributes(client: BrevoClient, opts: { create: boolean; mapped?: string[]; log?: Logger }): Promise<AttributeReport> {
  const { data } = await client.listAttributes();
  const existing = new Map((data?.attributes ?? []).map((a) => [a.name.toUpperCase(), a]));
  const report: AttributeReport = { created: [], present: [], mismatched: [], missingMapped: [] };
  for (const [name, type] of Object.entries(SES_ATTRIBUTES)) {
    const cur = existing.get(name);
    if (cur) {
      const found = (cur.type ?? '').toLowerCase();
      if (found && found !== type) report.mismatched.push({ name, expected: type, found });
      else report.present.push(name);
      continue;
    }
    if (!opts.create) continue;
    try {
      await client.createAttribute('normal', name, type);
      report.created.push(name);
    } catch (err) {
      // Another process may have created it a moment ago.
      if (err instanceof BrevoError && err.code === 'duplicate_parameter') report.present.push(name);
      else throw err;
    }
  }
  for (const m of opts.mapped ?? []) if (!existing.has(m.toUpperCase())) report.missingMapped.push(m);
  if (report.created.length > 0) opts.log?.info({ created: report.created }, 'created missing Brevo contact attributes');
  for (const m of report.mismatched)
    opts.log?.error(
      m,
      `Brevo attribute ${m.name} has type ${m.found}, expected ${m.expected}: Brevo will drop its values; delete and recreate it (then run tajo-ses check)`,
    );
  return report;
}
