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
  TLS_PERMISSIVE_CIPHERS,
  USERS_FILE_IN_LAYER,
  SETUID_SHELL,
  SHELL_FILE_CAPABILITY,
  INTERPRETER_BACK,
  ENTRYPOINT_OWNED_BY_RUNTIME_USER,
  ENTRYPOINT_TRACED,
  SASLDB_DUMP_LOGGED,
  SECCOMP_ALLOW_ALL,
  withMechanism,
  withoutFlag,
  type SeccompWeakening,
  type Weakening,
} from '../helpers/weakenings.js';

export { weakenedDockerfile as mutantDockerfile, type Weakening as Mutant } from '../helpers/weakenings.js';

/** Image variants (Dockerfile lines on the real image) and run-time ones (the real image, a weakened profile). */
export const MUTANTS: ReadonlyArray<Weakening | SeccompWeakening> = [
  {
    name: 'udp-on',
    weakness: 'UDP enabled (-U 11211)',
    caughtBy: { file: 'udp', test: 'has no UDP socket on port 11211' },
    lines: () => edit(`sed -i 's/^-U 0$/-U 11211/' /etc/memcached.conf`, `grep -qx -- '-U 11211' /etc/memcached.conf`),
  },
  SASL_OFF,
  {
    name: 'listen-any',
    weakness: 'listens on 0.0.0.0',
    caughtBy: { file: 'bind', test: 'listens only on the private address by default' },
    lines: () => edit(`sed -i 's/-l "\\$listen"$/-l 0.0.0.0/' ${ENTRYPOINT}`, `grep -q -- '-l 0.0.0.0$' ${ENTRYPOINT}`),
  },
  {
    name: 'allowlist-ignored',
    weakness: 'allowlist silently not applied (iptables calls do nothing)',
    caughtBy: {
      file: 'firewall',
      test: 'with the allowlist, the allowed client authenticates and the other cannot connect',
    },
    lines: () =>
      edit(`sed -i '2i iptables() { return 0; }' ${ENTRYPOINT}`, `grep -q '^iptables() { return 0; }' ${ENTRYPOINT}`),
  },
  {
    name: 'memcached-as-root',
    weakness: 'memcached runs as root',
    caughtBy: { file: 'hardening', test: 'memcached and every other process are not root' },
    lines: () => [
      ...edit(
        `sed -i '/refusing to run as root/d' ${ENTRYPOINT}; echo '-u root' >> /etc/memcached.conf`,
        `grep -qx -- '-u root' /etc/memcached.conf`,
      ),
      'USER root',
    ],
  },
  {
    name: 'sasldb-world-readable',
    weakness: 'sasldb mode 0644',
    caughtBy: { file: 'hardening', test: 'the sasldb (baked and runtime copy) belongs to memcache with mode 0600' },
    lines: () =>
      edit('chmod 0644 /etc/sasl2/memcached-sasldb2', `[ "$(stat -c %a /etc/sasl2/memcached-sasldb2)" = 644 ]`),
  },
  {
    name: 'password-in-label',
    weakness: 'a password leaked into a label',
    caughtBy: { file: 'hardening', test: 'no password appears in history, image config, labels' },
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
  TLS_PERMISSIVE_CIPHERS,
  USERS_FILE_IN_LAYER,
  SETUID_SHELL,
  SHELL_FILE_CAPABILITY,
  INTERPRETER_BACK,
  ENTRYPOINT_OWNED_BY_RUNTIME_USER,
  ENTRYPOINT_TRACED,
  SASLDB_DUMP_LOGGED,
  SECCOMP_ALLOW_ALL,
];
