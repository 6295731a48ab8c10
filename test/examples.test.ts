import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { parse } from 'yaml';
import { parseImageReference } from '../src/image-reference.js';
import { projectPath } from '../src/paths.js';
import { MEMCACHE_UID } from '../src/render.js';
import { deployedByDigest, fillReleaseReference, RELEASE_PLACEHOLDER } from './release/reference.js';

const dir = projectPath('examples/kubernetes');
const manifests = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as { kind: string }));
const byKind = <T>(kind: string) => manifests.find((m) => m.kind === kind) as T;

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  Deployment,
  Secret,
  Service,
  NetworkPolicy,
};

describe('Kubernetes examples (checked offline against the API schemas)', () => {
  it('holds a Deployment, Secret, Service and NetworkPolicy, each valid for its schema', () => {
    expect(manifests.map((m) => m.kind).sort()).toEqual(['Deployment', 'NetworkPolicy', 'Secret', 'Service']);
    for (const manifest of manifests) {
      const Model = MODELS[manifest.kind];
      if (!Model) throw new Error(`no schema for ${manifest.kind}`);
      expect(() => new Model(manifest as never).validate()).not.toThrow();
    }
  });

  it('a manifest with a wrong field type fails the schema check (control)', () => {
    const broken = structuredClone(byKind<Record<string, unknown>>('Service')) as {
      spec: { ports: Array<{ port: unknown }> };
    };
    broken.spec.ports[0]!.port = 'eleven thousand';
    expect(() => new Service(broken as never).validate()).toThrow();
  });

  it('runs memcached with a strict securityContext', () => {
    const deployment = byKind<Deployment>('Deployment');
    const pod = deployment.spec!.template.spec!;
    const container = pod.containers[0]!;
    const seccompProfile = { type: 'Localhost', localhostProfile: 'memcached-hardened/ubuntu-16.04.json' };
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: MEMCACHE_UID, seccompProfile });
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      privileged: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(container.securityContext?.capabilities?.add).toBeUndefined();
    expect(container.volumeMounts?.map((m) => m.mountPath).sort()).toEqual([
      '/run/memcached',
      '/run/secrets/memcached_users',
    ]);
    expect(container.ports).toEqual([{ name: 'memcached', containerPort: 11211, protocol: 'TCP' }]);
  });

  it('admits only labelled clients on TCP 11211, closed by default', () => {
    const policy = byKind<NetworkPolicy>('NetworkPolicy');
    const deployment = byKind<Deployment>('Deployment');
    expect(policy.spec!.podSelector.matchLabels).toEqual(deployment.spec!.template.metadata!.labels);
    expect(policy.spec!.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(policy.spec!.ingress).toEqual([
      {
        from: [{ podSelector: { matchLabels: { 'memcached-client': 'true' } } }],
        ports: [{ protocol: 'TCP', port: 11211 }],
      },
    ]);
    expect(policy.spec!.egress).toEqual([]);
  });

  it('names the image by digest: the placeholder the README fills with release --json\'s "reference"', () => {
    const deployment = byKind<Deployment>('Deployment');
    expect(deployment.spec!.template.spec!.containers[0]!.image).toBe(RELEASE_PLACEHOLDER);
    const reference = `127.0.0.1:5000/platform/memcached@sha256:${'ab'.repeat(32)}`;
    const filled = fillReleaseReference(readFileSync(join(dir, 'deployment.yaml'), 'utf8'), reference);
    const deployed = new Deployment(parseAllDocuments(filled)[0]!.toJS() as never);
    expect(() => deployed.validate()).not.toThrow();
    expect(deployedByDigest(deployed.spec!.template.spec!.containers[0]!.image!)).toBe(reference);
    // Controls: a tag (which can be pushed over) and the unfilled placeholder are not references by digest.
    expect(() => deployedByDigest('127.0.0.1:5000/platform/memcached:1.4.25')).toThrow(/not by digest/);
    expect(() => deployedByDigest(RELEASE_PLACEHOLDER)).toThrow();
    expect(parseImageReference(reference).digest).toBe(`sha256:${'ab'.repeat(32)}`);
  });

  it('the Compose file has no default image: MEMCACHED_IMAGE must name one (the release by digest)', () => {
    const compose = parse(readFileSync(projectPath('examples/compose.yaml'), 'utf8')) as {
      services: { memcached: { image: string } };
    };
    expect(compose.services.memcached.image).toMatch(/^\$\{MEMCACHED_IMAGE:\?[^}]*REGISTRY\/REPOSITORY@sha256:/);
  });

  it('the Service selects the pods and the Secret key is the one the pod mounts', () => {
    const service = byKind<Service>('Service');
    const deployment = byKind<Deployment>('Deployment');
    const secret = byKind<Secret>('Secret');
    expect(service.spec!.selector).toEqual(deployment.spec!.selector.matchLabels);
    const volume = deployment.spec!.template.spec!.volumes!.find((v) => v.secret);
    expect(volume?.secret?.secretName).toBe(secret.metadata!.name);
    expect(Object.keys(secret.stringData ?? {})).toEqual(['memcached_users']);
  });
});
