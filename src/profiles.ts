import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { badInput } from './errors.js';
import { projectPath } from './paths.js';

const aptName = z.string().regex(/^[a-z0-9][a-z0-9.+-]*$/, 'must be a Debian package or suite name');
const memcachedFlag = z.enum(['-F', '-X', '-Y', '-Z']);

/** What a profile in images/ says: the base, how to bootstrap it, its packages and memcached's quirks. */
export const profileSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9.-]*$/),
    description: z.string().min(1),
    base: z.object({
      image: z.string().regex(/^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9._-]+$/, 'must be NAME:TAG'),
      bootstrap: z.object({
        suite: aptName,
        variant: z.enum(['minbase']),
        keyring: z.string().regex(/^[a-z0-9.-]+\.gpg$/),
      }),
    }),
    apt: z.object({ suites: z.array(aptName).min(1), components: z.array(aptName).min(1) }),
    packages: z.object({
      server: z.array(aptName).min(1),
      tools: z.array(aptName).min(1),
      /** Pulled in but not needed to serve (Perl for memcached-tool, OpenSSL for SASL mechanisms we delete). */
      purgeAfterInstall: z.array(aptName),
    }),
    memcached: z.object({
      minVersion: z.string().regex(/^[0-9][A-Za-z0-9.+~:-]*$/),
      supportedFlags: z.array(memcachedFlag),
      hardeningFlags: z.array(memcachedFlag),
      /** What this version does with UDP and SASL both on: 1.4.25 answers UDP without authentication. */
      udpWithSasl: z.enum(['answers-unauthenticated', 'refused-at-start']),
      /** What its Cyrus SASL does with a SASL step no start preceded: 2.1.26 crashes memcached. */
      saslStepWithoutStart: z.enum(['crashes', 'refused']),
      /** At -c, 1.4.25 runs out of descriptors before it can refuse politely and a worker stops serving. */
      atConnectionLimit: z.enum(['stalls-a-worker', 'refuses-new-connections']),
      /** Whether `-l [addr]` binds one IPv6 address (server_sockets of 1.4.25 and 1.6.18 both parse brackets). */
      ipv6Listen: z.boolean(),
      /** Whether `-o idle_timeout=SECONDS` exists (not in 1.4.25). */
      idleTimeout: z.boolean(),
    }),
    /** How `--tls` images speak TLS: memcached itself (>= 1.5.13 built with TLS, -Z) or a TLS front from
     * the profile's archive (memcached behind it on loopback). `packages` are installed by the TLS layer
     * (with the openssl command, which checks the mounted certificate at start); `keepInstalled` are
     * purgeAfterInstall packages the TLS ones need. */
    tls: z.object({
      via: z.enum(['memcached', 'stunnel']),
      packages: z.array(aptName).min(1),
      keepInstalled: z.array(aptName),
    }),
    iptablesBinary: z.string().regex(/^\/[A-Za-z0-9/._-]+$/),
  })
  .strict()
  .refine((p) => p.memcached.hardeningFlags.every((f) => p.memcached.supportedFlags.includes(f)), {
    message: 'hardeningFlags must all be in supportedFlags (this memcached version lacks one)',
  })
  .refine((p) => p.packages.server.includes('memcached'), { message: 'server packages must include memcached' })
  .refine((p) => !p.packages.purgeAfterInstall.some((name) => p.packages.server.includes(name)), {
    message: 'purgeAfterInstall must not remove a server package',
  })
  .refine((p) => p.tls.via !== 'memcached' || p.memcached.supportedFlags.includes('-Z'), {
    message: 'tls.via memcached needs a memcached built with TLS (-Z in supportedFlags)',
  })
  .refine((p) => p.tls.packages.includes('openssl') && p.tls.keepInstalled.every((name) => p.packages.purgeAfterInstall.includes(name)), {
    message: 'tls.packages must include openssl (the start-up certificate check) and tls.keepInstalled must name purgeAfterInstall packages',
  });

export type Profile = z.infer<typeof profileSchema>;

export const DEFAULT_PROFILE = 'ubuntu-16.04';

/** Names of the profiles shipped in images/. */
export function listProfiles(dir = projectPath('images')): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

/** Validates a parsed profile; `source` names it in the error. */
export function parseProfile(data: unknown, source: string): Profile {
  const result = profileSchema.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    throw badInput(`profile ${source} is invalid${where}: ${issue?.message ?? 'unknown problem'}`);
  }
  return result.data;
}

export function loadProfile(name: string, dir = projectPath('images')): Profile {
  const known = listProfiles(dir);
  if (!known.includes(name)) {
    throw badInput(`unknown profile '${name}' (known: ${known.join(', ')})`);
  }
  const file = join(dir, `${name}.json`);
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw badInput(`profile ${file} is not valid JSON: ${(error as Error).message}`);
  }
  const profile = parseProfile(data, file);
  if (profile.name !== name) throw badInput(`profile ${file} names itself '${profile.name}'`);
  return profile;
}
