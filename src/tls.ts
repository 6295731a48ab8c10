/** What images built with `--tls` share between the build, the entrypoint, the health check and the tests. */

/** Written by the TLS layer: its presence makes the entrypoint serve only TLS and require a certificate. */
export const TLS_MARKER = '/etc/memcached-hardened-tls';
/** Where the certificate secret is mounted by default: the key names of a Kubernetes TLS secret (cert-manager's). */
export const TLS_SECRET_DIR = '/run/secrets/memcached_tls';
export const TLS_SECRET_FILES = { certificate: 'tls.crt', key: 'tls.key', ca: 'ca.crt' } as const;
/** Image label that tells a TLS image from a plaintext one. */
export const TLS_LABEL = 'memcached-hardened.tls';

const u8 = (value: number) => Buffer.from([value]);
const u16 = (value: number) => Buffer.from([value >> 8, value & 0xff]);
const u24 = (value: number) => Buffer.from([value >> 16, (value >> 8) & 0xff, value & 0xff]);
const list16 = (values: readonly number[]) => Buffer.concat(values.map(u16));
const withLength16 = (body: Buffer) => Buffer.concat([u16(body.length), body]);
const extension = (type: number, body: Buffer) => Buffer.concat([u16(type), withLength16(body)]);

/**
 * A fixed TLS 1.2 ClientHello that OpenSSL 1.0.2 and 3.x servers answer with a ServerHello whatever their
 * key (RSA or ECDSA) and whether they want a client certificate (that is asked for only after the
 * ServerHello). The health check sends it to the listen address: a ServerHello proves that a TLS server
 * answers there (and that plaintext memcached does not). No client secret is involved.
 */
export function tlsProbeHello(): Buffer {
  const cipherSuites = [
    0xc02f,
    0xc02b,
    0xc030,
    0xc02c, // ECDHE-{RSA,ECDSA}-AES{128,256}-GCM
    0x009e,
    0x009f,
    0x009c,
    0x009d, // DHE-RSA / RSA AES-GCM
    0xc027,
    0xc023,
    0xc013,
    0xc009,
    0x002f,
    0x0035, // AES-CBC fallbacks
    0x00ff, // empty renegotiation info
  ];
  const extensions = Buffer.concat([
    extension(0x000a, withLength16(list16([0x001d, 0x0017, 0x0018]))), // supported groups: x25519, P-256, P-384
    extension(0x000b, Buffer.from([1, 0])), // EC point formats: uncompressed
    // signature algorithms: RSA-PSS, RSA PKCS#1 and ECDSA with SHA-256/384/512, then SHA-1
    extension(
      0x000d,
      withLength16(list16([0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0403, 0x0503, 0x0603, 0x0201, 0x0203])),
    ),
  ]);
  const body = Buffer.concat([
    u16(0x0303), // TLS 1.2
    Buffer.alloc(32, 0x5a), // client random: a probe needs none
    u8(0), // no session id
    withLength16(list16(cipherSuites)),
    Buffer.from([1, 0]), // compression: null only
    withLength16(extensions),
  ]);
  const handshake = Buffer.concat([u8(1), u24(body.length), body]); // ClientHello
  return Buffer.concat([u8(0x16), u16(0x0301), withLength16(handshake)]); // handshake record
}

/** Bytes as a printf format of \xNN escapes (for bash's printf builtin). */
export function printfEscaped(bytes: Buffer): string {
  return [...bytes].map((byte) => `\\x${byte.toString(16).padStart(2, '0')}`).join('');
}
