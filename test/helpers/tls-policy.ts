// The TLS policy of the image's port, and what nmap's ssl-enum-ciphers and ssl-cert scripts report of it.
// No vitest import: the unit tests check the policy on recorded reports.

/** What a scan found: each TLS/SSL version the port accepted with the suites it accepted under it. */
export interface TlsScan {
  readonly versions: Readonly<Record<string, readonly string[]>>;
  readonly certificate: { readonly keyType: string; readonly keyBits: number; readonly signature: string };
}

/** Reads nmap's XML (`-oX -`) of one port scanned with `--script ssl-enum-ciphers,ssl-cert`. */
export function parseNmapTlsScan(xml: string): TlsScan {
  const script = (id: string) => {
    const body = new RegExp(`<script id="${id}"[^>]*>([\\s\\S]*?)</script>`).exec(xml)?.[1];
    if (body === undefined) throw new Error(`nmap's report has no ${id} result:\n${xml.slice(0, 2000)}`);
    return body;
  };
  const versions: Record<string, string[]> = {};
  const sections = script('ssl-enum-ciphers').split(/<table key="((?:SSL|TLS)v[\d.]+)">/);
  for (let i = 1; i < sections.length; i += 2) {
    versions[sections[i]!] = [...(sections[i + 1] ?? '').matchAll(/<elem key="name">([^<]+)<\/elem>/g)].map(
      (m) => m[1]!,
    );
  }
  const cert = script('ssl-cert');
  const pubkey = /<table key="pubkey">([\s\S]*?)<\/table>/.exec(cert)?.[1] ?? '';
  const elem = (text: string, key: string) => new RegExp(`<elem key="${key}">([^<]*)</elem>`).exec(text)?.[1] ?? '';
  return {
    versions,
    certificate: {
      keyType: elem(pubkey, 'type'),
      keyBits: Number(elem(pubkey, 'bits')),
      signature: elem(cert, 'sig_algo'),
    },
  };
}

/** Never acceptable, in any version: no encryption, no authentication, export grade, broken ciphers or MACs. */
const FORBIDDEN = /NULL|anon|EXPORT|RC4|_DES_|3DES|DES40|MD5|IDEA|SEED|PSK|SRP/;
/** TLS 1.2: forward secrecy (ephemeral ECDH) and an AEAD cipher. */
const TLS12_ALLOWED = /^TLS_ECDHE_(RSA|ECDSA)_WITH_(AES_(128|256)_(GCM|CCM)|CHACHA20_POLY1305)_/;
/** TLS 1.3: its suites (nmap names them TLS_AKE_WITH_...): all AEAD, all forward-secret. */
const TLS13_ALLOWED = /^TLS_(AKE_WITH_)?(AES_(128|256)_(GCM|CCM)|CHACHA20_POLY1305)/;

/**
 * Where a scan breaks the policy: exactly the profile's TLS versions (1.2, and 1.3 where its OpenSSL has
 * it); in 1.2 only ECDHE key exchange with AEAD suites; nothing forbidden; a certificate of an RSA key of
 * at least 2048 bits or an EC key of at least 256, signed with SHA-256 or stronger. Empty when it holds.
 */
export function tlsPolicyViolations(scan: TlsScan, intendedVersions: readonly string[]): string[] {
  const violations: string[] = [];
  const offered = Object.keys(scan.versions).sort();
  if (offered.join(',') !== [...intendedVersions].sort().join(',')) {
    violations.push(`versions offered: ${offered.join(', ') || 'none'}; intended: ${intendedVersions.join(', ')}`);
  }
  for (const [version, suites] of Object.entries(scan.versions)) {
    const allowed = version === 'TLSv1.3' ? TLS13_ALLOWED : TLS12_ALLOWED;
    for (const suite of suites) {
      if (FORBIDDEN.test(suite) || !allowed.test(suite)) violations.push(`${version} accepts ${suite}`);
    }
  }
  const { keyType, keyBits, signature } = scan.certificate;
  const strongKey = (keyType === 'rsa' && keyBits >= 2048) || (keyType === 'ec' && keyBits >= 256);
  if (!strongKey) violations.push(`certificate key: ${keyType || 'unknown'} ${keyBits || '?'} bits`);
  if (!/sha(256|384|512)|ed25519|ed448/i.test(signature) || /sha1|md5/i.test(signature)) {
    violations.push(`certificate signature: ${signature || 'unknown'}`);
  }
  return violations;
}
