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

/** The check that must catch a weakening: a verification file and a part of the test's title. */
export interface IntendedCheck {
  /** The file's short name, as in VERIFICATION_FILES (`listeners` for test/integration/listeners.test.ts). */
  readonly file: string;
  /** A part of the test's title (literal text, not a pattern). */
  readonly test: string;
  /** The check must see the image's TLS build (the mutation check builds one only then). */
  readonly tls?: boolean;
}

/** What every weakening says: its name, the weakness and the check that must catch it. */
interface WeakeningBase {
  readonly name: string;
  readonly weakness: string;
  /** The check that must catch it: the mutation check runs that one and reports whether it did; a control
   * built from it in a test is caught by that same check. */
  readonly caughtBy: IntendedCheck;
  /** Built on the runtime-credentials image where the weakness only shows there (a baked image has no such path). */
  readonly credentials?: 'runtime';
}

export interface Weakening extends WeakeningBase {
  /** Build stages before the weakened image's own FROM (e.g. to take files from the client image). */
  stages?(context: WeakeningContext): string[];
  lines(context: WeakeningContext): string[];
}

export const ENTRYPOINT = '/usr/local/bin/memcached-entrypoint';
export const HEALTHCHECK = '/usr/local/bin/memcached-healthcheck';
/** Two of the entrypoint's phases (the files it sources). */
export const TLS_PHASE = '/usr/local/lib/memcached-hardened/tls.sh';
export const CREDENTIALS_PHASE = '/usr/local/lib/memcached-hardened/credentials.sh';
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
    caughtBy: { file: 'flags', test: `${flag} is enforced by behaviour` },
    lines: () => edit(`sed -i '/^${flag}$/d' /etc/memcached.conf`, `! grep -qx -- '${flag}' /etc/memcached.conf`),
  };
}

/** The image also offering a SASL mechanism, its plugin taken from the client image of the same profile. */
export function withMechanism(mechanism: 'anonymous' | 'login', name: string, weakness: string): Weakening {
  return {
    name,
    weakness,
    caughtBy: { file: 'mechanisms', test: 'announces exactly PLAIN' },
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
        `cp -a /tmp/plugins/* "$(dirname "$(find /usr/lib -name 'libplain.so*' | head -n 1)")"/; ` +
          `rm -rf /tmp/plugins; sed -i 's/^mech_list: .*/& ${mechanism}/' /etc/sasl2/memcached.conf`,
        `grep -q '^mech_list: .* ${mechanism}$' /etc/sasl2/memcached.conf`,
      ),
    ],
  };
}

export const SASL_OFF: Weakening = {
  name: 'sasl-off',
  weakness: 'SASL off (no -S)',
  caughtBy: { file: 'auth', test: 'serves no data without authentication' },
  lines: () => edit(`sed -i '/^-S$/d' /etc/memcached.conf`, `! grep -qx -- '-S' /etc/memcached.conf`),
};

export const ANONYMOUS_MECHANISM = withMechanism(
  'anonymous',
  'anonymous-mechanism',
  'also offers ANONYMOUS: no password needed',
);

export const EXTRA_USER_BAKED: Weakening = {
  name: 'extra-user',
  weakness: `a user not in the users file (${EXTRA_USER.name}) in the sasldb`,
  caughtBy: { file: 'users', test: 'the running sasldb holds exactly the users file' },
  lines: () =>
    edit(addSasldbUserScript(BAKED_SASLDB), `db5.3_dump -p ${BAKED_SASLDB} | grep -q '^ ${EXTRA_USER.name}'`),
};

export const HEALTHCHECK_CONNECT_ONLY: Weakening = {
  name: 'healthcheck-connect-only',
  weakness: 'health check only connects (healthy while memcached is frozen)',
  caughtBy: { file: 'healthcheck', test: 'is unhealthy while memcached is frozen' },
  lines: () =>
    edit(
      `printf '%s\\n' '#!/bin/bash' 'exec 3<>"/dev/tcp/$(cut -d, -f1 /run/memcached/listen)/11211"' > ${HEALTHCHECK}`,
      `! grep -q '= 0020 ]' ${HEALTHCHECK}`,
    ),
};

