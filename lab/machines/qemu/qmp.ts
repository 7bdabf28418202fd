import { createConnection } from 'node:net';

/**
 * Sends one QMP command on a QEMU monitor socket (after the capabilities handshake) and returns
 * what QEMU returned. A connection per command: QEMU serves one monitor client at a time.
 */
export function qmp<T = unknown>(socketPath: string, command: string, args?: Record<string, unknown>, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      socket.destroy();
      settle();
    };
    const timer = setTimeout(() => finish(() => reject(new Error(`QMP ${command}: no answer in ${timeoutMs} ms`))), timeoutMs);
    let buffer = '';
    let stage = 0;
    socket.on('data', (data) => {
      buffer += data.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.trim()) continue;
        const message = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc: string }; event?: string };
        if (message.event) continue;
        if (message.error) return finish(() => reject(new Error(`QMP ${command}: ${message.error?.desc}`)));
        if (stage === 0 && message.QMP) {
          socket.write('{"execute":"qmp_capabilities"}\n');
          stage = 1;
        } else if (stage === 1 && message.return !== undefined) {
          socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) })}\n`);
          stage = 2;
        } else if (stage === 2 && message.return !== undefined) {
          return finish(() => resolve(message.return as T));
        }
      }
    });
    socket.on('error', (error) => finish(() => reject(error)));
  });
}

/** QMP's `query-status`: "running", "paused", "inmigrate", "postmigrate", ... */
export const runState = async (socketPath: string): Promise<string> => (await qmp<{ status: string }>(socketPath, 'query-status')).status;
