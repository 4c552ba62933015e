// Shared pieces of the fuzz tests (src/ses/parse-fuzz.test.ts, test/fuzz-webhook.itest.ts):
// the seed and run count, and mutations of valid JSON documents and of their text.
//
// A mutation is a list of operations drawn by fast-check and applied to a copy of a valid
// document, so a failing case is reproducible from the seed and shrinks to few operations.
import fc from 'fast-check';

export interface FuzzSettings {
  seed: number;
  numRuns: number;
}

/**
 * Seed and run count for one fuzz suite: a fixed default seed so that `npm test` is
 * deterministic, FUZZ_SEED to try another and FUZZ_RUNS to run longer. Prints both, so that
 * a failure in CI can be replayed.
 */
export function fuzzSettings(suite: string, defaultRuns: number): FuzzSettings {
  const seed = Number.parseInt(process.env.FUZZ_SEED ?? '', 10);
  const runs = Number.parseInt(process.env.FUZZ_RUNS ?? '', 10);
  const settings = { seed: Number.isFinite(seed) ? seed : 20_260_301, numRuns: Number.isFinite(runs) && runs > 0 ? runs : defaultRuns };
  console.info(`${suite}: FUZZ_SEED=${settings.seed} FUZZ_RUNS=${settings.numRuns}`);
  return settings;
}

// ---------------------------------------------------------------------------------------
// Hostile values

// Node's JSON.stringify overflows its stack near 4000 levels, and documents here are serialized
// to be posted; deeper nesting is fuzzed as text (JSON.parse is not recursive).
const DEEP = 3_000;

/**
 * Stands for a value nested DEEP levels, built only when put in place: fast-check prints
 * the values it generated when a property fails, and printing the nesting itself would
 * overflow the stack and hide the failure.
 */
class DeepNest {
  constructor(readonly kind: 'array' | 'object') {}
  build(): unknown {
    let v: unknown = 'bottom';
    for (let i = 0; i < DEEP; i++) v = this.kind === 'array' ? [v] : { a: v };
    return v;
  }
  [fc.toStringMethod](): string {
    return `DeepNest(${this.kind}, ${DEEP})`;
  }
}

/** Strings a parser may trip on: any code point (lone surrogates too), numbers and booleans as text, control characters, long ones. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(
    '',
    ' ',
    '1',
    '2',
    '0',
    '-1',
    '1e309',
    'NaN',
    'true',
    'null',
    'undefined',
    '{}',
    '[]',
    '\u0000',
    '\ud800',
    '\u202e',
    'Zoë ✉ 受信者 \u{1F600}',
    '2026-03-01T10:00:00.000Z',
    '+275760-09-13T00:00:00.000Z',
    '9999-12-31T23:59:59.999Z',
    '0000-01-01T00:00:00Z',
    '2026-03-01T10:00:00 +0000',
    'a@b',
    '"Name" <x@example.com>',
    '<>',
    'x@example.com\r\nBcc: y@example.com',
    '__proto__',
    'constructor',
    'toString',
  ),
  fc.nat({ max: 70_000 }).map((n) => 'x'.repeat(n)),
);

/** Containers handed out as they are by hostileJson, so copied before use (see fresh). */
const SHARED: ReadonlySet<unknown> = new Set<unknown>([[], {}, [[]], [{}], JSON.parse('{"__proto__":{"polluted":1}}')]);

/** JSON values a parser may trip on: extreme numbers, hostile strings, odd containers, deep nesting. */
export const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: hostileString, weight: 4 },
  { arbitrary: fc.constantFrom(0, -0, 1, -1, 1.5, 2 ** 53, -(2 ** 53) - 2, 1e308, -1e308, 5e-324, Number.MAX_SAFE_INTEGER + 2), weight: 2 },
  { arbitrary: fc.constantFrom(true, false, null), weight: 2 },
  { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 2 },
  { arbitrary: fc.constantFrom<unknown>(...SHARED), weight: 1 },
  { arbitrary: fc.constantFrom(new DeepNest('array'), new DeepNest('object')), weight: 1 },
);

// ---------------------------------------------------------------------------------------
// Structural mutations

type Op =
  | { op: 'set'; at: number; value: unknown }
  | { op: 'delete'; at: number }
  | { op: 'retype'; at: number; how: number }
  | { op: 'edit'; at: number; text: string; how: number }
  | { op: 'add'; at: number; key: string; value: unknown };

const KEYS = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'eventType', 'notificationType', 'mail', 'Type', 'Message', 'Signature', 'timestamp', 'destination', '0', ''),
  fc.string({ maxLength: 8 }),
);

const opWith = (values: fc.Arbitrary<unknown>): fc.Arbitrary<Op> =>
  fc.oneof(
    fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: values }),
    fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('retype' as const), at: fc.nat(), how: fc.nat({ max: 5 }) }),
    fc.record({ op: fc.constant('edit' as const), at: fc.nat(), text: hostileString, how: fc.nat({ max: 6 }) }),
    fc.record({ op: fc.constant('add' as const), at: fc.nat(), key: KEYS, value: values }),
  );

/** 1..max operations for mutateJson; the values they put are hostileJson unless given. */
export const mutations = (max = 4, values: fc.Arbitrary<unknown> = hostileJson): fc.Arbitrary<Op[]> =>
  fc.array(opWith(values), { minLength: 1, maxLength: max });

