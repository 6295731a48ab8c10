import type { SaslUser } from '../../src/sasldb.js';

/** A weakened variant of the real image: Dockerfile lines applied on top of it. */
export interface Mutant {
  readonly name: string;
  readonly weakness: string;
  lines(users: readonly SaslUser[]): string[];
}

const ENTRYPOINT = '/usr/local/bin/memcached-entrypoint';

/** A RUN as root that edits the image and proves the edit took (a no-op mutant would prove nothing). */
function edit(command: string, proof: string): string[] {
  return ['USER root', `RUN set -e; ${command}; ${proof}`, 'USER memcache'];
}

export const MUTANTS: readonly Mutant[] = [
  {
    name: 'udp-on',
    weakness: 'UDP enabled (-U 11211)',
    lines: () => edit(`sed -i 's/^-U 0$/-U 11211/' /etc/memcached.conf`, `grep -qx -- '-U 11211' /etc/memcached.conf`),
  },
  {
    name: 'sasl-off',
    weakness: 'SASL off (no -S)',
    lines: () => edit(`sed -i '/^-S$/d' /etc/memcached.conf`, `! grep -qx -- '-S' /etc/memcached.conf`),
  },
  {
    name: 'listen-any',
    weakness: 'listens on 0.0.0.0',
    lines: () => edit(`sed -i 's/-l "\\$listen"$/-l 0.0.0.0/' ${ENTRYPOINT}`, `grep -q -- '-l 0.0.0.0$' ${ENTRYPOINT}`),
  },
  {
    name: 'allowlist-ignored',
    weakness: 'allowlist silently not applied (iptables calls do nothing)',
    lines: () => edit(`sed -i '2i iptables() { return 0; }' ${ENTRYPOINT}`, `grep -q '^iptables() { return 0; }' ${ENTRYPOINT}`),
  },
  {
    name: 'memcached-as-root',
    weakness: 'memcached runs as root',
    lines: () => [
      ...edit(`sed -i '/refusing to run as root/d' ${ENTRYPOINT}; echo '-u root' >> /etc/memcached.conf`, `grep -qx -- '-u root' /etc/memcached.conf`),
      'USER root',
    ],
  },
  {
    name: 'sasldb-world-readable',
    weakness: 'sasldb mode 0644',
    lines: () => edit('chmod 0644 /etc/sasl2/memcached-sasldb2', `[ "$(stat -c %a /etc/sasl2/memcached-sasldb2)" = 644 ]`),
  },
  {
    name: 'password-in-label',
    weakness: 'a password leaked into a label',
    lines: (users) => [`LABEL org.example.debug-credentials="${users[0]?.name}:${users[0]?.password}"`],
  },
];

/** The mutant's Dockerfile, on top of the real image. */
export function mutantDockerfile(baseImageId: string, mutant: Mutant, users: readonly SaslUser[]): string {
  return [`FROM ${baseImageId}`, ...mutant.lines(users), ''].join('\n');
}
