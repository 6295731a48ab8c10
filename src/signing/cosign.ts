import type { KeyObject } from 'node:crypto';
import { OCI_MANIFEST, type Descriptor, type Manifest, type RegistryClient } from './registry.js';
import { signBytes, signedEnvelope, simpleSigningPayload, type Statement } from './payloads.js';

/**
 * cosign's registry layout for a key-signed image: the signature is an image tagged `sha256-<hex>.sig`
 * beside the signed manifest, one layer per signature (the simple-signing payload, its signature in the
 * `dev.cosignproject.cosign/signature` annotation); attestations are the image `sha256-<hex>.att`, one
 * layer per DSSE envelope, with its `predicateType` annotation.
 */
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const PREDICATE_TYPE_ANNOTATION = 'predicateType';
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const DSSE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';
const CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json';

/** `sha256:hex` → `sha256-hex.sig` (or `.att`). */
export function cosignTag(digest: string, suffix: 'sig' | 'att'): string {
  return `${digest.replace(':', '-')}.${suffix}`;
}

/** The image config cosign writes for its signature images: no platform, the layers as diff ids. */
export function cosignConfig(layers: readonly Descriptor[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: '',
      created: '0001-01-01T00:00:00Z',
      history: [{ created: '0001-01-01T00:00:00Z' }],
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
}

export interface NewLayer {
  readonly bytes: Buffer;
  readonly mediaType: string;
  readonly annotations: Record<string, string>;
}

/** The layers under a cosign tag ([] when there is none). */
export async function cosignLayers(client: RegistryClient, tag: string): Promise<Descriptor[]> {
  const fetched = await client.getManifest(tag);
  if (!fetched) return [];
  return [...((JSON.parse(fetched.bytes.toString('utf8')) as Partial<Manifest>).layers ?? [])];
}

/**
 * Stores the layers under the tag, after the layers already there that `keep` keeps (cosign appends a
 * signature to those already made); blobs first, the manifest last, so the tag never names a missing blob.
 */
async function storeLayers(
  client: RegistryClient,
  tag: string,
  layers: readonly NewLayer[],
  keep: (d: Descriptor) => boolean,
): Promise<string> {
  const kept = (await cosignLayers(client, tag)).filter(keep);
  const added: Descriptor[] = [];
  for (const layer of layers) added.push(await client.putBlob(layer.bytes, layer.mediaType, layer.annotations));
  const all = [...kept, ...added];
  const config = await client.putBlob(cosignConfig(all), CONFIG_MEDIA_TYPE);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: all,
  };
  return client.putManifest(tag, manifest);
}

/** Signs `repository@digest` cosign-style and stores the signature; returns the signature tag and payload. */
export async function publishSignature(client: RegistryClient, repository: string, digest: string, key: KeyObject) {
  const payload = simpleSigningPayload(repository, digest);
  const signature = signBytes(key, payload);
  const layer = {
    bytes: payload,
    mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
    annotations: { [SIGNATURE_ANNOTATION]: signature.toString('base64') },
  };
  const tag = cosignTag(digest, 'sig');
  await storeLayers(client, tag, [layer], () => true);
  return { tag, payload, signature };
}

/**
 * Signs each statement into a DSSE envelope and stores them under the `.att` tag; an earlier attestation of
 * the same predicate type is replaced (as `cosign attest --replace`), others are kept.
 */
export async function publishAttestations(
  client: RegistryClient,
  digest: string,
  statements: readonly Statement[],
  key: KeyObject,
) {
  const layers = statements.map((body) => ({
    bytes: Buffer.from(JSON.stringify(signedEnvelope(key, body))),
    mediaType: DSSE_MEDIA_TYPE,
    annotations: { [SIGNATURE_ANNOTATION]: '', [PREDICATE_TYPE_ANNOTATION]: body.predicateType },
  }));
  const types = new Set(statements.map((s) => s.predicateType));
  const tag = cosignTag(digest, 'att');
  await storeLayers(client, tag, layers, (d) => !types.has(d.annotations?.[PREDICATE_TYPE_ANNOTATION] ?? ''));
  return { tag, predicateTypes: [...types] };
}
