import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  IN_TOTO_PAYLOAD_TYPE,
  openEnvelope,
  pae,
  readSimpleSigningPayload,
  signBytes,
  signedEnvelope,
  simpleSigningPayload,
  statement,
  statementNames,
  verifyBytes,
} from '../src/signing/payloads.js';

const digest = `sha256:${'ab'.repeat(32)}`;
const key = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

describe('simple-signing payload', () => {
  it('names the repository and digest as cosign does, and reads back', () => {
    const payload = simpleSigningPayload('127.0.0.1:5000/memcached-hardened', digest);
    expect(payload.toString()).toBe(
      '{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/memcached-hardened"},' +
        `"image":{"docker-manifest-digest":"${digest}"},` +
        `"type":"cosign container image signature"},"optional":null}`,
    );
    expect(readSimpleSigningPayload(payload)).toEqual({ repository: '127.0.0.1:5000/memcached-hardened', digest });
    expect(readSimpleSigningPayload(Buffer.from('{"critical":{"type":"other"}}'))).toBeUndefined();
    expect(readSimpleSigningPayload(Buffer.from('not json'))).toBeUndefined();
  });

  it('a signature verifies over exactly these bytes, under this key only', () => {
    const payload = simpleSigningPayload('r/m', digest);
    const signature = signBytes(key.privateKey, payload);
    expect(verifyBytes(key.publicKey, payload, signature)).toBe(true);
    expect(verifyBytes(other.publicKey, payload, signature)).toBe(false);
    expect(verifyBytes(key.publicKey, Buffer.concat([payload, Buffer.from(' ')]), signature)).toBe(false);
    expect(verifyBytes(key.publicKey, payload, Buffer.from('garbage'))).toBe(false);
  });
});

describe('DSSE', () => {
  it('PAE is the DSSE v1 encoding (lengths in bytes)', () => {
    expect(pae('t', Buffer.from('hé')).toString()).toBe('DSSEv1 1 t 3 hé');
    expect(pae(IN_TOTO_PAYLOAD_TYPE, Buffer.from('{}')).toString()).toBe('DSSEv1 28 application/vnd.in-toto+json 2 {}');
  });

  it('an envelope opens under its key to the statement about the digest; not under another key, nor altered', () => {
    const body = statement('r/m', digest, 'https://example.invalid/p', { a: 1 });
    const envelope = signedEnvelope(key.privateKey, body);
    const opened = openEnvelope(key.publicKey, envelope);
    expect(opened).toEqual(body);
    expect(statementNames(body, digest)).toBe(true);
    expect(statementNames(body, `sha256:${'cd'.repeat(32)}`)).toBe(false);
    expect(openEnvelope(other.publicKey, envelope)).toBe('no signature by this key');
    const payload = Buffer.from(envelope.payload, 'base64');
    payload[10] = payload[10]! ^ 1;
    expect(openEnvelope(key.publicKey, { ...envelope, payload: payload.toString('base64') })).toBe(
      'no signature by this key',
    );
    expect(openEnvelope(key.publicKey, { ...envelope, payloadType: 'text/plain' })).toBe(
      'not an in-toto DSSE envelope',
    );
  });
});
