import {
  ANONYMOUS_MECHANISM,
  edit,
  ENTRYPOINT,
  EXTRA_USER_BAKED,
  HEALTHCHECK_ANY_ANSWER,
  HEALTHCHECK_CONNECT_ONLY,
  SASL_OFF,
  SECOND_LISTENER,
  TLS_NOT_APPLIED,
  withMechanism,
  withoutFlag,
  type Weakening,
} from '../helpers/weakenings.js';

export { weakenedDockerfile as mutantDockerfile, type Weakening as Mutant } from '../helpers/weakenings.js';

export const MUTANTS: readonly Weakening[] = [
  {
    name: 'udp-on',
    weakness: 'UDP enabled (-U 11211)',
    lines: () => edit(`sed -i 's/^-U 0$/-U 11211/' /etc/memcached.conf`, `grep -qx -- '-U 11211' /etc/memcached.conf`),
  },
  SASL_OFF,
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
    lines: ({ users }) => [`LABEL org.example.debug-credentials="${users[0]?.name}:${users[0]?.password}"`],
  },
  ANONYMOUS_MECHANISM,
  withMechanism('login', 'login-mechanism', 'also offers LOGIN (a mechanism the image does not intend)'),
  EXTRA_USER_BAKED,
  withoutFlag('-F', 'flush-enabled'),
  HEALTHCHECK_CONNECT_ONLY,
  HEALTHCHECK_ANY_ANSWER,
  SECOND_LISTENER,
  // Caught by the TLS checks, which run on the image under test with the --tls build's TLS layer on top.
  TLS_NOT_APPLIED,
];