export const HEALTHCHECK_ANY_ANSWER: Weakening = {
  name: 'healthcheck-any-answer',
  weakness: 'health check accepts any answer (healthy without authentication)',
  caughtBy: { file: 'healthcheck', test: 'is unhealthy when the server answers without authentication' },
  lines: () =>
    edit(`sed -i 's/ && \\[ "\\\${header:12:4}" = 0020 \\]//' ${HEALTHCHECK}`, `! grep -q '= 0020 ]' ${HEALTHCHECK}`),
};

/** A second memcached, without SASL, on every address: started before anything else, so in every TLS mode too. */
export const SECOND_LISTENER: Weakening = {
  name: 'second-listener',
  weakness: 'an extra memcached without SASL on port 11212',
  caughtBy: { file: 'listeners', test: 'every reachable socket in its namespace' },
  lines: () =>
    edit(
      `sed -i 's/^set -eu$/&\\nmemcached -d -U 0 -p 11212 -l 0.0.0.0/' ${ENTRYPOINT}`,
      `grep -qx 'memcached -d -U 0 -p 11212 -l 0.0.0.0' ${ENTRYPOINT}`,
    ),
};

/** On a TLS image: the certificate still checked and TLS still announced, but the port serves plaintext. */
export const TLS_NOT_APPLIED: Weakening = {
  name: 'tls-plaintext',
  weakness: 'TLS checked and announced at start, but the port silently serves plaintext',
  // On the TLS image the port serves plaintext and loopback holds nothing: the socket inventory differs.
  caughtBy: { file: 'listeners', test: 'every reachable socket in its namespace', tls: true },
  lines: () => edit(`sed -i 's/^case "\\$tls" in$/case off in/' ${ENTRYPOINT}`, `grep -qx 'case off in' ${ENTRYPOINT}`),
};

/** The weakened image's Dockerfile, on top of the real image. */
export function weakenedDockerfile(baseImage: string, weakening: Weakening, context: WeakeningContext): string {
  return [...(weakening.stages?.(context) ?? []), `FROM ${baseImage}`, ...weakening.lines(context), ''].join('\n');
}

/** On a TLS image: the TLS 1.2 cipher list opened to everything the OpenSSL has (no forward secrecy, CBC, ...). */
export const TLS_PERMISSIVE_CIPHERS: Weakening = {
  name: 'tls-permissive-ciphers',
  weakness: 'the TLS cipher list accepts every suite the OpenSSL has (RSA key exchange, CBC, 3DES where present)',
  caughtBy: { file: 'tls-policy', test: 'forward-secret AEAD suites only', tls: true },
  lines: () =>
    edit(
      `sed -i "s/^TLS12_CIPHERS=.*/TLS12_CIPHERS='ALL'/" ${TLS_PHASE}`,
      `grep -qx "TLS12_CIPHERS='ALL'" ${TLS_PHASE}`,
    ),
};

/**
 * The entrypoint owned by the runtime user: memcached (or whoever has its uid) can rewrite what the next
 * start runs.
 */
export const ENTRYPOINT_OWNED_BY_RUNTIME_USER: Weakening = {
  name: 'entrypoint-owned-by-runtime-user',
  weakness: 'the entrypoint belongs to memcache, so the runtime user can rewrite what every later start runs as it',
  caughtBy: { file: 'filesystem', test: 'read, run or looked up at start' },
  lines: () => edit(`chown memcache ${ENTRYPOINT}`, `[ "$(stat -c %U ${ENTRYPOINT})" = memcache ]`),
};

/**
 * The entrypoint traces its commands (set -x): with runtime credentials the trace shows each password it
 * feeds saslpasswd2.
 */
export const ENTRYPOINT_TRACED: Weakening = {
  name: 'entrypoint-traced',
  weakness: "the entrypoint traces its commands into the container's log, with the passwords it is given",
  caughtBy: { file: 'logs', test: 'no password and no private key line in any log' },
  credentials: 'runtime',
  lines: () => edit(`sed -i 's/^set -eu$/set -eux/' ${ENTRYPOINT}`, `grep -qx 'set -eux' ${ENTRYPOINT}`),
};

