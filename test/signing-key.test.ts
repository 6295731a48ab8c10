import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/errors.js';
import {
  decryptPrivateKey,
  encryptPrivateKey,
  PRIVATE_KEY_PEM_TYPE,
  publicKeyPem,
  readPassphrase,
  readPublicKey,
  readSigningKey,
  writeKeyPair,
} from '../src/signing/key.js';

const scratch = mkdtempSync(join(tmpdir(), 'mh-key-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const passphrase = Buffer.from('correct horse battery staple');
// scrypt at cosign's cost (64 MiB, N=65536) takes a second or more per key on a busy 2-core machine.
const slow = { timeout: 60_000 };

describe('cosign-format keys', slow, () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const encrypted = encryptPrivateKey(privateKey, passphrase);

  it('writes the ENCRYPTED SIGSTORE PRIVATE KEY PEM around scrypt + nacl/secretbox JSON', () => {
    expect(encrypted.startsWith(`-----BEGIN ${PRIVATE_KEY_PEM_TYPE}-----\n`)).toBe(true);
    const body = Buffer.from(encrypted.split('\n').slice(1, -2).join(''), 'base64').toString();
    const envelope = JSON.parse(body) as {
      kdf: { name: string; params: { N: number; r: number; p: number }; salt: string };
      cipher: { name: string; nonce: string };
    };
    expect(envelope.kdf).toMatchObject({ name: 'scrypt', params: { N: 65536, r: 8, p: 1 } });
    expect(Buffer.from(envelope.kdf.salt, 'base64')).toHaveLength(32);
    expect(envelope.cipher.name).toBe('nacl/secretbox');
    expect(Buffer.from(envelope.cipher.nonce, 'base64')).toHaveLength(24);
  });

  it('decrypts with the passphrase to the same key (a signature verifies under the original public key)', () => {
    const key = decryptPrivateKey(encrypted, passphrase, 'k');
    expect(publicKeyPem(key)).toBe(publicKeyPem(privateKey));
    expect(verify('sha256', Buffer.from('x'), privateKey, sign('sha256', Buffer.from('x'), key))).toBe(true);
  });

  it('refuses a wrong passphrase, an altered file and a foreign PEM with one line each', () => {
    expect(() => decryptPrivateKey(encrypted, Buffer.from('wrong'), 'k')).toThrow(/^--signing-key k: wrong passphrase/);
    const lines = encrypted.split('\n');
    const body = JSON.parse(Buffer.from(lines.slice(1, -2).join(''), 'base64').toString()) as { ciphertext: string };
    const ct = Buffer.from(body.ciphertext, 'base64');
    ct[5] = ct[5]! ^ 1;
    const wrap = (ciphertext: Buffer) => {
      const json = Buffer.from(JSON.stringify({ ...body, ciphertext: ciphertext.toString('base64') }));
      const type = PRIVATE_KEY_PEM_TYPE;
      return `-----BEGIN ${type}-----\n${json.toString('base64')}\n-----END ${type}-----\n`;
    };
    const altered = wrap(ct);
    // Control: the same rebuild without the flipped bit decrypts (the PEM re-wrapping is not what fails).
    ct[5] = ct[5]! ^ 1;
    const intact = wrap(ct);
    expect(() => decryptPrivateKey(intact, passphrase, 'k')).not.toThrow();
    expect(() => decryptPrivateKey(altered, passphrase, 'k')).toThrow(
      /wrong passphrase \(or the key file was altered\)/,
    );
    expect(() => decryptPrivateKey(publicKeyPem(privateKey), passphrase, 'k')).toThrow(
      /not an ENCRYPTED SIGSTORE PRIVATE KEY PEM/,
    );
    const error = (() => {
      try {
        decryptPrivateKey(encrypted, Buffer.from('xyzzy-guess'), 'k');
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(UserError);
    expect(error?.message).not.toContain('xyzzy');
    expect(error?.message.split('\n')).toHaveLength(1);
  });
});

describe('passphrases', slow, () => {
  it('reads a file or stdin, dropping one trailing newline; refuses an empty one', () => {
    const file = join(scratch, 'pass');
    writeFileSync(file, 'secret words\n');
    expect(readPassphrase(file).toString()).toBe('secret words');
    expect(readPassphrase('-', '--passphrase-file', () => Buffer.from('from stdin\r\n')).toString()).toBe('from stdin');
    expect(readPassphrase('-', '--passphrase-file', () => Buffer.from('two\n\n')).toString()).toBe('two\n');
    expect(() => readPassphrase('-', '--passphrase-file', () => Buffer.from('\n'))).toThrow(/the passphrase is empty/);
    expect(() => readPassphrase(join(scratch, 'missing'))).toThrow(/^--passphrase-file .*missing: ENOENT$/);
  });
});

describe('keygen files', slow, () => {
  it('writes signing.key 0600 and signing.pub, and never overwrites them', () => {
    const dir = join(scratch, 'keys');
    const written = writeKeyPair(dir, passphrase);
    expect(statSync(written.privateKey).mode & 0o777).toBe(0o600);
    expect(readFileSync(written.publicKey, 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    const key = readSigningKey(written.privateKey, passphrase);
    expect(publicKeyPem(key)).toBe(readFileSync(written.publicKey, 'utf8'));
    expect(readPublicKey(written.publicKey).asymmetricKeyType).toBe('ec');
    const before = readFileSync(written.privateKey, 'utf8');
    expect(() => writeKeyPair(dir, passphrase)).toThrow(/exists; keygen never overwrites a key/);
    expect(readFileSync(written.privateKey, 'utf8')).toBe(before);
    expect(() => readPublicKey(written.privateKey)).toThrow(/not a PEM public key/);
  });
});
