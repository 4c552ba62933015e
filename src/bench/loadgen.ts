// Load generator, run as its own process so it does not share the server's event loop:
//   node dist/bench/loadgen.js URL[,URL...] BODIES_FILE CONCURRENCY [RATE_PER_SEC]
// Posts each body once like SNS does (text/plain, keep-alive) and prints one JSON line. With
// several URLs (the webhooks of a cluster), body i goes to URL i mod n: round-robin.
import { request, Agent } from 'node:http';
import { readFileSync } from 'node:fs';

/** What one run prints (and the benchmark reads back). */
export interface LoadResult {
  sent: number;
  ok: number;
  /** Answers other than 200, by status (or `error:CODE` when the request failed without one). */
  other: Record<string, number>;
  /** Indices of the bodies not answered 200 (SNS would post them again). */
  failed: number[];
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** CPU time the load generator itself used (it shares the machine with the server). */
  cpuSeconds: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function run(urls: string[], bodies: string[], concurrency: number, rate: number | undefined): Promise<LoadResult> {
  const targets = urls.map((url) => new URL(url));
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const lat: number[] = [];
  const other: Record<string, number> = {};
  const failed: number[] = [];
  let ok = 0;
  let next = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const post = (body: string, u: URL) =>
    new Promise<number | string>((resolve) => {
      const req = request(
        {
          host: u.hostname,
          port: u.port,
          path: u.pathname,
          method: 'POST',
          agent,
          headers: { 'content-type': 'text/plain; charset=UTF-8', 'content-length': Buffer.byteLength(body), 'x-amz-sns-message-type': 'Notification' },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => resolve(`error:${err.code ?? err.message}`));
      req.end(body);
    });
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= bodies.length) return;
      if (rate) {
        // Open-loop pacing: request i is due at i/rate seconds, whatever the answers do.
        const due = t0 + (i / rate) * 1000;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const s = performance.now();
      const status = await post(bodies[i]!, targets[i % targets.length]!);
      lat.push(performance.now() - s);
      if (status === 200) ok++;
      else {
        other[String(status)] = (other[String(status)] ?? 0) + 1;
        failed.push(i);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  const cpu = process.cpuUsage(cpu0);
  return {
    sent: bodies.length,
    ok,
    other,
    failed,
    seconds,
    perSecond: ok / seconds,
    p50Ms: percentile(lat, 50),
    p99Ms: percentile(lat, 99),
    maxMs: lat[lat.length - 1] ?? 0,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

const [url, file, conc, rate] = process.argv.slice(2);
if (!url || !file) {
  console.error('usage: loadgen URL[,URL...] BODIES_FILE CONCURRENCY [RATE_PER_SEC]');
  process.exit(2);
}
const bodies = JSON.parse(readFileSync(file, 'utf8')) as string[];
run(url.split(','), bodies, Number(conc ?? 64), rate ? Number(rate) : undefined).then(
  (r) => console.log(JSON.stringify(r)),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
