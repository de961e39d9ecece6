/**
 * Issue 19, finding 7: whoever binds the vLLM port while vLLM is down must not feed figures. A
 * real /metrics server on loopback, and a fake /proc that says who holds its port: the vLLM API
 * server (the GPU process's parent), a stranger, a stranger beside vLLM on the other IP
 * version, vLLM's API-server children, a holder whose descriptors cannot be read (its owner
 * compared with the GPU processes'), nobody; a URL of another host. A refused port is not even
 * asked. Then the same through readFramework (the layer a person sees), and once on this
 * machine's real /proc with a real listening socket of this process.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { readFramework } from '../../src/layers/read-framework.js';
import { readPortListeners } from '../../src/sources/port-listener.js';
import { ancestry, readCommandLine, readParents } from '../../src/sources/process-tree.js';
import { readVllmEndpoint, type EndpointProcesses } from '../../src/sources/vllm-endpoint.js';

const LOCAL = new Set(['127.0.0.1', 'localhost', '::1']);
const VLLM_UID = 1000;

interface FakeProcess {
  pid: number;
  ppid: number;
  command: string;
  uid?: number;
  /** Socket inodes it holds; absent fd folder when `hidden` (another user's descriptors). */
  sockets?: number[];
  hidden?: boolean;
}

let server: Server;
let port: number;
let requests = 0;
let root: string;

