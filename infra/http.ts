// Reading a request body with a size cap, for vault-dr's own small HTTP endpoints (the codec
// endpoint, the custodian share intake): a body over the cap is refused without buffering it.
import type * as http from 'node:http';

export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`body larger than ${limit} bytes`);
  }
}

/**
 * The whole body, or BodyTooLarge as soon as it passes `max` bytes; the rest is not buffered.
 * The caller answers 413 and then destroys the request (its socket carries the answer).
 */
export function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      if (size > max) return;
      size += c.length;
      if (size > max) {
        chunks.length = 0;
        reject(new BodyTooLarge(max));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
