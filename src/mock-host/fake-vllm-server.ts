/** A loopback HTTP server answering every request with the current text of a stand-in /metrics. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MetricsServer {
  url: string;
  port: number;
  /** Replaces what the next scrape gets. */
  set(text: string): void;
  close(): Promise<void>;
}

export async function serveMetrics(text: string): Promise<MetricsServer> {
  let body = text;
  const server: Server = createServer((_, response) => response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    set: (next) => {
      body = next;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
