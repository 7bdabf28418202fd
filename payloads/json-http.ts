import type { IncomingHttpHeaders } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import type { Socket } from 'node:net';

/** An answer of any status: the caller says what a status means. `body` is the JSON, or the text when it is not JSON. */
export interface JsonAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: unknown;
  text: string;
}

export interface JsonRequest extends RequestOptions {
  /** HTTPS (with the TLS options of RequestOptions) rather than HTTP or a unix socket. */
  https?: boolean;
  /** The JSON to send; a function gets the connected socket first (the agent names its own address in its report). */
  json?: unknown;
  /** An idle request ends with this message and code ETIMEDOUT. */
  timeoutMs: number;
  timeoutMessage: string;
}

/**
 * One JSON request, as the payload's clients make them (Flocker's API client, the dataset agent's
 * reports, the OpenStack client, the kubelet's Docker client): one place for the framing, each
 * client keeps its own errors.
 */
export function jsonRequest({ https = false, json, timeoutMs, timeoutMessage, headers, ...options }: JsonRequest): Promise<JsonAnswer> {
  return new Promise((resolve, reject) => {
    const req = (https ? httpsRequest : httpRequest)({ ...options, headers: { accept: 'application/json', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          // not JSON: the text
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(timeoutMessage), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    const send = (value: unknown): void => {
      if (value === undefined) {
        req.end();
        return;
      }
      const payload = JSON.stringify(value);
      req.setHeader('content-type', 'application/json');
      req.setHeader('content-length', Buffer.byteLength(payload));
      req.end(payload);
    };
    if (typeof json !== 'function') return send(json);
    req.on('socket', (socket: Socket) => {
      const go = (): void => send((json as (socket: Socket) => unknown)(socket));
      if (socket.connecting) socket.once('connect', go);
      else go();
    });
  });
}