/** A debugging leftover: the entrypoint prints the sasldb it wrote (Cyrus keeps the passwords in clear) to its log. */
export const SASLDB_DUMP_LOGGED: Weakening = {
  name: 'sasldb-dump-logged',
  weakness: "the entrypoint prints the runtime sasldb's dump, every password in clear, into the container's log",
  caughtBy: { file: 'logs', test: 'no password and no private key line in any log' },
  lines: () =>
    edit(
      `sed -i '/^ *users=\\$(db5.3_dump/i db5.3_dump -p "$RUNTIME_SASLDB" >&2' ${CREDENTIALS_PHASE}`,
      `grep -qxF 'db5.3_dump -p "$RUNTIME_SASLDB" >&2' ${CREDENTIALS_PHASE}`,
    ),
};

// --- Issue R: secrets in layers, and what the image holds (test/integration/layers.test.ts, inventory.test.ts)

/** Where USERS_FILE_IN_LAYER leaves the users file, in the layer that wrote it. */
export const LEAKED_USERS_FILE = '/etc/memcached-users';

/**
 * The users file written into a layer by one RUN and deleted by the next: gone from the final filesystem,
 * still in the image. The RUN line carries it base64-encoded, so no password is in clear in the config or
 * the history: only a scan of the layers' files finds it.
 */
export const USERS_FILE_IN_LAYER: Weakening = {
  name: 'users-file-in-layer',
  weakness: `the users file written to ${LEAKED_USERS_FILE} in one layer and deleted in a later one`,
  caughtBy: { file: 'layers', test: 'a users file written, then deleted by a later layer, is found' },
  lines: ({ users }) => {
    const encoded = Buffer.from(users.map((u) => `${u.name}:${u.password}\n`).join(''), 'utf8').toString('base64');
    return [
      'USER root',
      `RUN set -e; echo ${encoded} | base64 -d > ${LEAKED_USERS_FILE}; \\`,
      `    [ "$(wc -l < ${LEAKED_USERS_FILE})" -eq ${users.length} ]`,
      `RUN set -e; rm ${LEAKED_USERS_FILE}; ! test -e ${LEAKED_USERS_FILE}`,
      'USER memcache',
    ];
  },
};

/** A setuid-root shell. */
export const SETUID_SHELL: Weakening = {
  name: 'setuid-shell',
  weakness: 'a setuid-root shell (chmod u+s /bin/dash)',
  caughtBy: { file: 'inventory', test: '(b) no setuid or setgid file' },
  lines: () => edit('chmod u+s /bin/dash', 'test -u /bin/dash'),
};

/** An interpreter back in the image: a shell copied to /usr/bin/perl. */
export const INTERPRETER_BACK: Weakening = {
  name: 'interpreter-back',
  weakness: 'an interpreter-like executable the allow list does not name (/bin/dash copied to /usr/bin/perl)',
  caughtBy: { file: 'inventory', test: '(c) every executable is on the allow list' },
  lines: () => edit('cp /bin/dash /usr/bin/perl', 'test -x /usr/bin/perl'),
};

/**
 * A shell that can become root: cap_setgid,cap_setuid+ep on dash, without setcap (libcap2-bin is purged)
 * and without the network: GNU tar, in every image, extracts dash from a pax archive written here byte by
 * byte whose SCHILY.xattr.security.capability record holds the vfs_cap_data (revision 2, effective;
 * permitted 0xc0 = setgid and setuid).
 */
