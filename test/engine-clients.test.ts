import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, type Writable } from 'node:stream';
import Docker from 'dockerode';
import { pack } from 'tar-fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { containerClient } from '../src/engine/containers.js';
import { imageClient } from '../src/engine/images.js';
import type { EngineResponse, EngineTransport, RequestParts } from '../src/engine/transport.js';
import { UserError } from '../src/errors.js';
import { projectPath } from '../src/paths.js';

// The clients against a stand-in for dockerode: what they ask of the engine, and what they make of its answers.

const { modem } = new Docker({ socketPath: join(tmpdir(), 'mh-no-engine.sock') });
const jsonStream = (...messages: object[]) => Readable.from(messages.map((m) => `${JSON.stringify(m)}\n`));

/** A container that prints `output` and exits with `exitCode`; it records what it was given. */
class FakeContainer {
  options?: Docker.ContainerCreateOptions;
  readonly stdin: string[] = [];
  removed = false;
  readonly attached = new PassThrough();
  constructor(
    readonly exitCode = 0,
    readonly output: { stdout?: string; stderr?: string } = {},
    readonly behaviour: {
      failStart?: boolean;
      keepAttachOpen?: boolean;
      archive?: () => Promise<NodeJS.ReadableStream>;
    } = {},
  ) {}
  attach = async () => this.attached;
  start = async () => {
    if (this.behaviour.failStart) throw new Error('cannot start');
  };
  wait = async () => {
    // The engine ends the attach when the container exits (unless it misbehaves).
    if (!this.behaviour.keepAttachOpen && !this.attached.writableEnded) this.attached.end();
    return { StatusCode: this.exitCode };
  };
  export = async () => Readable.from(['the file system']);
  getArchive = async () => (this.behaviour.archive ?? (async () => Readable.from([])))();
  remove = async () => {
    this.removed = true;
  };
}

function fakeDocker(
  container: FakeContainer,
  image: Record<string, unknown> = {},
  engine: Record<string, unknown> = {},
): Docker {
  return {
    modem: {
      followProgress: modem.followProgress.bind(modem),
      demuxStream(stream: NodeJS.ReadableStream, stdout: Writable, stderr: Writable) {
        stream.on('data', (chunk: Buffer) => container.stdin.push(chunk.toString()));
        if (container.output.stdout) stdout.write(Buffer.from(container.output.stdout));
        if (container.output.stderr) stderr.write(Buffer.from(container.output.stderr));
      },
    },
    createContainer: async (options: Docker.ContainerCreateOptions) => {
      container.options = options;
      return container;
    },
    getImage: (name: string) => ({ name, ...image }),
    ...engine,
  } as unknown as Docker;
}

interface Sent extends RequestParts {
  readonly method: string;
  readonly path: string;
}

/** A stand-in for the plain transport: answers each request with `answer`, and records what was asked. */
function fakeTransport(
  answer: (sent: Sent) => EngineResponse = () => ({ status: 200, body: Buffer.alloc(0) }),
): EngineTransport & { sent: Sent[] } {
  const sent: Sent[] = [];
  return {
    sent,
    async request(method, path, parts = {}) {
      const request = { method, path, ...parts };
      sent.push(request);
      return answer(request);
    },
  };
}
const jsonAnswer = (status: number, body: unknown): EngineResponse => ({
  status,
  body: Buffer.from(JSON.stringify(body)),
});
const viaDockerode = (docker: Docker) => imageClient(fakeTransport(), async () => docker);
const containers = (docker: Docker) => containerClient(async () => docker);

afterEach(() => {
  vi.useRealTimers();
});

