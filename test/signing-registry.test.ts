import { describe, expect, it } from 'vitest';
import { lookasideFolder, nextSignatureName } from '../src/signing/gpg.js';
import { cosignConfig, cosignTag } from '../src/signing/cosign.js';
import { challengeParams, RegistryClient } from '../src/signing/registry.js';

describe('registry client', () => {
  it('reads WWW-Authenticate challenges', () => {
    expect(
      challengeParams(
        'Bearer realm="https://auth.invalid/token",service="registry.invalid",scope="repository:a/b:pull"',
      ),
    ).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.invalid/token', service: 'registry.invalid', scope: 'repository:a/b:pull' },
    });
    expect(challengeParams('Basic realm="x"').scheme).toBe('basic');
  });

  it('answers a Bearer challenge with a token got with the credentials, never putting them in errors', async () => {
    const seen: Array<{ url: string; authorization?: string }> = [];
    const fake = (async (input: string | URL | Request, init?: RequestInit) => {
      const url = String(input);
      const authorization = (init?.headers as Record<string, string> | undefined)?.Authorization;
      seen.push({ url, ...(authorization ? { authorization } : {}) });
      if (url.startsWith('https://auth.invalid/')) return Response.json({ token: 'tok' });
      if (authorization !== 'Bearer tok') {
        return new Response('', {
          status: 401,
          headers: { 'www-authenticate': 'Bearer realm="https://auth.invalid/token",service="reg"' },
        });
      }
      return new Response('denied', { status: 403 });
    }) as typeof fetch;
    const client = new RegistryClient(
      'reg.invalid',
      'team/memcached',
      { username: 'ci', password: 'pa55word-x', serveraddress: 'reg.invalid' },
      fake,
    );
    const error = await client.getBlob(`sha256:${'0'.repeat(64)}`).catch((e: Error) => e);
    expect((error as Error).message).toMatch(/^registry reg.invalid: reading blob .* refused \(403: denied\)$/);
    expect((error as Error).message).not.toContain('pa55word');
    const token = seen.find((s) => s.url.startsWith('https://auth.invalid/'))!;
    expect(token.url).toContain('scope=repository%3Ateam%2Fmemcached%3Apull%2Cpush');
    expect(token.authorization).toBe(`Basic ${Buffer.from('ci:pa55word-x').toString('base64')}`);
    expect(seen[0]!.url.startsWith('https://reg.invalid/v2/')).toBe(true);
    // Loopback registries are spoken to over HTTP, as the engine does.
    expect(new RegistryClient('127.0.0.1:5000', 'r')).toBeDefined();
  });
});

describe('cosign and lookaside layouts', () => {
  it('names the .sig/.att tags and the config the way cosign does', () => {
    expect(cosignTag(`sha256:${'ab'.repeat(32)}`, 'sig')).toBe(`sha256-${'ab'.repeat(32)}.sig`);
    expect(cosignTag(`sha256:${'ab'.repeat(32)}`, 'att')).toBe(`sha256-${'ab'.repeat(32)}.att`);
    const config = JSON.parse(cosignConfig([{ mediaType: 'm', digest: 'sha256:1', size: 1 }]).toString()) as {
      rootfs: { diff_ids: string[] };
    };
    expect(config.rootfs.diff_ids).toEqual(['sha256:1']);
  });

  it('lays GPG signatures out as containers/image reads a lookaside', () => {
    expect(lookasideFolder('/srv/sigs', 'team/memcached', `sha256:${'cd'.repeat(32)}`)).toBe(
      `/srv/sigs/team/memcached@sha256=${'cd'.repeat(32)}`,
    );
    expect(nextSignatureName([])).toBe('signature-1');
    expect(nextSignatureName(['signature-1', 'signature-2'])).toBe('signature-3');
  });
});
