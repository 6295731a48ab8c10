/**
 * Weakenings: one careless or malicious change each, as Dockerfile lines on top of a real image. The
 * mutation check builds each as a mutant and expects the suite to fail; the suite builds some of them
 * itself as the positive controls of its checks, so a check and its control share one definition.
 */

/** What a weakening may need: the image's users, and its client image (which still has every SASL plugin). */
export interface WeakeningContext {
  readonly users: ReadonlyArray<{ readonly name: string; readonly password: string }>;
  readonly clientImage: string;
}

export interface Weakening {
  readonly name: string;
  readonly weakness: string;
  /** Build stages before the weakened image's own FROM (e.g. to take files from the client image). */
  stages?(context: WeakeningContext): string[];
  lines(context: WeakeningContext): string[];
}

export const ENTRYPOINT = '/usr/local/bin/memcached-entrypoint';
export const HEALTHCHECK = '/usr/local/bin/memcached-healthcheck';
export const BAKED_SASLDB = '/etc/sasl2/memcached-sasldb2';
export const RUNTIME_SASLDB = '/run/memcached/memcached-sasldb2';

/** A RUN as root that edits the image and proves the edit took (a no-op weakening would prove nothing). */
export function edit(command: string, proof: string): string[] {
  return ['USER root', `RUN set -e; ${command}; ${proof}`, 'USER memcache'];
}

/** The user an extra-user weakening adds, with a password of its own (not any real user's). */
export const EXTRA_USER = { name: 'backdoor', password: 'backdoor-password-1234' } as const;

/**
 * Shell that adds EXTRA_USER to the sasldb at `db`, under the realm its first entry has (the build realm
 * in a baked db, the hostname in the running copy), keeping the file's owner and mode.
 */
export function addSasldbUserScript(db: string): string {
  return [
    `db5.3_dump -p ${db} | awk -v user=${EXTRA_USER.name} -v password=${EXTRA_USER.password} '`,
    String.raw`header_done && realm == "" { split(substr($0, 2), key, /\\00/); realm = key[2] }`,
    '/^HEADER=END$/ { header_done = 1 }',
    String.raw`/^DATA=END$/ { print " " user "\\00" realm "\\00userPassword"; print " " password }`,
    `{ print }' > ${db}.dump`,
    `&& rm -f ${db}.new && db5.3_load -f ${db}.dump ${db}.new && rm -f ${db}.dump`,
    `&& chown --reference=${db} ${db}.new && chmod 0600 ${db}.new && mv ${db}.new ${db}`,
  ].join(' ');
}

/** The image without one of its memcached hardening flags. */
export function withoutFlag(flag: string, name: string): Weakening {
  return {
    name,
    weakness: `hardening flag ${flag} dropped`,
    lines: () => edit(`sed -i '/^${flag}$/d' /etc/memcached.conf`, `! grep -qx -- '${flag}' /etc/memcached.conf`),
  };
}

/** The image also offering a SASL mechanism, its plugin taken from the client image of the same profile. */
export function withMechanism(mechanism: 'anonymous' | 'login', name: string, weakness: string): Weakening {
  return {
    name,
    weakness,
    stages: ({ clientImage }) => [
      `FROM ${clientImage} AS sasl-plugins`,
      'USER root',
      `RUN mkdir /plugins && cp -a /usr/lib/*/sasl2/lib${mechanism}.so* /plugins/`,
    ],
    lines: () => [
      'USER root',
      'COPY --from=sasl-plugins /plugins/ /tmp/plugins/',
      'USER memcache',
      ...edit(
        `cp -a /tmp/plugins/* "$(dirname "$(find /usr/lib -name 'libplain.so*' | head -n 1)")"/; rm -rf /tmp/plugins; sed -i 's/^mech_list: .*/& ${mechanism}/' /etc/sasl2/memcached.conf`,
        `grep -q '^mech_list: .* ${mechanism}$' /etc/sasl2/memcached.conf`,
      ),
    ],
  };
}

export const SASL_OFF: Weakening = {
  name: 'sasl-off',
  weakness: 'SASL off (no -S)',
  lines: () => edit(`sed -i '/^-S$/d' /etc/memcached.conf`, `! grep -qx -- '-S' /etc/memcached.conf`),
};

export const ANONYMOUS_MECHANISM = withMechanism('anonymous', 'anonymous-mechanism', 'also offers ANONYMOUS: no password needed');

export const EXTRA_USER_BAKED: Weakening = {
  name: 'extra-user',
  weakness: `a user not in the users file (${EXTRA_USER.name}) in the sasldb`,
  lines: () => edit(addSasldbUserScript(BAKED_SASLDB), `db5.3_dump -p ${BAKED_SASLDB} | grep -q '^ ${EXTRA_USER.name}'`),
};

export const HEALTHCHECK_CONNECT_ONLY: Weakening = {
  name: 'healthcheck-connect-only',
  weakness: 'health check only connects (healthy while memcached is frozen)',
  lines: () =>
    edit(
      `printf '%s\\n' '#!/bin/bash' 'exec 3<>"/dev/tcp/$(cut -d, -f1 /run/memcached/listen)/11211"' > ${HEALTHCHECK}`,
      `! grep -q '= 0020 ]' ${HEALTHCHECK}`,
    ),
};

export const HEALTHCHECK_ANY_ANSWER: Weakening = {
  name: 'healthcheck-any-answer',
  weakness: 'health check accepts any answer (healthy without authentication)',
  lines: () => edit(`sed -i 's/ && \\[ "\\\${header:12:4}" = 0020 \\]//' ${HEALTHCHECK}`, `! grep -q '= 0020 ]' ${HEALTHCHECK}`),
};

export const SECOND_LISTENER: Weakening = {
  name: 'second-listener',
  weakness: 'an extra memcached without SASL on port 11212',
  lines: () =>
    edit(
      `sed -i 's/^exec memcached /memcached -U 0 -p 11212 -l 0.0.0.0 \\& exec memcached /' ${ENTRYPOINT}`,
      `grep -q '^memcached -U 0 -p 11212' ${ENTRYPOINT}`,
    ),
};

/** On a TLS image: the certificate still checked and TLS still announced, but the port serves plaintext. */
export const TLS_NOT_APPLIED: Weakening = {
  name: 'tls-plaintext',
  weakness: 'TLS checked and announced at start, but the port silently serves plaintext',
  lines: () => edit(`sed -i 's/^case "\\$tls" in$/case off in/' ${ENTRYPOINT}`, `grep -qx 'case off in' ${ENTRYPOINT}`),
};

/** The weakened image's Dockerfile, on top of the real image. */
export function weakenedDockerfile(baseImage: string, weakening: Weakening, context: WeakeningContext): string {
  return [...(weakening.stages?.(context) ?? []), `FROM ${baseImage}`, ...weakening.lines(context), ''].join('\n');
}