describe('the container client', () => {
  it(
    'runs without network or capabilities, feeds stdin, ' + 'keeps stdout and stderr apart, and removes the container',
    async () => {
      const container = new FakeContainer(3, { stdout: 'out\u0000bytes', stderr: 'complaint\n' });
      const result = await containers(fakeDocker(container)).run({
        image: 'tools',
        command: ['sh', '-c', 'cat'],
        stdin: 'user:password\n',
        labels: { purpose: 'test' },
      });
      expect(result).toEqual({ exitCode: 3, stdout: Buffer.from('out\u0000bytes'), stderr: 'complaint\n' });
      expect(container.stdin.join('')).toBe('user:password\n');
      expect(container.options).toMatchObject({
        Image: 'tools',
        Cmd: ['sh', '-c', 'cat'],
        Labels: { purpose: 'test' },
        NetworkDisabled: true,
        HostConfig: { NetworkMode: 'none', CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'] },
      });
      expect(container.options).not.toHaveProperty('Entrypoint');
      expect(container.options?.HostConfig).not.toHaveProperty('CpusetCpus');
      expect(container.removed).toBe(true);
    },
  );

  it('joins a network, overrides entrypoint, user and CPUs only when asked', async () => {
    const container = new FakeContainer();
    await containers(fakeDocker(container)).run({
      image: 'i',
      command: [],
      stdin: '',
      labels: {},
      network: 'bench-net',
      entrypoint: [],
      user: 'root',
      cpus: '0',
    });
    expect(container.options).toMatchObject({
      NetworkDisabled: false,
      HostConfig: { NetworkMode: 'bench-net', CpusetCpus: '0' },
      Entrypoint: [],
      User: 'root',
    });
  });

  it('removes the container when it cannot start', async () => {
    const container = new FakeContainer(0, {}, { failStart: true });
    await expect(
      containers(fakeDocker(container)).run({ image: 'i', command: [], stdin: '', labels: {} }),
    ).rejects.toThrow('cannot start');
    expect(container.removed).toBe(true);
  });

  it('does not wait for ever on an attach the engine never ends', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const container = new FakeContainer(0, { stdout: 'done' }, { keepAttachOpen: true });
    const running = containers(fakeDocker(container)).runThenExport(
      { image: 'i', command: [], labels: {}, onLine: () => undefined },
      async () => undefined,
    );
    await vi.advanceTimersByTimeAsync(2000);
    await expect(running).resolves.toBe(0);
    expect(container.attached.destroyed).toBe(true);
  });

  it('hands on non-blank lines and exports the file system only after exit 0', async () => {
    const lines: string[] = [];
    const exported: string[] = [];
    const consume = async (filesystem: Readable) => {
      for await (const chunk of filesystem) exported.push(String(chunk));
    };
    const ok = new FakeContainer(0, { stdout: 'first\n\n  \nsecond\n', stderr: 'warning\n' });
    const request = {
      image: 'base-debootstrap',
      command: ['sh', '-c', 'upgrade'],
      labels: { purpose: 'base-upgrade' },
      onLine: (line: string) => lines.push(line),
    };
    expect(await containers(fakeDocker(ok)).runThenExport(request, consume)).toBe(0);
    expect(lines).toEqual(['first', 'second', 'warning']);
    expect(exported).toEqual(['the file system']);
    expect(ok.options).toEqual({
      Image: 'base-debootstrap',
      Cmd: ['sh', '-c', 'upgrade'],
      Labels: { purpose: 'base-upgrade' },
    });
    const failed = new FakeContainer(100, { stderr: 'E: unable to fetch\n' });
    expect(await containers(fakeDocker(failed)).runThenExport(request, consume)).toBe(100);
    expect(exported).toHaveLength(1);
    expect(ok.removed && failed.removed).toBe(true);
  });
});

