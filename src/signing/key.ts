import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  scryptSync,
  type KeyObject,
} from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { badInput } from '../errors.js';

/**
 * Signing keys in cosign's format, so that `cosign sign --key` and `cosign verify --key` take them: the
 * private key is the PKCS#8 DER of an ECDSA P-256 key, encrypted as go-securesystemslib's `encrypted`
 * package does (scrypt N=65536 r=8 p=1 → 32-byte key, NaCl secretbox with a 24-byte nonce), the JSON
 * envelope base64'd under the PEM type `ENCRYPTED SIGSTORE PRIVATE KEY`; the public key is PKIX PEM.
 * Node's crypto has scrypt but no XSalsa20-Poly1305: secretbox is tweetnacl's.
 */
export const PRIVATE_KEY_PEM_TYPE = 'ENCRYPTED SIGSTORE PRIVATE KEY';
/** cosign 1.x wrote this type over the same envelope; it is read too. */
const LEGACY_PRIVATE_KEY_PEM_TYPE = 'ENCRYPTED COSIGN PRIVATE KEY';
export const PRIVATE_KEY_FILE = 'signing.key';
export const PUBLIC_KEY_FILE = 'signing.pub';

// As cosign 2 writes its keys (N=65536; go-securesystemslib also reads its older N=32768).
const SCRYPT = { N: 65536, r: 8, p: 1 } as const;
const SALT_BYTES = 32;
/** scrypt needs 128·N·r bytes; Node's default ceiling (32 MiB) is exactly that, so leave room. */
const SCRYPT_MAXMEM = 256 * 1024 * 1024;

interface Envelope {
  kdf: { name: 'scrypt'; params: { N: number; r: number; p: number }; salt: string };
  cipher: { name: 'nacl/secretbox'; nonce: string };
  ciphertext: string;
}

function pem(type: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${type}-----\n${lines.join('\n')}\n-----END ${type}-----\n`;
}

/** The DER inside the first PEM block of one of `types`, or undefined. */
function pemBody(text: string, types: readonly string[]): Buffer | undefined {
  for (const type of types) {
    const match = new RegExp(`-----BEGIN ${type}-----([A-Za-z0-9+/=\\s]+)-----END ${type}-----`).exec(text);
    if (match) return Buffer.from(match[1]!.replace(/\s+/g, ''), 'base64');
  }
  return undefined;
}

function secretboxKey(passphrase: Buffer, salt: Buffer, params: { N: number; r: number; p: number }): Uint8Array {
  return scryptSync(passphrase, salt, nacl.secretbox.keyLength, { ...params, maxmem: SCRYPT_MAXMEM });
}

/** The cosign-format encrypted PEM of a private key. */
export function encryptPrivateKey(key: KeyObject, passphrase: Buffer): string {
  const der = key.export({ format: 'der', type: 'pkcs8' });
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(nacl.secretbox.nonceLength);
  const sealed = nacl.secretbox(der, nonce, secretboxKey(passphrase, salt, SCRYPT));
  const envelope: Envelope = {
    kdf: { name: 'scrypt', params: { ...SCRYPT }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(sealed).toString('base64'),
  };
  return pem(PRIVATE_KEY_PEM_TYPE, Buffer.from(JSON.stringify(envelope)));
}

/** Decrypts a cosign-format private key; one line naming the file when it is not one or the passphrase is wrong. */
export function decryptPrivateKey(text: string, passphrase: Buffer, file: string): KeyObject {
  const body = pemBody(text, [PRIVATE_KEY_PEM_TYPE, LEGACY_PRIVATE_KEY_PEM_TYPE]);
  if (!body) throw badInput(`--signing-key ${file}: not an ${PRIVATE_KEY_PEM_TYPE} PEM (make one with keygen)`);
  let envelope: Envelope;
  try {
    envelope = JSON.parse(body.toString('utf8')) as Envelope;
  } catch {
    throw badInput(`--signing-key ${file}: the encrypted key is not cosign's JSON envelope`);
  }
  const { kdf, cipher } = envelope;
  if (kdf?.name !== 'scrypt' || cipher?.name !== 'nacl/secretbox' || typeof envelope.ciphertext !== 'string') {
    throw badInput(`--signing-key ${file}: unsupported key encryption (expected scrypt + nacl/secretbox)`);
  }
  const { N, r, p } = kdf.params ?? {};
  if (![N, r, p].every((n) => Number.isInteger(n) && n! > 0) || N! > 1 << 20 || r! > 32 || p! > 16) {
    throw badInput(`--signing-key ${file}: unsupported scrypt parameters`);
  }
  const key = secretboxKey(passphrase, Buffer.from(kdf.salt, 'base64'), { N: N!, r: r!, p: p! });
  const opened = nacl.secretbox.open(
    Buffer.from(envelope.ciphertext, 'base64'),
    Buffer.from(cipher.nonce, 'base64'),
    key,
  );
  if (!opened) throw badInput(`--signing-key ${file}: wrong passphrase (or the key file was altered)`);
  const privateKey = createPrivateKey({ key: Buffer.from(opened), format: 'der', type: 'pkcs8' });
  if (privateKey.asymmetricKeyType !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw badInput(`--signing-key ${file}: not an ECDSA P-256 key`);
  }
  return privateKey;
}

