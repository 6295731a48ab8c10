import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Status } from '../../lib/binary-client.js';
import { loadProfile } from '../../src/profiles.js';
import { TLS_SECRET_DIR } from '../../src/tls.js';
import { parseProcNet, TCP_LISTEN } from '../helpers/proc-net.js';
import { allowlistCapabilities, execIn, type RunningServer, runToExit, startServer } from '../helpers/server.js';
import { firstUser, targetRows } from '../helpers/targets.js';
import { expiredCertificate, mountableSecretDir, pemBody, tlsRoundTrip } from '../helpers/tls.js';
import { PKI, tlsBench } from '../helpers/tls-bench.js';

/** Fixed addresses (host numbers on the test network) the servers take: the server certificate names them all. */
const HOST = { tls: 10, mutual: 11, holder: 20 } as const;

// TLS, the certificates: which the image refuses to start with, which it shows, and which it asks of clients.
describe.each(targetRows())('%s', (_name, target) => {
  const user = firstUser(target);
  const profile = loadProfile(target.profile);
  const bench = tlsBench('tls-certs', target, HOST);
  let tlsServer: RunningServer;
  let mutualServer: RunningServer;

  beforeAll(async () => {
    const network = bench.network.name;
    [tlsServer, mutualServer] = await Promise.all([
      bench.startTls(network, bench.secret, { ipv4Address: bench.address(HOST.tls) }),
      bench.startTls(network, bench.mutualSecret, { ipv4Address: bench.address(HOST.mutual), mutual: true }),
    ]);
  });

  it(
    'refuses a missing, unreadable, non-PEM, expired or mismatched certificate or key, or a loopback ' +
      'listen address, in one line (exit 78), before any rule or listener; with the certificate the ' +
      'same start listens and adds its rules',
    async () => {
      // A namespace the refusals share, so what they leave behind (firewall rules, a listener) can be read.
      const holder = await bench.started(
        startServer(bench.tlsTarget, bench.network.name, {
          entrypoint: ['sleep', 'infinity'],
          capAdd: allowlistCapabilities(target),
          ipv4Address: bench.address(HOST.holder),
          unreachableFromHost: true,
        }),
      );
      const namespace = `container:${holder.container.getId()}`;
      const clientHostIp = bench.clientHost.getIpAddress(bench.network.name);
      const unreadable = mountableSecretDir(join(bench.scratch, 'secret-unreadable'), {
        'tls.crt': bench.ours.certificate,
      });
      // root's, not memcache's
      writeFileSync(join(unreadable, 'tls.key'), readFileSync(bench.ours.key), { mode: 0o400 });
      const cases: Array<{ secretDir?: string; env?: Record<string, string>; refusal: RegExp }> = [
        {
          refusal: new RegExp(
            '^memcached-hardened: TLS: \\/run\\/secrets\\/memcached_tls\\/tls\\.crt is missing or not readable ' +
              'by uid 11211; mount the certificate secret',
          ),
        },
        {
          secretDir: unreadable,
          refusal:
            /^memcached-hardened: TLS: \/run\/secrets\/memcached_tls\/tls\.key is missing or not readable by uid 11211/,
        },
        {
          secretDir: mountableSecretDir(join(bench.scratch, 'secret-mismatched'), {
            'tls.crt': bench.ours.certificate,
            'tls.key': bench.foreign.key,
          }),
          refusal: new RegExp(
            '^memcached-hardened: TLS: the key \\/run\\/secrets\\/memcached_tls\\/tls\\.key ' +
              'does not belong to the certificate',
          ),
        },
        {
          secretDir: mountableSecretDir(join(bench.scratch, 'secret-not-pem'), {
            'tls.crt': bench.ours.key,
            'tls.key': bench.ours.key,
          }),
          refusal: /^memcached-hardened: TLS: \/run\/secrets\/memcached_tls\/tls\.crt is not a PEM certificate$/,
        },
        {
          secretDir: mountableSecretDir(join(bench.scratch, 'secret-expired'), {
            'tls.crt': expiredCertificate(bench.ours),
            'tls.key': bench.ours.key,
          }),
          refusal: /^memcached-hardened: TLS: the certificate \/run\/secrets\/memcached_tls\/tls\.crt has expired$/,
        },
        {
          secretDir: mountableSecretDir(join(bench.scratch, 'secret-bad-ca'), {
            'tls.crt': bench.ours.certificate,
            'tls.key': bench.ours.key,
            'ca.crt': bench.ours.clientKey,
          }),
          refusal: /^memcached-hardened: TLS: \/run\/secrets\/memcached_tls\/ca\.crt is not a PEM certificate$/,
        },
        {
          secretDir: bench.secret,
          env: { MEMCACHED_TLS_CERT_FILE: '/run/secrets/elsewhere/tls.crt' },
          refusal: /^memcached-hardened: TLS: \/run\/secrets\/elsewhere\/tls\.crt is missing/,
        },
        {
          secretDir: bench.secret,
          env: { MEMCACHED_LISTEN: '127.0.0.1' },
          refusal: new RegExp(
            '^memcached-hardened: MEMCACHED_LISTEN=127\\.0\\.0\\.1: with TLS, ' +
              "loopback carries memcached's own plaintext listener",
          ),
        },
      ];
      const refusals = await Promise.all(
        cases.map((c) =>
          runToExit(bench.tlsTarget, namespace, {
            // With the allowlist asked for: a refusal must come before any rule is added.
            env: { MEMCACHED_ALLOW_FROM: `${clientHostIp}/32`, ...c.env },
            capAdd: allowlistCapabilities(target),
            binds: c.secretDir ? [`${c.secretDir}:${TLS_SECRET_DIR}:ro`] : [],
          }),
        ),
      );
      refusals.forEach((refused, i) => {
        expect({ exitCode: refused.exitCode, lines: refused.output.trim().split('\n') }).toEqual({
          exitCode: 78,
          lines: [expect.stringMatching(cases[i]!.refusal)],
        });
        expect(refused.output).not.toContain('PRIVATE KEY');
      });
      const left = async () => ({
        rules: (await execIn(holder.container, ['iptables', '-w', '-S'])).output.includes('MEMCACHED-ALLOW'),
        listeners: parseProcNet((await execIn(holder.container, ['cat', '/proc/net/tcp'])).output).filter(
          (s) => s.state === TCP_LISTEN && s.localPort === 11211,
        ).length,
      });
      expect(await left()).toEqual({ rules: false, listeners: 0 });
      // Control: the same start with the certificate takes the rules and listens (TLS there, plaintext on loopback).
      await bench.startTls(namespace, bench.secret, {
        capAdd: allowlistCapabilities(target),
        env: { MEMCACHED_ALLOW_FROM: `${clientHostIp}/32` },
        readyFromClientHost: true,
      });
      expect(await left()).toEqual({ rules: true, listeners: 2 });
    },
  );

  it(
    'completes a TLS 1.2+ handshake with the mounted certificate, verified against the CA for its ' +
      'address (openssl s_client)',
    async () => {
      const ip = tlsServer.ip;
      const mounted = pemBody(readFileSync(bench.ours.certificate, 'utf8'));
      for (const version of ['', '-tls1_2']) {
        const handshake = await bench.sClient(
          `-connect ${ip}:11211 ${version} -CAfile ${PKI}/ca.crt -verify_return_error -verify_ip ${ip}`,
        );
        expect({ version, protocol: handshake.protocol, verifyCode: handshake.verifyCode }).toEqual({
          version,
          protocol: version === '-tls1_2' ? 'TLSv1.2' : expect.stringMatching(/^TLSv1\.[23]$/),
          verifyCode: 0,
        });
        expect(pemBody(handshake.peerCertificate ?? '')).toBe(mounted);
      }
      // Control: the same verification fails against an address the certificate does not name.
      const wrongAddress = await bench.sClient(
        `-connect ${ip}:11211 -tls1_2 -CAfile ${PKI}/ca.crt -verify_return_error -verify_ip 192.0.2.1`,
      );
      expect(wrongAddress.protocol).toBeUndefined();
    },
  );

  it(
    'with ca.crt, refuses a client without a certificate and one from another CA; a certificate from ' +
      'that CA authenticates (node and Dalli)',
    async () => {
      const ip = mutualServer.ip;
      const withoutCertificate = await tlsRoundTrip(ip, bench.clientTls(), user);
      expect(withoutCertificate).toMatchObject({ authStatus: 'closed', roundTrip: false });
      expect(withoutCertificate.error).toMatch(/alert (handshake failure|certificate required)/);
      const stranger = await tlsRoundTrip(
        ip,
        {
          ...bench.clientTls(),
          cert: readFileSync(bench.foreign.clientCertificate),
          key: readFileSync(bench.foreign.clientKey),
        },
        user,
      );
      expect(stranger).toMatchObject({ authStatus: 'closed', roundTrip: false });
      expect(stranger.error).toMatch(/alert unknown ca/);
      expect(await tlsRoundTrip(ip, bench.clientTls(true), user)).toMatchObject({
        handshake: true,
        authStatus: Status.ok,
        roundTrip: true,
      });
      const key = `dalli-mutual-${Math.random().toString(36).slice(2)}`;
      expect(await bench.dalli(ip, key, 'mutual', user, bench.dalliTls(true))).toBe('ok mutual');
      expect(await bench.storedOverTls(ip, key, true)).toBe('mutual');
      expect(await bench.dalli(ip, `${key}-anonymous`, 'never', user, bench.dalliTls(false))).not.toMatch(/^ok /);
      const foreignSettings = {
        ...bench.dalliTls(),
        MEMCACHED_TLS_CERT_FILE: `${PKI}/foreign.crt`,
        MEMCACHED_TLS_KEY_FILE: `${PKI}/foreign.key`,
      };
      expect(await bench.dalli(ip, `${key}-stranger`, 'never', user, foreignSettings)).not.toMatch(/^ok /);
    },
  );

  it(
    'keeps the private key and the password out of every argv and the log; the key file is named ' + 'there (control)',
    async () => {
      const argv = (await execIn(tlsServer.container, ['sh', '-c', 'cat /proc/[0-9]*/cmdline | tr "\\0" " "'], 'root'))
        .output;
      const logs = await tlsServer.logs();
      const keyBody = readFileSync(bench.ours.key, 'utf8').split('\n')[1]!;
      for (const secretText of [keyBody, user.password]) {
        expect(argv).not.toContain(secretText);
        expect(logs).not.toContain(secretText);
      }
      // Control: the scan reads the real configuration, which names the key's path.
      expect(
        profile.tls.via === 'memcached'
          ? argv
          : (await execIn(tlsServer.container, ['cat', '/run/memcached/stunnel.conf'])).output,
      ).toContain(`${TLS_SECRET_DIR}/tls.key`);
    },
  );
});
