import type Docker from 'dockerode';
import type { EngineMessage } from './types.js';

/** The part of docker-modem that splits the engine's JSON streams into messages. */
export type ProgressModem = Pick<Docker['modem'], 'followProgress'>;

/**
 * Consumes an engine JSON stream, handing each message on; rejects with the engine's own error, which
 * it reports inside a 200 response (a failed build step, an unknown manifest), or with the transport's.
 */
export function followStream(
  modem: ProgressModem,
  stream: NodeJS.ReadableStream,
  onMessage: (m: EngineMessage) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let streamError: string | undefined;
    modem.followProgress(
      stream,
      (error: Error | null) => {
        if (error) reject(error);
        else if (streamError !== undefined) reject(new Error(streamError));
        else resolve();
      },
      (message: EngineMessage) => {
        if (message.error !== undefined || message.errorDetail?.message !== undefined) {
          streamError = message.errorDetail?.message ?? message.error;
        }
        onMessage(message);
      },
    );
  });
}

/** The first regular file of a ustar/pax archive held in memory (what the engine's archive API returns). */
export function firstFileOfTar(archive: Buffer): Buffer | undefined {
  for (let offset = 0; offset + 512 <= archive.length;) {
    const header = archive.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) return undefined;
    const sizeField = header.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim();
    if (!/^[0-7]+$/.test(sizeField)) throw new Error(`unsupported tar size field '${sizeField}'`);
    const size = Number.parseInt(sizeField, 8);
    const type = String.fromCharCode(header[156] ?? 0);
    const data = offset + 512;
    if (data + size > archive.length) throw new Error('truncated tar archive');
    if (type === '0' || type === '\0') return Buffer.from(archive.subarray(data, data + size));
    // Extended headers, directories, links: skip to the next header.
    offset = data + Math.ceil(size / 512) * 512;
  }
  return undefined;
}
