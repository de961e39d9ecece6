"""Drives `gpu-layers watch` on a pseudo-terminal (test/cli/cli-habits.test.ts): waits for the
first frame, sends a key, and reports the exit status, whether the terminal was in raw mode
during the watch and canonical again after it, and the output's tail. argv: key node cli."""
import json, os, pty, select, signal, sys, termios, time

key, node, cli = sys.argv[1], sys.argv[2], sys.argv[3]
pid, fd = pty.fork()
if pid == 0:
    os.execv(node, [node, cli, 'watch', '--interval', '250ms', '--no-host'])

out = b''
def read_for(seconds, until=None):
    global out
    deadline = time.time() + seconds
    while time.time() < deadline and (until is None or until not in out):
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return False
            if not chunk:
                return False
            out += chunk
    return True

read_for(15, b'\x1b[H')
canonical_during = bool(termios.tcgetattr(fd)[3] & termios.ICANON)
os.write(fd, key.encode('latin1'))
status = None
deadline = time.time() + 5
while time.time() < deadline:
    read_for(0.2)
    done, raw = os.waitpid(pid, os.WNOHANG)
    if done:
        status = os.waitstatus_to_exitcode(raw)
        break
if status is None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
canonical_after = bool(termios.tcgetattr(fd)[3] & termios.ICANON)
print(json.dumps({'status': status, 'canonicalDuring': canonical_during, 'canonicalAfter': canonical_after,
                  'frames': out.count(b'\x1b[H'), 'tail': out[-200:].decode('utf8', 'replace')}))
