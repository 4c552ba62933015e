// Where a simulator listens, and the origin it gives out for itself (its URL, the SNS
// certificate and SubscribeURL links): the bound address, or loopback when bound to every
// interface, since 0.0.0.0 is not an address a client can reach.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export const DEFAULT_SIM_HOST = '127.0.0.1';

export interface Listening {
  port: number;
  /** http://HOST:PORT, without a trailing slash. */
  origin: string;
}

export async function listenOn(server: Server, opts: { port?: number | undefined; host?: string | undefined }): Promise<Listening> {
  const host = opts.host ?? DEFAULT_SIM_HOST;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port, address } = server.address() as AddressInfo;
  const reachable = address === '0.0.0.0' || address === '::' ? DEFAULT_SIM_HOST : address;
  return { port, origin: `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}` };
}
