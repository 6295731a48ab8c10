import { createHash, sign, verify, type KeyObject } from 'node:crypto';

/**
 * What gets signed, as cosign and in-toto define it; pure functions, no I/O. A signature is ECDSA P-256
 * over SHA-256, DER-encoded, as cosign and `openssl dgst -sha256 -sign` make it.
 */

/** cosign's simple-signing payload: the repository (`registry/repo`) and the manifest digest it vouches for. */
export function simpleSigningPayload(repository: string, digest: string): Buffer {
  // Field order as cosign writes it; the bytes themselves are what is signed, never re-serialized.
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': repository },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
}

export interface SimpleSigningClaims {
  readonly repository: string;
  readonly digest: string;
}

/** The repository and digest a simple-signing payload names, or undefined when it is not one. */
export function readSimpleSigningPayload(payload: Buffer): SimpleSigningClaims | undefined {
  try {
    const parsed = JSON.parse(payload.toString('utf8')) as {
      critical?: {
        identity?: { 'docker-reference'?: unknown };
        image?: { 'docker-manifest-digest'?: unknown };
        type?: unknown;
      };
    };
    const repository = parsed.critical?.identity?.['docker-reference'];
    const digest = parsed.critical?.image?.['docker-manifest-digest'];
    if (parsed.critical?.type !== 'cosign container image signature') return undefined;
    return typeof repository === 'string' && typeof digest === 'string' ? { repository, digest } : undefined;
  } catch {
    return undefined;
  }
}

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const PREDICATE_SBOM = 'https://cyclonedx.org/bom';
export const PREDICATE_SLSA = 'https://slsa.dev/provenance/v1';
/** in-toto's test-result predicate: the verification report. */
export const PREDICATE_TEST_RESULT = 'https://in-toto.io/attestation/test-result/v0.1';
/** OpenVEX's own predicate type (its document's @context): what `cosign attest --type openvex` writes. */
export const PREDICATE_OPENVEX = 'https://openvex.dev/ns/v0.2.0';
/** No public predicate type exists for a seccomp profile: ours, a URN (no host of ours to name). */
export const PREDICATE_SECCOMP = 'urn:memcached-hardened:predicate:seccomp-profile:v1';

/** An in-toto Statement v1 about one image manifest. */
export interface Statement {
  readonly _type: typeof STATEMENT_TYPE;
  readonly subject: ReadonlyArray<{ readonly name: string; readonly digest: Readonly<Record<string, string>> }>;
  readonly predicateType: string;
  readonly predicate: unknown;
}

/** `sha256:hex` → `{ sha256: hex }`. */
export function digestSet(digest: string): Record<string, string> {
  const [algorithm, hex] = digest.split(':');
  if (!algorithm || !hex) throw new Error(`not a digest: ${digest}`);
  return { [algorithm]: hex };
}

export function statement(repository: string, digest: string, predicateType: string, predicate: unknown): Statement {
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: repository, digest: digestSet(digest) }],
    predicateType,
    predicate,
  };
}

/** DSSE's pre-authentication encoding: what a DSSE signature signs. */
export function pae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType);
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

export interface DsseEnvelope {
  readonly payloadType: string;
  /** base64 */
  readonly payload: string;
  readonly signatures: ReadonlyArray<{ readonly keyid: string; readonly sig: string }>;
}

/** ECDSA-SHA256, DER, over exactly these bytes. */
export function signBytes(key: KeyObject, bytes: Buffer): Buffer {
  return sign('sha256', bytes, key);
}

export function verifyBytes(key: KeyObject, bytes: Buffer, signature: Buffer): boolean {
  try {
    return verify('sha256', bytes, key, signature);
  } catch {
    return false;
  }
}

/** The statement in a DSSE envelope signed with `key`. */
export function signedEnvelope(key: KeyObject, body: Statement): DsseEnvelope {
  const payload = Buffer.from(JSON.stringify(body));
  const sig = signBytes(key, pae(IN_TOTO_PAYLOAD_TYPE, payload));
  return {
    payloadType: IN_TOTO_PAYLOAD_TYPE,
    payload: payload.toString('base64'),
    signatures: [{ keyid: '', sig: sig.toString('base64') }],
  };
}

/** The statement an envelope carries when one of its signatures verifies with `key`, else why not. */
export function openEnvelope(key: KeyObject, envelope: DsseEnvelope): Statement | string {
  if (envelope?.payloadType !== IN_TOTO_PAYLOAD_TYPE || typeof envelope.payload !== 'string')
    return 'not an in-toto DSSE envelope';
  const payload = Buffer.from(envelope.payload, 'base64');
  const signed = pae(envelope.payloadType, payload);
  const good = (envelope.signatures ?? []).some(
    (s) => typeof s?.sig === 'string' && verifyBytes(key, signed, Buffer.from(s.sig, 'base64')),
  );
  if (!good) return 'no signature by this key';
  try {
    const parsed = JSON.parse(payload.toString('utf8')) as Statement;
    return parsed._type === STATEMENT_TYPE ? parsed : `not an in-toto Statement v1 (${String(parsed._type)})`;
  } catch {
    return 'the payload is not JSON';
  }
}

/** True when the statement is about exactly this manifest digest. */
export function statementNames(body: Statement, digest: string): boolean {
  const [algorithm, hex] = digest.split(':');
  return (
    Array.isArray(body.subject) && body.subject.some((s) => algorithm !== undefined && s?.digest?.[algorithm] === hex)
  );
}

export const sha256 = (bytes: Buffer | string): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
