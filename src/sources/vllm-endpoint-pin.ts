/**
 * Whether a vLLM /metrics URL's figures may be taken: whoever binds the port while vLLM is down
 * (or beside it, on the other IP version) must not feed figures to vLLM's GPU processes. The
 * rule, pure over what /proc shows:
 *
 * - A URL of another host cannot be checked: taken as the user's word, not pinned (its figures
 *   go to the GPU processes whose command line names vLLM, and the layer says `command-line`).
 * - A URL of this host is pinned: every process holding a LISTEN socket on its port must be a
 *   GPU process, a parent of one, or a child of such a holder (vLLM's API-server processes
 *   share their parent's socket); only then is the page fetched, and its figures go to those
 *   holders' GPU descendants.
 * - A socket whose holders cannot be seen (another user's descriptors) is taken only when its
 *   owner, which /proc/net shows, is the user every receiving GPU process runs as: the same
 *   trust as the companion files (a figure comes from its process's owner or from no one).
 *
 * Anything else is refused with the reason, and the page is not read at all.
 */
import type { FieldError } from '../sample/schema.js';
import type { PortListeners } from './port-listener.js';

/** A GPU process as the framework layer sees it (the shape of layers' GpuProcessInfo). */
export interface PinCandidate {
  pid: number;
  /** The process and its ancestors, nearest first. */
  ancestry: readonly number[];
  /** Their command lines (null where not readable: not visible at this /proc root). */
  commands: readonly (string | null)[];
}

export interface PinFacts {
  port: number;
  listeners: PortListeners;
  processes: readonly PinCandidate[];
  /** pid -> parent pid of every process visible. */
  parents: ReadonlyMap<number, number>;
  /** The command line of each holder seen (for the reason). */
  holderCommands: ReadonlyMap<number, string | null>;
  /** The uids each receiving GPU process writes as (NSpid-independent: /proc/<pid>/status), null if unreadable. */
  writerUids: ReadonlyMap<number, readonly number[] | null>;
  procRoot: string;
}

export type EndpointPin =
  /** Figures go to the GPU descendants of `listeners`. */
  | { kind: 'pinned'; listeners: number[]; detail: string }
  /** Holders not visible, owned by the receivers' user: figures go to the command-line match. */
  | { kind: 'same-owner'; uid: number; detail: string }
  | { kind: 'not-pinned'; detail: string }
  | { kind: 'refused'; error: FieldError };

const VLLM = /vllm/i;

function refused(code: string, message: string): EndpointPin {
  return { kind: 'refused', error: { code, nvmlReturn: null, message } };
}

/** A URL of another host: nothing on this host can say who answers there. */
export function notPinned(host: string): EndpointPin {
  return { kind: 'not-pinned', detail: `not pinned: ${host} is not this host, so who answers there cannot be checked` };
}

/** The receivers a hidden holder's owner is compared with, when no holder is visible. */
export function commandLineReceivers(processes: readonly PinCandidate[]): number[] {
  return processes.filter((p) => p.commands.some((command) => command !== null && VLLM.test(command))).map((p) => p.pid);
}

function named(pid: number, commands: ReadonlyMap<number, string | null>): string {
  const command = commands.get(pid);
  if (command === null || command === undefined || command === '') return `pid ${pid}`;
  return `pid ${pid} (${command.length > 60 ? `${command.slice(0, 60)}...` : command})`;
}

export function pinEndpoint(facts: PinFacts): EndpointPin {
  const { port, listeners, processes, parents } = facts;
  if (!listeners.ok) return refused('VLLM_NOT_PINNED', `who listens on port ${port} cannot be seen (${listeners.why}), so its figures are not taken`);
  if (listeners.sockets.length === 0) {
    return refused(
      'VLLM_UNREACHABLE',
      `nothing listens on port ${port} in this network namespace (${facts.procRoot}/net/tcp, tcp6): if vLLM runs in a container behind a published port, give the container's own address`,
    );
  }
  const trusted = new Set(processes.flatMap((p) => p.ancestry));
  const holders = new Set(listeners.sockets.flatMap((s) => s.holders));
  const accepted = (pid: number, depth = 0): boolean => {
    if (trusted.has(pid)) return true;
    const parent = parents.get(pid);
    return depth < 64 && parent !== undefined && holders.has(parent) && accepted(parent, depth + 1);
  };
  const stranger = [...holders].sort((a, b) => a - b).find((pid) => !accepted(pid));
  if (stranger !== undefined) {
    const invisible = processes.length > 0 && processes.every((p) => p.commands[0] === null);
    return refused(
      'VLLM_NOT_PINNED',
      `port ${port} is held by ${named(stranger, facts.holderCommands)}, which is neither a GPU process nor a parent of one: its figures are not taken` +
        (invisible ? ` (no GPU process is visible in ${facts.procRoot}: another PID namespace? give the host's /proc with --proc-root)` : ''),
    );
  }
  const listening = [...holders].sort((a, b) => a - b);
  const hidden = listeners.sockets.filter((s) => s.holders.length === 0);
  if (hidden.length === 0) return { kind: 'pinned', listeners: listening, detail: `pinned: port ${port} is held by ${listening.map((pid) => `pid ${pid}`).join(', ')}` };

  const receivers = listening.length > 0 ? processes.filter((p) => p.ancestry.some((a) => holders.has(a))).map((p) => p.pid) : commandLineReceivers(processes);
  for (const socket of hidden) {
    const unseen = `port ${port} is held by a process of uid ${socket.uid} whose descriptors cannot be read here`;
    if (receivers.length === 0) return refused('VLLM_NOT_PINNED', `${unseen}, and no GPU process names vLLM to compare its owner with: its figures are not taken`);
    const other = receivers.find((pid) => !(facts.writerUids.get(pid) ?? []).includes(socket.uid));
    if (other !== undefined) {
      const uids = facts.writerUids.get(other);
      return refused(
        'VLLM_NOT_PINNED',
        `${unseen}, but GPU process ${other} runs as ${uids === null || uids === undefined ? 'a user that cannot be read' : `uid ${uids.join('/')}`}: its figures are not taken (run gpu-layers as root or as uid ${socket.uid} to see which process holds the port)`,
      );
    }
  }
  const owner = hidden[0]!.uid;
  if (listening.length > 0) return { kind: 'pinned', listeners: listening, detail: `pinned: port ${port} is held by ${listening.map((pid) => `pid ${pid}`).join(', ')} and by processes of uid ${owner}` };
  return { kind: 'same-owner', uid: owner, detail: `pinned to a user: port ${port} is held by a process of uid ${owner}, the user of the GPU processes that name vLLM` };
}