type Slot = { parent: Record<string, unknown> | unknown[]; key: string | number };

/** Every place in `root` that holds a value (depth-first, bounded), and the containers themselves for `add`. */
function slots(root: unknown): { values: Slot[]; containers: Array<Record<string, unknown> | unknown[]> } {
  const values: Slot[] = [];
  const containers: Array<Record<string, unknown> | unknown[]> = [];
  const walk = (v: unknown, depth: number): void => {
    // Plain containers only: a boxed String, a Map or a typed array is a value to replace, not to walk.
    if (v === null || typeof v !== 'object' || depth > 12) return;
    const proto: unknown = Object.getPrototypeOf(v);
    if (!Array.isArray(v) && proto !== Object.prototype && proto !== null) return;
    const c = v as Record<string, unknown> | unknown[];
    containers.push(c);
    if (Array.isArray(c)) {
      c.forEach((x, i) => {
        values.push({ parent: c, key: i });
        walk(x, depth + 1);
      });
    } else {
      for (const k of Object.keys(c)) {
        values.push({ parent: c, key: k });
        walk(c[k], depth + 1);
      }
    }
  };
  walk(root, 0);
  return { values, containers };
}

/** Own and enumerable, as JSON.parse makes it: assigning `__proto__` would change the prototype instead. */
function put(parent: Record<string, unknown> | unknown[], key: string | number, value: unknown): void {
  Object.defineProperty(parent, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A generated value, ready to put; a shared constant is copied, or a later operation would change it for every run after it. */
function fresh(value: unknown): unknown {
  if (value instanceof DeepNest) return value.build();
  return SHARED.has(value) ? structuredClone(value) : value;
}

function retyped(v: unknown, how: number): unknown {
  switch (how) {
    case 0: // numbers as strings, strings as numbers
      return typeof v === 'number' ? String(v) : typeof v === 'string' ? (Number.isFinite(Number(v)) ? Number(v) : v.length) : v;
    case 1: // a string holding the JSON of the value
      return JSON.stringify(v) ?? 'undefined';
    case 2: // wrapped in an array
      return [v];
    case 3: // an array as an object with index keys, an object as its values
      return Array.isArray(v) ? { ...v } : v !== null && typeof v === 'object' ? Object.values(v) : { value: v };
    case 4:
      return v === null ? 'null' : null;
    default: // booleans as strings and back
      return typeof v === 'boolean' ? String(v) : v === 'true' ? true : v === 'false' ? false : !v;
  }
}

function edited(s: string, text: string, how: number): string {
  const at = s.length === 0 ? 0 : text.length % (s.length + 1);
  switch (how) {
    case 0:
      return s.slice(0, at); // truncated
    case 1:
      return s.slice(0, at) + text + s.slice(at); // inserted
    case 2:
      return s + text; // appended
    case 3:
      return s.toUpperCase();
    case 4:
      return ` ${s}\t\n`;
    case 5:
      return s.repeat(1 + (text.length % 50));
    default:
      return text;
  }
}

/** A deep copy of `doc` (JSON data) with `ops` applied; each op picks its place by index modulo the places there are. */
export function mutateJson(doc: unknown, ops: Op[]): unknown {
  const root: { v: unknown } = { v: structuredClone(doc) };
  for (const o of ops) {
    const { values, containers } = slots(root);
    if (o.op === 'add') {
      const c = containers[o.at % containers.length];
      if (c && c !== root && !Array.isArray(c)) put(c, o.key, fresh(o.value));
      else if (Array.isArray(c)) c.push(fresh(o.value));
      continue;
    }
    const slot = values[o.at % values.length];
    if (!slot) continue;
    const { parent, key } = slot;
    const current = (parent as Record<string | number, unknown>)[key];
    switch (o.op) {
      case 'set':
        put(parent, key, fresh(o.value));
        break;
      case 'delete':
        if (Array.isArray(parent)) parent.splice(key as number, 1);
        else if (parent !== root) delete parent[key as string];
        break;
      case 'retype':
        put(parent, key, retyped(current, o.how));
        break;
      case 'edit':
        put(parent, key, typeof current === 'string' ? edited(current, o.text, o.how) : o.text);
        break;
    }
  }
  return root.v;
}

// ---------------------------------------------------------------------------------------
// Text mutations (of a serialized document)

export type TextOp = { how: number; at: number; text: string };

export const textMutation: fc.Arbitrary<TextOp> = fc.record({ how: fc.nat({ max: 5 }), at: fc.nat(), text: hostileString });

/** The text of a document, damaged: cut short, a character dropped or inserted, a span doubled, braces unbalanced. */
export function mutateText(s: string, m: TextOp): string {
  const at = m.at % (s.length + 1);
  switch (m.how) {
    case 0:
      return s.slice(0, at);
    case 1:
      return s.slice(0, at) + s.slice(at + 1);
    case 2:
      return s.slice(0, at) + m.text + s.slice(at);
    case 3:
      return s.slice(0, at) + s.slice(at, at + 20) + s.slice(at);
    case 4:
      return `${s}}`;
    default:
      return `{"a":${s}`;
  }
}