export const SHELL_FILE_CAPABILITY: Weakening = {
  name: 'shell-file-capability',
  weakness: 'a file capability beside iptables: cap_setgid,cap_setuid+ep on /bin/dash',
  caughtBy: { file: 'inventory', test: '(a) file capabilities: only' },
  lines: () => {
    const capability = '\\001\\000\\000\\002\\300' + '\\000'.repeat(15);
    return [
      'USER root',
      [
        'RUN set -e; target="$(readlink -f /bin/dash)"; name="${target#/}"; size="$(stat -c %s "$target")"; \\',
        '    header() { \\',
        '      { printf %s "$1"; head -c $((100 - ${#1})) /dev/zero; \\',
        '        printf \'%07d\\000%07o\\000%07o\\000\' "$(stat -c %a "$target")" 0 0; \\',
        '        printf \'%011o\\000%011o\\000        %s\' "$2" "$(stat -c %Y "$target")" "$3"; \\',
        "        head -c 100 /dev/zero; printf 'ustar\\00000'; head -c 247 /dev/zero; } > /tmp/header; \\",
        '      sum="$(od -An -v -tu1 /tmp/header | awk \'{ for (i = 1; i <= NF; i++) s += $i } END { print s }\')"; \\',
        '      printf \'%06o\\000 \' "$sum" | dd of=/tmp/header bs=1 seek=148 conv=notrunc 2>/dev/null; \\',
        '      cat /tmp/header; }; \\',
        '    pad() { head -c $(((512 - $1 % 512) % 512)) /dev/zero; }; \\',
        '    { header "PaxHeaders/$name" 57 x; \\',
        `      printf '57 SCHILY.xattr.security.capability=${capability}\\n'; pad 57; \\`,
        '      header "$name" "$size" 0; cat "$target"; pad "$size"; head -c 1024 /dev/zero; } > /tmp/dash.tar; \\',
        '    tar --xattrs --xattrs-include=security.capability -xpf /tmp/dash.tar -C /; \\',
        '    rm /tmp/dash.tar /tmp/header; \\',
        '    tar --xattrs --xattrs-include=security.capability -cf - -C / "$name" \\',
        '      | grep -qa SCHILY.xattr.security.capability',
      ].join('\n'),
      'USER memcache',
    ];
  },
};

// --- Issue S: run-time weakenings (test/integration/seccomp.test.ts)

/** A Docker seccomp profile, as far as a weakening needs to know it. */
export interface SeccompProfile {
  readonly defaultAction: string;
  readonly [key: string]: unknown;
}

/**
 * A run-time weakening: the image as shipped, its servers started under a seccomp profile made from their
 * image's own by `seccomp`. The mutation check names it in SECCOMP_WEAKENING_ENV; the suite's servers then
 * get the weakened profile (test/helpers/server.ts), so the check that proves the profile active sees it.
 */
export interface SeccompWeakening extends WeakeningBase {
  seccomp(profile: SeccompProfile): SeccompProfile;
}

/** The environment variable that makes every server of a suite run start under a seccomp weakening. */
export const SECCOMP_WEAKENING_ENV = 'MEMCACHED_SECCOMP_WEAKENING';

export function isSeccompWeakening(weakening: Weakening | SeccompWeakening): weakening is SeccompWeakening {
  return 'seccomp' in weakening;
}

/** The profile shipped with a default action that allows every call it does not list: it refuses nothing. */
export const SECCOMP_ALLOW_ALL: SeccompWeakening = {
  name: 'seccomp-allow-all',
  weakness: 'the image started under a seccomp profile that allows every call (defaultAction SCMP_ACT_ALLOW)',
  caughtBy: {
    file: 'seccomp',
    test: 'a serving server runs under the profile: every probe call is refused with EPERM',
  },
  seccomp: (profile) => ({ ...profile, defaultAction: 'SCMP_ACT_ALLOW' }),
};

const SECCOMP_WEAKENINGS: readonly SeccompWeakening[] = [SECCOMP_ALLOW_ALL];

/** The seccomp weakening the environment names, if any; an unknown name is an error, not the real profile. */
export function seccompWeakeningFrom(env: NodeJS.ProcessEnv): SeccompWeakening | undefined {
  const name = env[SECCOMP_WEAKENING_ENV];
  if (name === undefined || name === '') return undefined;
  const weakening = SECCOMP_WEAKENINGS.find((w) => w.name === name);
  const known = SECCOMP_WEAKENINGS.map((w) => w.name).join(', ');
  if (!weakening) throw new Error(`${SECCOMP_WEAKENING_ENV}: unknown seccomp weakening '${name}' (known: ${known})`);
  return weakening;
}