beforeAll(async () => {
  server = createServer((_request, response) => {
    requests++;
    response.end('vllm:num_requests_running{engine="0"} 6\nvllm:kv_cache_usage_perc{engine="0"} 0.25\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
});
beforeEach(() => {
  requests = 0;
  if (root !== undefined) rmSync(root, { recursive: true, force: true });
  root = mkdtempSync(path.join(tmpdir(), 'gpu-layers-pin-'));
});

/** A /proc stand-in: the processes, and LISTEN sockets in net/tcp (IPv4) or net/tcp6. */
function writeProc(processes: FakeProcess[], sockets: { inode: number; uid: number; v6?: boolean }[] | null): void {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root);
  for (const p of processes) {
    const dir = path.join(root, String(p.pid));
    mkdirSync(dir, { recursive: true });
    const comm = p.command.split(' ')[0]!.slice(0, 15);
    writeFileSync(path.join(dir, 'stat'), `${p.pid} (${comm}) S ${p.ppid} ${p.pid} ${p.pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n`);
    writeFileSync(path.join(dir, 'cmdline'), `${p.command.split(' ').join('\0')}\0`);
    const uid = p.uid ?? VLLM_UID;
    writeFileSync(path.join(dir, 'status'), `Name:\t${comm}\nPid:\t${p.pid}\nPPid:\t${p.ppid}\nUid:\t${uid}\t${uid}\t${uid}\t${uid}\n`);
    if (p.hidden) continue;
    mkdirSync(path.join(dir, 'fd'));
    (p.sockets ?? []).forEach((inode, i) => symlinkSync(`socket:[${inode}]`, path.join(dir, 'fd', String(10 + i))));
  }
  if (sockets === null) return;
  mkdirSync(path.join(root, 'net'));
  const header = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode';
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const line = (s: { inode: number; uid: number; v6?: boolean }, i: number) =>
    `   ${i}: ${s.v6 ? '00000000000000000000000001000000' : '0100007F'}:${hexPort} ${s.v6 ? '00000000000000000000000000000000' : '00000000'}:0000 0A 00000000:00000000 00:00000000 00000000 ${String(s.uid).padStart(5)}        0 ${s.inode} 1 0000000000000000 100 0 0 10 0`;
  // A connected socket on the same port is no listener.
  const established = `   9: 0100007F:${hexPort} 0100007F:C350 01 00000000:00000000 00:00000000 00000000  ${VLLM_UID}        0 999 1 0000000000000000 20 4 30 10 -1`;
  writeFileSync(path.join(root, 'net', 'tcp'), [header, ...sockets.filter((s) => !s.v6).map(line), established, ''].join('\n'));
  writeFileSync(path.join(root, 'net', 'tcp6'), [header, ...sockets.filter((s) => s.v6).map(line), ''].join('\n'));
}

/** The GPU processes as readFramework sees them: ancestry and command lines from the /proc stand-in. */
async function gpuView(pids: number[]): Promise<EndpointProcesses> {
  const parents = await readParents(root);
  const processes = await Promise.all(
    pids.map(async (pid) => {
      const chain = ancestry(pid, parents);
      return { pid, ancestry: chain, commands: await Promise.all(chain.map((p) => readCommandLine(p, root))) };
    }),
  );
  return { processes, parents };
}

const API_SERVER: FakeProcess = { pid: 100, ppid: 50, command: 'python3 -m vllm.entrypoints.openai.api_server --port 8000', sockets: [7001] };
const ENGINE: FakeProcess = { pid: 110, ppid: 100, command: 'VLLM::EngineCore' };
const SHELL: FakeProcess = { pid: 50, ppid: 1, command: 'bash' };
const STRANGER: FakeProcess = { pid: 4242, ppid: 1, command: 'nc -lk 8000', uid: 1001, sockets: [7002] };

async function read(pids = [ENGINE.pid], url = `http://127.0.0.1:${port}`, local: ReadonlySet<string> = LOCAL) {
  return readVllmEndpoint(url, 2000, root, local, await gpuView(pids));
}

describe('a local port is pinned to the GPU process tree that holds it', () => {
  it('held by the GPU process\'s parent (the API server): read, and its listeners are the holder', async () => {
    writeProc([SHELL, API_SERVER, ENGINE], [{ inode: 7001, uid: VLLM_UID }]);
    const endpoint = await read();
    expect(endpoint).toMatchObject({ metrics: { ok: true, engines: [{ requestsRunning: 6 }] }, listeners: [API_SERVER.pid], pin: { kind: 'pinned' } });
    expect(requests).toBe(1);
  });

  it('held by a stranger (vLLM down): refused unread, the reason names the holder', async () => {
    writeProc([SHELL, ENGINE, STRANGER], [{ inode: 7002, uid: 1001 }]);
    const endpoint = await read();
    expect(endpoint).toMatchObject({
      metrics: { ok: false, url: `http://127.0.0.1:${port}/metrics`, error: { code: 'VLLM_NOT_PINNED', message: expect.stringContaining(`port ${port} is held by pid 4242 (nc -lk 8000), which is neither a GPU process nor a parent of one`) } },
      listeners: null,
    });
    expect(requests).toBe(0);
  });

  it('a stranger beside vLLM on the other IP version (localhost may reach either): refused', async () => {
    writeProc([SHELL, API_SERVER, ENGINE, STRANGER], [{ inode: 7001, uid: VLLM_UID }, { inode: 7002, uid: 1001, v6: true }]);
    expect((await read()).metrics).toMatchObject({ ok: false, error: { code: 'VLLM_NOT_PINNED', message: expect.stringContaining('pid 4242') } });
    expect(requests).toBe(0);
  });

  it("vLLM's API-server processes sharing their parent's socket: read", async () => {
    const workers = [201, 202].map((pid): FakeProcess => ({ pid, ppid: API_SERVER.pid, command: 'python3 -m vllm.entrypoints.openai.api_server', sockets: [7001] }));
    writeProc([SHELL, API_SERVER, ENGINE, ...workers], [{ inode: 7001, uid: VLLM_UID }]);
    expect(await read()).toMatchObject({ metrics: { ok: true }, listeners: [100, 201, 202] });
  });

  it('a holder whose descriptors cannot be read: read when its owner is the GPU processes\' user, refused when not', async () => {
    writeProc([SHELL, { ...API_SERVER, hidden: true }, ENGINE], [{ inode: 7001, uid: VLLM_UID }]);
    // No listener seen: the figures go to the GPU processes that name vLLM, all of this owner.
    expect(await read()).toMatchObject({ metrics: { ok: true }, listeners: [], pin: { kind: 'same-owner', uid: VLLM_UID } });
    expect(requests).toBe(1);

    writeProc([SHELL, API_SERVER, ENGINE, { ...STRANGER, hidden: true }], [{ inode: 7002, uid: 1001 }]);
    expect((await read()).metrics).toMatchObject({
      ok: false,
      error: { code: 'VLLM_NOT_PINNED', message: expect.stringMatching(new RegExp(`port ${port} is held by a process of uid 1001 whose descriptors cannot be read here, but GPU process 110 runs as uid ${VLLM_UID}`)) },
    });
    expect(requests).toBe(1);
  });

  it('nothing listens on the port: unreachable, unread; no /proc/net: not pinned, unread', async () => {
    writeProc([SHELL, API_SERVER, ENGINE], []);
    expect((await read()).metrics).toMatchObject({ ok: false, error: { code: 'VLLM_UNREACHABLE', message: expect.stringContaining(`nothing listens on port ${port}`) } });
    writeProc([SHELL, API_SERVER, ENGINE], null);
    expect((await read()).metrics).toMatchObject({ ok: false, error: { code: 'VLLM_NOT_PINNED', message: expect.stringContaining('net/tcp and tcp6 cannot be read') } });
    expect(requests).toBe(0);
  });

  it('GPU processes not visible at this /proc root (another PID namespace): the reason says where to look', async () => {
    writeProc([SHELL, API_SERVER], [{ inode: 7001, uid: VLLM_UID }]);
    expect((await read([987654])).metrics).toMatchObject({ ok: false, error: { message: expect.stringContaining('--proc-root') } });
  });

  it('127.0.0.2 is loopback too: pinned, though not among the names given', async () => {
    writeProc([SHELL, ENGINE, STRANGER], [{ inode: 7002, uid: 1001 }]);
    expect((await read([ENGINE.pid], `http://127.0.0.2:${port}`, new Set())).metrics).toMatchObject({ ok: false, error: { code: 'VLLM_NOT_PINNED' } });
  });

  it('a URL of another host cannot be pinned: read, not pinned, and no listener (the layer matches by command line)', async () => {
    writeProc([SHELL, ENGINE, STRANGER], [{ inode: 7002, uid: 1001 }]);
    // "localhost" stands for another host here: it is not among the local names given.
    const endpoint = await read([ENGINE.pid], `http://localhost:${port}`, new Set());
    expect(endpoint).toMatchObject({ metrics: { ok: true }, listeners: null, pin: { kind: 'not-pinned', detail: expect.stringContaining('localhost is not this host') } });
  });
});

describe('through readFramework: the layer a person sees', () => {
  it('a stranger on the port: the vLLM process keeps its layer, every /metrics figure null with the reason', async () => {
    writeProc([SHELL, ENGINE, STRANGER], [{ inode: 7002, uid: 1001 }]);
    const reading = await readFramework([ENGINE.pid], { vllm: [`http://127.0.0.1:${port}`] }, root);
    expect(reading.metrics).toEqual([{ location: `http://127.0.0.1:${port}/metrics`, ok: false, error: expect.objectContaining({ code: 'VLLM_NOT_PINNED' }) }]);
    const result = reading.results.get(ENGINE.pid)!;
    expect(result.layer).toMatchObject({ matchedBy: 'command-line', kvCacheUsage: null, requestsRunning: null });
    expect('errors' in result && result.errors['layers.framework.kvCacheUsage']).toMatchObject({ code: 'VLLM_NOT_PINNED', message: expect.stringContaining('pid 4242') });
    expect(requests).toBe(0);
  });

  it('the API server on the port: the figures, matched by the listening socket', async () => {
    writeProc([SHELL, API_SERVER, ENGINE], [{ inode: 7001, uid: VLLM_UID }]);
    const reading = await readFramework([ENGINE.pid], { vllm: [`http://127.0.0.1:${port}`] }, root);
    expect(reading.results.get(ENGINE.pid)!.layer).toMatchObject({ matchedBy: 'listening-socket', kvCacheUsage: 0.25, requestsRunning: 6 });
  });
});

describe("this machine's /proc", () => {
  it("finds this process holding its real listening socket, with this user's uid, and pins to it", async () => {
    const listeners = await readPortListeners(port, '/proc');
    expect(listeners).toMatchObject({ ok: true });
    const sockets = listeners.ok ? listeners.sockets : [];
    expect(sockets.flatMap((s) => s.holders)).toContain(process.pid);
    expect(sockets.every((s) => s.uid === process.geteuid!())).toBe(true);

    const parents = await readParents('/proc');
    const self = { pid: process.pid, ancestry: ancestry(process.pid, parents), commands: [await readCommandLine(process.pid)] };
    const pinned = await readVllmEndpoint(`http://127.0.0.1:${port}`, 2000, '/proc', LOCAL, { processes: [self], parents });
    expect(pinned).toMatchObject({ metrics: { ok: true }, pin: { kind: 'pinned' } });
    expect(pinned.listeners).toContain(process.pid);

    // A "GPU process" this process is no parent of: the port is refused, naming this process.
    const init = { pid: 1, ancestry: [1], commands: [await readCommandLine(1)] };
    const refused = await readVllmEndpoint(`http://127.0.0.1:${port}`, 2000, '/proc', LOCAL, { processes: [init], parents });
    expect(refused.metrics).toMatchObject({ ok: false, error: { code: 'VLLM_NOT_PINNED', message: expect.stringContaining(`held by pid ${process.pid}`) } });
  });
});
