import { createConnection } from 'node:net';

/** Sends one QMP command on a QEMU monitor socket (after the capabilities handshake). */
export function qmp(socketPath: string, command: string, timeoutMs = 3000): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`QMP ${command}: no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    let buffer = '';
    let stage = 0;
    socket.on('data', (data) => {
      buffer += data.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.trim()) continue;
        const message = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc: string } };
        if (message.error) {
          clearTimeout(timer);
          socket.destroy();
          return reject(new Error(`QMP ${command}: ${message.error.desc}`));
        }
        if (stage === 0 && message.QMP) {
          socket.write('{"execute":"qmp_capabilities"}\n');
          stage = 1;
        } else if (stage === 1 && message.return !== undefined) {
          socket.write(`{"execute":"${command}"}\n`);
          stage = 2;
        } else if (stage === 2 && message.return !== undefined) {
          clearTimeout(timer);
          socket.end();
          resolve();
        }
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
