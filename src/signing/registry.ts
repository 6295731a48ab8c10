import { failure } from '../errors.js';
import type { RegistryCredentials } from '../registry-credentials.js';
import { sha256 } from './payloads.js';

/**
 * The few calls of the registry API v2 that storing and reading cosign's `.sig`/`.att` images needs: blob
 * upload (monolithic), manifest put and get, blob get. Measured first: @sigstore/oci (0.7) exports only
 * `attachArtifactToImage`, which stores an OCI 1.1 artifact with a `subject` (the referrers model), and
 * `getImageDigest`; its registry client is not exported, and it cannot write the `sha256-<hex>.sig`
 * tag layout that `cosign verify --key` reads. So this client, on fetch.
 *
 * HTTP for a loopback registry (as the Docker engine treats 127.0.0.0/8), HTTPS otherwise. Auth: the
 * registry's challenge decides; Basic with the credentials, or a Bearer token from the realm it names
 * (Basic to the realm, or the identity token as an OAuth2 refresh token). Credentials never reach an
 * error message.
 */

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const MANIFEST_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface Manifest {
  readonly schemaVersion: 2;
  readonly mediaType: string;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
}

export interface FetchedManifest {
  readonly bytes: Buffer;
  readonly digest: string;
  readonly mediaType: string;
}

function isLoopback(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** `key="value", key2="value2"` of a WWW-Authenticate challenge. */
export function challengeParams(header: string): { scheme: string; params: Record<string, string> } {
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  for (const m of header.slice(space + 1).matchAll(/([A-Za-z_]+)="([^"]*)"/g)) params[m[1]!.toLowerCase()] = m[2]!;
  return { scheme, params };
}

export class RegistryClient {
  private readonly base: string;
  private authorization: string | undefined;

  constructor(
    readonly registry: string,
    readonly repository: string,
    private readonly credentials?: RegistryCredentials,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {
    this.base = `${isLoopback(registry) ? 'http' : 'https'}://${registry}`;
  }

  /** One request; on a 401 the challenge is answered once and the request repeated. */
  private async request(
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: Buffer } = {},
  ): Promise<Response> {
    const url = path.startsWith('http') ? path : `${this.base}${path}`;
    const send = () =>
      this.fetchImpl(url, {
        method,
        headers: { ...init.headers, ...(this.authorization ? { Authorization: this.authorization } : {}) },
        ...(init.body ? { body: new Uint8Array(init.body) } : {}),
        redirect: 'follow',
      });
    let response: Response;
    try {
      response = await send();
      if (response.status === 401 && (await this.answer(response.headers.get('www-authenticate') ?? '')))
        response = await send();
    } catch (error) {
      throw failure(`registry ${this.registry}: ${method} failed: ${(error as Error).message.split('\n')[0]}`);
    }
    return response;
  }

  /** Sets the Authorization header a challenge asks for; false when there is nothing to answer with. */
  private async answer(header: string): Promise<boolean> {
    const { scheme, params } = challengeParams(header);
    const creds = this.credentials;
    const basic =
      creds && 'username' in creds
        ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`
        : undefined;
    if (scheme === 'basic') {
      if (!basic || this.authorization === basic) return false;
      this.authorization = basic;
      return true;
    }
    if (scheme !== 'bearer' || !params.realm) return false;
    const scope = params.scope ?? `repository:${this.repository}:pull,push`;
    let tokenResponse: Response;
    if (creds && 'identitytoken' in creds) {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: creds.identitytoken,
        service: params.service ?? '',
        scope,
        client_id: 'memcached-hardened',
      });
      tokenResponse = await this.fetchImpl(params.realm, { method: 'POST', body: form });
    } else {
      const url = new URL(params.realm);
      if (params.service) url.searchParams.set('service', params.service);
      url.searchParams.set('scope', scope);
      tokenResponse = await this.fetchImpl(url, { headers: basic ? { Authorization: basic } : {} });
    }
    if (!tokenResponse.ok)
      throw failure(`registry ${this.registry}: the token service refused (${tokenResponse.status})`);
    const body = (await tokenResponse.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw failure(`registry ${this.registry}: the token service answered no token`);
    this.authorization = `Bearer ${token}`;
    return true;
  }

  private async refused(what: string, response: Response): Promise<never> {
    const text = (await response.text().catch(() => '')).replace(/\s+/g, ' ').slice(0, 200);
    throw failure(`registry ${this.registry}: ${what} refused (${response.status}${text ? `: ${text}` : ''})`);
  }

  /** Uploads a blob unless the repository has it; returns its descriptor. */
  async putBlob(bytes: Buffer, mediaType: string, annotations?: Record<string, string>): Promise<Descriptor> {
    const digest = sha256(bytes);
    const descriptor = { mediaType, digest, size: bytes.length, ...(annotations ? { annotations } : {}) };
    const head = await this.request('HEAD', `/v2/${this.repository}/blobs/${digest}`);
    if (head.ok) return descriptor;
    const start = await this.request('POST', `/v2/${this.repository}/blobs/uploads/`);
    if (start.status !== 202) return this.refused(`starting an upload to ${this.repository}`, start);
    const location = new URL(start.headers.get('location') ?? '', `${this.base}/`);
    location.searchParams.set('digest', digest);
    const put = await this.request('PUT', location.toString(), {
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.length) },
      body: bytes,
    });
    if (put.status !== 201) return this.refused(`uploading blob ${digest}`, put);
    return descriptor;
  }

  /** Stores a manifest under a tag; returns its digest. */
  async putManifest(tag: string, manifest: Manifest): Promise<string> {
    const bytes = Buffer.from(JSON.stringify(manifest));
    const put = await this.request('PUT', `/v2/${this.repository}/manifests/${tag}`, {
      headers: { 'Content-Type': manifest.mediaType },
      body: bytes,
    });
    if (put.status !== 201) return this.refused(`storing manifest ${this.repository}:${tag}`, put);
    return sha256(bytes);
  }

  /** The manifest under a tag or digest, or undefined when there is none; a digest reference is checked. */
  async getManifest(reference: string): Promise<FetchedManifest | undefined> {
    const response = await this.request('GET', `/v2/${this.repository}/manifests/${reference}`, {
      headers: { Accept: MANIFEST_TYPES.join(', ') },
    });
    if (response.status === 404) return undefined;
    if (!response.ok) return this.refused(`reading manifest ${this.repository}:${reference}`, response);
    const bytes = Buffer.from(await response.arrayBuffer());
    const digest = sha256(bytes);
    if (reference.startsWith('sha256:') && reference !== digest) {
      throw failure(`registry ${this.registry}: manifest ${reference} came back with digest ${digest}`);
    }
    const mediaType = response.headers.get('content-type')?.split(';')[0] ?? '';
    return { bytes, digest, mediaType };
  }

  /** A blob, checked against its digest. */
  async getBlob(digest: string): Promise<Buffer> {
    const response = await this.request('GET', `/v2/${this.repository}/blobs/${digest}`);
    if (!response.ok) return this.refused(`reading blob ${digest}`, response);
    const bytes = Buffer.from(await response.arrayBuffer());
    if (sha256(bytes) !== digest) throw failure(`registry ${this.registry}: blob ${digest} does not match its digest`);
    return bytes;
  }
}