describe('the image client', () => {
  it('inspects an image, and says undefined only when the engine does not have it', async () => {
    const info = { Id: 'sha256:abc', Size: 42, RepoTags: ['a:1'], Config: { Labels: { l: 'v' } } };
    const inspect = (answer: EngineResponse) =>
      imageClient(
        fakeTransport(() => answer),
        async () => Promise.reject(new Error('dockerode is not needed')),
      );
    const transport = fakeTransport(() => jsonAnswer(200, info));
    expect(
      await imageClient(transport, async () => Promise.reject(new Error('unused'))).inspectImage(
        'registry.local:5000/a:1',
      ),
    ).toEqual({ id: 'sha256:abc', size: 42, tags: ['a:1'], labels: { l: 'v' } });
    expect(transport.sent).toEqual([{ method: 'GET', path: '/images/registry.local:5000/a:1/json' }]);
    expect(
      await inspect(
        jsonAnswer(200, { Id: 'sha256:def', Size: 1, RepoTags: null, Config: { Labels: null } }),
      ).inspectImage('b'),
    ).toEqual({ id: 'sha256:def', size: 1, tags: [], labels: {} });
    expect(await inspect(jsonAnswer(404, { message: 'No such image: c' })).inspectImage('c')).toBeUndefined();
    await expect(inspect(jsonAnswer(500, { message: 'engine down' })).inspectImage('d')).rejects.toThrow(
      'inspecting d: the engine answered 500 (engine down)',
    );
  });

  it('tags under the name and tag of the reference, latest when it names none, and imports likewise', async () => {
    const transport = fakeTransport(() => ({ status: 201, body: Buffer.alloc(0) }));
    const imported: object[] = [];
    const docker = fakeDocker(
      new FakeContainer(),
      {},
      {
        importImage: async (_tarball: unknown, options: object) => {
          imported.push(options);
          return jsonStream({ status: 'sha256:abc' });
        },
      },
    );
    const images = imageClient(transport, async () => docker);
    await images.tag('sha256:abc', 'registry.local:5000/team/memcached:1.0');
    await images.tag('sha256:abc', 'memcached-hardened');
    await images.importImage(Readable.from([]), 'ubuntu:16.04-debootstrap', ['CMD ["/bin/bash"]']);
    expect(transport.sent).toEqual([
      {
        method: 'POST',
        path: '/images/sha256:abc/tag',
        query: { repo: 'registry.local:5000/team/memcached', tag: '1.0' },
      },
      { method: 'POST', path: '/images/sha256:abc/tag', query: { repo: 'memcached-hardened', tag: 'latest' } },
    ]);
    expect(imported).toEqual([{ repo: 'ubuntu', tag: '16.04-debootstrap', changes: ['CMD ["/bin/bash"]'] }]);
    const refused = imageClient(
      fakeTransport(() => jsonAnswer(409, { message: 'conflict' })),
      async () => docker,
    );
    await expect(refused.tag('sha256:abc', 'x:1')).rejects.toThrow('tagging x:1: the engine answered 409 (conflict)');
  });

  it('removes an image by force', async () => {
    const transport = fakeTransport();
    await imageClient(transport, async () => Promise.reject(new Error('unused'))).removeImage('old:1');
    expect(transport.sent).toEqual([{ method: 'DELETE', path: '/images/old:1', query: { force: '1' } }]);
  });

  it('builds without pulling and rejects with the error the build stream carries', async () => {
    let options: object | undefined;
    const messages: object[] = [];
    const docker = fakeDocker(
      new FakeContainer(),
      {},
      {
        buildImage: async (_context: unknown, given: object) => {
          options = given;
          return jsonStream(
            { stream: 'Step 1/9' },
            {
              errorDetail: { message: 'The command returned a non-zero code: 1' },
              error: 'The command returned a non-zero code: 1',
            },
          );
        },
      },
    );
    const request = {
      dockerfile: 'Dockerfile',
      target: 'server',
      labels: { a: 'b' },
      buildArgs: { APT_MIRROR: 'file:///mirror' },
      noCache: true,
    };
    await expect(viaDockerode(docker).build(Readable.from([]), request, (m) => messages.push(m))).rejects.toThrow(
      'non-zero code: 1',
    );
    expect(options).toEqual({
      dockerfile: 'Dockerfile',
      target: 'server',
      labels: { a: 'b' },
      buildargs: { APT_MIRROR: 'file:///mirror' },
      nocache: true,
      rm: true,
      forcerm: true,
      pull: false,
    });
    expect(messages).toHaveLength(2);
  });

  it('pushes the tag with credentials only when given, and answers with the digest the registry reported', async () => {
    const pushed: object[] = [];
    const answer = (...messages: object[]) =>
      fakeDocker(new FakeContainer(), {
        push: async (options: object) => (pushed.push(options), jsonStream(...messages)),
      });
    const auth = { username: 'u', password: 'p:w', serveraddress: 'registry.local:5000' };
    const reference = 'registry.local:5000/memcached:1.0';
    expect(
      await viaDockerode(answer({ status: 'Pushed' }, { aux: { Tag: '1.0', Digest: 'sha256:d1', Size: 1 } })).push(
        reference,
        auth,
        () => undefined,
      ),
    ).toBe('sha256:d1');
    expect(
      await viaDockerode(answer({ aux: { Digest: 'sha256:d2' } })).push(
        'registry.local:5000/memcached',
        undefined,
        () => undefined,
      ),
    ).toBe('sha256:d2');
    expect(pushed).toEqual([{ tag: '1.0', authconfig: auth }, { tag: 'latest' }]);
    const none = viaDockerode(answer({ status: 'Pushed' })).push(reference, undefined, () => undefined);
    await expect(none).rejects.toThrow(UserError);
    await expect(none).rejects.toThrow(`the registry reported no digest for ${reference}`);
    await expect(
      viaDockerode(answer({ error: 'denied: requested access to the resource is denied' })).push(
        reference,
        auth,
        () => undefined,
      ),
    ).rejects.toThrow(/^denied/);
  });

  it(
    'reads one file from a network-less container, undefined ' + 'when the path is missing, and removes the container',
    async () => {
      const fixtures = projectPath('test/fixtures/sasldb');
      const chunks: Buffer[] = [];
      for await (const chunk of pack(fixtures, { entries: ['two-users.sasldb'] }) as AsyncIterable<Buffer>)
        chunks.push(chunk);
      const archive = Buffer.concat(chunks);
      const engineWith = (archiveAnswer: EngineResponse) =>
        fakeTransport((sent) => {
          if (sent.path === '/containers/create') return jsonAnswer(201, { Id: 'c1' });
          if (sent.path === '/containers/c1/archive') return archiveAnswer;
          return { status: 204, body: Buffer.alloc(0) };
        });
      const read = (transport: EngineTransport, path: string) =>
        imageClient(transport, async () => Promise.reject(new Error('unused'))).readFile('sha256:abc', path);
      const found = engineWith({ status: 200, body: archive });
      expect(await read(found, '/etc/sasl2/memcached-sasldb2')).toEqual(
        readFileSync(join(fixtures, 'two-users.sasldb')),
      );
      expect(found.sent).toEqual([
        {
          method: 'POST',
          path: '/containers/create',
          json: { Image: 'sha256:abc', NetworkDisabled: true, Labels: { 'memcached-hardened.purpose': 'read-file' } },
        },
        { method: 'GET', path: '/containers/c1/archive', query: { path: '/etc/sasl2/memcached-sasldb2' } },
        { method: 'DELETE', path: '/containers/c1', query: { force: '1', v: '1' } },
      ]);
      const missing = engineWith(jsonAnswer(404, { message: 'Could not find the file /nowhere' }));
      expect(await read(missing, '/nowhere')).toBeUndefined();
      const broken = engineWith(jsonAnswer(500, { message: 'engine down' }));
      await expect(read(broken, '/etc/passwd')).rejects.toThrow('engine down');
      expect([missing, broken].every((t) => t.sent.at(-1)?.method === 'DELETE')).toBe(true);
    },
  );
});