/** The PKIX PEM of a key's public half (what `cosign verify --key` and `openssl dgst -verify` take). */
export function publicKeyPem(key: KeyObject): string {
  return createPublicKey(key).export({ format: 'pem', type: 'spki' }).toString();
}

/** Reads a PEM public key; one line when the file holds none. */
export function readPublicKey(file: string): KeyObject {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw badInput(`--key ${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  try {
    return createPublicKey(text);
  } catch {
    throw badInput(`--key ${file}: not a PEM public key`);
  }
}

/** Reads and decrypts the signing key. */
export function readSigningKey(file: string, passphrase: Buffer): KeyObject {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw badInput(`--signing-key ${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  return decryptPrivateKey(text, passphrase, file);
}

/**
 * Reads a passphrase from a file, or stdin for `-`: one trailing newline is dropped (as `echo` adds one);
 * an empty passphrase is refused. The passphrase is never echoed.
 */
export function readPassphrase(
  source: string,
  option = '--passphrase-file',
  stdin: () => Buffer = () => readFileSync(0),
): Buffer {
  let raw: Buffer;
  try {
    raw = source === '-' ? stdin() : readFileSync(source);
  } catch (error) {
    throw badInput(`${option} ${source}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
  let end = raw.length;
  if (end > 0 && raw[end - 1] === 0x0a) end -= 1;
  if (end > 0 && raw[end - 1] === 0x0d) end -= 1;
  const passphrase = raw.subarray(0, end);
  if (passphrase.length === 0) throw badInput(`${option}: the passphrase is empty`);
  return passphrase;
}

/** A new ECDSA P-256 key pair in cosign's format. */
export function generateKeyPair(passphrase: Buffer): { privatePem: string; publicPem: string } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { privatePem: encryptPrivateKey(privateKey, passphrase), publicPem: publicKeyPem(privateKey) };
}

/**
 * Writes DIR/signing.key (0600) and DIR/signing.pub; refuses to overwrite either. Both are written to
 * temporary names first and renamed at the end: nothing half-made stays behind.
 */
export function writeKeyPair(dir: string, passphrase: Buffer): { privateKey: string; publicKey: string } {
  const privateKey = join(dir, PRIVATE_KEY_FILE);
  const publicKey = join(dir, PUBLIC_KEY_FILE);
  const existing = [privateKey, publicKey].find((file) => existsSync(file));
  if (existing) throw badInput(`--out: ${existing} exists; keygen never overwrites a key`);
  const { privatePem, publicPem } = generateKeyPair(passphrase);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw badInput(`--out ${dir}: ${(error as NodeJS.ErrnoException).code ?? 'cannot create'}`);
  }
  const temporary = [`${privateKey}.partial`, `${publicKey}.partial`];
  try {
    writeFileSync(temporary[0]!, privatePem, { mode: 0o600, flag: 'wx' });
    chmodSync(temporary[0]!, 0o600);
    writeFileSync(temporary[1]!, publicPem, { mode: 0o644, flag: 'wx' });
    renameSync(temporary[0]!, privateKey);
    renameSync(temporary[1]!, publicKey);
  } catch (error) {
    for (const file of temporary) rmSync(file, { force: true });
    throw badInput(`--out ${dir}: ${(error as NodeJS.ErrnoException).code ?? 'cannot write'}`);
  }
  return { privateKey, publicKey };
}

/** The keygen flow: reads the passphrase, writes the pair. */
export function keygen(config: { readonly out: string; readonly passphraseFile: string }): {
  privateKey: string;
  publicKey: string;
} {
  const passphrase = readPassphrase(config.passphraseFile);
  try {
    return writeKeyPair(config.out, passphrase);
  } finally {
    passphrase.fill(0);
  }
}
