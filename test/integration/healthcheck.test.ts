import { beforeAll, describe, expect, it } from 'vitest';
import { docker } from '../helpers/docker.js';
import { isolatedServers } from '../helpers/fixture.js';
import { pollUntil } from '../helpers/poll.js';
import { execIn, type RunningServer, type ServerOptions } from '../helpers/server.js';
import { targetRows } from '../helpers/targets.js';
import { buildVariant } from '../helpers/variants.js';
import { HEALTHCHECK, SASL_OFF } from '../helpers/weakenings.js';

type HealthStatus = 'starting' | 'healthy' | 'unhealthy';

async function engineHealth(server: RunningServer): Promise<{ status: HealthStatus | undefined; lastOutput: string }> {
  const health = (await docker.getContainer(server.container.getId()).inspect()).State.Health;
  return { status: health?.Status as HealthStatus | undefined, lastOutput: health?.Log?.at(-1)?.Output?.trim() ?? '' };
}

/** Waits until the engine's own health status (State.Health) is `status`. */
function untilEngineSays(server: RunningServer, status: HealthStatus): Promise<true> {
  return pollUntil(async () => ((await engineHealth(server)).status === status ? true : undefined), {
    timeoutMs: 30_000,
    intervalMs: 250,
    what: `the engine reports the container ${status}`,
    diagnose: async () => `health: ${JSON.stringify(await engineHealth(server))}\nlogs: ${await server.logs()}`,
  });
}

/** The image's health check script, run by hand: its exit code. */
async function scriptSays(server: RunningServer): Promise<'healthy' | 'unhealthy'> {
  return (await execIn(server.container, [HEALTHCHECK])).exitCode === 0 ? 'healthy' : 'unhealthy';
}

describe.each(targetRows())('%s', (_profile, target) => {
  const bench = isolatedServers('health');
  let server: RunningServer;
  let unauthenticated: RunningServer;
  let gone: RunningServer;

  beforeAll(async () => {
    const imageTest = (await docker.getImage(target.image).inspect()).Config.Healthcheck?.Test;
    if (!imageTest || imageTest[0] !== 'CMD')
      throw new Error(`the image has no CMD health check: ${JSON.stringify(imageTest)}`);
    // The image's own test, polled every second so a state change shows within seconds.
    const options: ServerOptions = {
      healthCheck: {
        test: imageTest as ['CMD', ...string[]],
        interval: 1000,
        timeout: 3000,
        retries: 2,
        startPeriod: 0,
      },
    };
    const saslOff = bench.keep(await buildVariant(target, SASL_OFF));
    [server, unauthenticated, gone] = await Promise.all([
      bench.start(target, options),
      bench.start(saslOff.target, options),
      // memcached gone: the listen address is recorded as the entrypoint would, but nothing serves it.
      bench.start(target, {
        ...options,
        entrypoint: ['sh', '-c', 'echo 127.0.0.1 > /run/memcached/listen && exec sleep 3600'],
        unreachableFromHost: true,
      }),
    ]);
  });

  it('is healthy while memcached serves: the script and the engine agree', async () => {
    expect(await scriptSays(server)).toBe('healthy');
    await untilEngineSays(server, 'healthy');
  });

  it('is unhealthy while memcached is frozen (SIGSTOP from the host), and healthy again after SIGCONT', async () => {
    await untilEngineSays(server, 'healthy');
    const container = docker.getContainer(server.container.getId());
    await container.kill({ signal: 'SIGSTOP' });
    try {
      expect(await scriptSays(server)).toBe('unhealthy');
      await untilEngineSays(server, 'unhealthy');
    } finally {
      await container.kill({ signal: 'SIGCONT' });
    }
    expect(await scriptSays(server)).toBe('healthy');
    await untilEngineSays(server, 'healthy');
  });

  it('is unhealthy when memcached is gone from its listen address', async () => {
    expect(await scriptSays(gone)).toBe('unhealthy');
    await untilEngineSays(gone, 'unhealthy');
  });

  it('is unhealthy when the server answers without authentication (the same image with SASL off)', async () => {
    expect(await scriptSays(unauthenticated)).toBe('unhealthy');
    await untilEngineSays(unauthenticated, 'unhealthy');
  });
});
