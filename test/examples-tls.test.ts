import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Secret } from 'kubernetes-models/v1/Secret';
import { projectPath } from '../src/paths.js';
import { MEMCACHE_UID } from '../src/render.js';
import { TLS_SECRET_DIR, TLS_SECRET_FILES } from '../src/tls.js';
import { RELEASE_PLACEHOLDER } from './release/reference.js';

const manifest = <T>(file: string) =>
  parseAllDocuments(readFileSync(projectPath('examples/tls/kubernetes', file), 'utf8'))[0]!.toJS() as T;
const deployment = new Deployment(manifest('deployment.yaml'));
const secret = new Secret(manifest('tls-secret.yaml'));
/** cert-manager's Certificate: no offline schema here, so only the fields the example relies on. */
const certificate = manifest<{ apiVersion: string; kind: string; spec: { secretName: string; usages: string[] } }>(
  'certificate.yaml',
);
const fileNames = Object.values(TLS_SECRET_FILES).sort();

describe('TLS examples', () => {
  it('Kubernetes: the Deployment and the TLS Secret are valid for their schemas; a broken one is not (control)', () => {
    expect(() => deployment.validate()).not.toThrow();
    expect(() => secret.validate()).not.toThrow();
    const broken = new Secret({ ...manifest<object>('tls-secret.yaml'), type: 42 } as never);
    expect(() => broken.validate()).toThrow();
  });

  it(
    'Kubernetes: mounts the secret cert-manager (or kubectl) ' +
      'writes, with its key names, read-only where the image reads it',
    () => {
      const pod = deployment.spec!.template.spec!;
      const container = pod.containers[0]!;
      const volume = pod.volumes!.find((v) => v.secret?.secretName === secret.metadata!.name);
      expect(volume?.secret?.items).toBeUndefined();
      expect(container.volumeMounts).toContainEqual({ name: volume!.name, mountPath: TLS_SECRET_DIR, readOnly: true });
      expect(secret.type).toBe('kubernetes.io/tls');
      expect(Object.keys(secret.stringData ?? {}).sort()).toEqual(fileNames);
      expect(certificate).toMatchObject({
        apiVersion: 'cert-manager.io/v1',
        kind: 'Certificate',
        spec: { secretName: secret.metadata!.name, usages: ['server auth'] },
      });
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: MEMCACHE_UID,
        fsGroup: MEMCACHE_UID,
        seccompProfile: { type: 'Localhost', localhostProfile: 'memcached-hardened/ubuntu-16.04-tls.json' },
      });
      expect(container.securityContext).toMatchObject({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      // By digest, filled in from the --tls release's "reference" (test/examples.test.ts fills the other one).
      expect(container.image).toBe(RELEASE_PLACEHOLDER);
    },
  );

  it('Compose: the certificate files are secrets under the image’s secret folder, with its file names', () => {
    const compose = parse(readFileSync(projectPath('examples/tls/compose.yaml'), 'utf8')) as {
      services: {
        memcached: {
          image: string;
          secrets: Array<string | { source: string; target: string }>;
          security_opt: string[];
          pids_limit: number;
        };
      };
      secrets: Record<string, { file: string }>;
    };
    const mounted = compose.services.memcached.secrets.flatMap((s) => (typeof s === 'string' ? [] : [s]));
    expect(mounted.map((s) => `/run/secrets/${s.target}`).sort()).toEqual(
      fileNames.map((name) => `${TLS_SECRET_DIR}/${name}`),
    );
    for (const { source, target } of mounted)
      expect(compose.secrets[source]?.file).toMatch(new RegExp(`/${target.split('/').pop()!.replace('.', '\\.')}$`));
    expect(compose.services.memcached.image).toMatch(/^\$\{MEMCACHED_IMAGE:\?[^}]*--tls release by digest/);
    // Under the TLS image's own seccomp profile, with a pids limit that leaves the 16.04 front its threads.
    expect(compose.services.memcached.security_opt).toEqual([
      expect.stringMatching(/^seccomp=\$\{MEMCACHED_SECCOMP_PROFILE:-seccomp\/debian-12-tls\.json\}$/),
    ]);
    expect(compose.services.memcached.pids_limit).toBe(1088);
  });
});
