import { describe, expect, it } from 'vitest';
import { parseNmapTlsScan, tlsPolicyViolations, type TlsScan } from './helpers/tls-policy.js';

/** The shape of nmap 7.93's XML for `--script ssl-enum-ciphers,ssl-cert` on one port (trimmed). */
const NMAP_XML =
  `<?xml version="1.0"?><nmaprun><host><ports><port protocol="tcp" portid="11211">
<state state="open"/><script id="ssl-cert" output="Subject: commonName=memcached"><table key="subject">
<elem key="commonName">memcached</elem></table><table key="pubkey"><elem key="type">rsa</elem>
<elem key="bits">2048</elem><elem key="exponent">65537</elem></table>
<elem key="sig_algo">sha256WithRSAEncryption</elem></script>
<script id="ssl-enum-ciphers" output="..."><table key="TLSv1.2"><table key="ciphers"><table>
<elem key="kex_info">ecdh_x25519</elem><elem key="name">TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256</elem>
<elem key="strength">A</elem></table><table><elem key="kex_info">ecdh_x25519</elem>
<elem key="name">TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384</elem><elem key="strength">A</elem></table></table>
<table key="compressors"><elem>NULL</elem></table><elem key="cipher preference">server</elem></table>
<table key="TLSv1.3"><table key="ciphers"><table><elem key="kex_info">ecdh_x25519</elem>
<elem key="name">TLS_AKE_WITH_AES_256_GCM_SHA384</elem><elem key="strength">A</elem></table></table>
<elem key="cipher preference">server</elem></table><elem key="least strength">A</elem></script>` +
  `</port></ports></host></nmaprun>`;

const GOOD: TlsScan = {
  versions: { 'TLSv1.2': ['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256'] },
  certificate: { keyType: 'rsa', keyBits: 2048, signature: 'sha256WithRSAEncryption' },
};

describe('TLS policy', () => {
  it("reads every version's suites and the certificate from nmap's XML", () => {
    expect(parseNmapTlsScan(NMAP_XML)).toEqual({
      versions: {
        'TLSv1.2': ['TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256', 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384'],
        'TLSv1.3': ['TLS_AKE_WITH_AES_256_GCM_SHA384'],
      },
      certificate: { keyType: 'rsa', keyBits: 2048, signature: 'sha256WithRSAEncryption' },
    });
    expect(() => parseNmapTlsScan('<nmaprun/>')).toThrow(/no ssl-enum-ciphers result/);
  });

  it('holds for forward-secret AEAD suites on exactly the intended versions, with a strong certificate', () => {
    expect(tlsPolicyViolations(GOOD, ['TLSv1.2'])).toEqual([]);
    expect(tlsPolicyViolations(parseNmapTlsScan(NMAP_XML), ['TLSv1.2', 'TLSv1.3'])).toEqual([]);
  });

  it(
    'names every break: a version too many or missing, a ' +
      'suite without forward secrecy or AEAD, a weak certificate',
    () => {
      const loose: TlsScan = {
        versions: {
          'TLSv1.0': ['TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA'],
          'TLSv1.2': [
            'TLS_RSA_WITH_AES_128_GCM_SHA256',
            'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256',
            'TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA',
          ],
        },
        certificate: { keyType: 'rsa', keyBits: 1024, signature: 'sha1WithRSAEncryption' },
      };
      expect(tlsPolicyViolations(loose, ['TLSv1.2', 'TLSv1.3'])).toEqual([
        'versions offered: TLSv1.0, TLSv1.2; intended: TLSv1.2, TLSv1.3',
        'TLSv1.0 accepts TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA',
        'TLSv1.2 accepts TLS_RSA_WITH_AES_128_GCM_SHA256',
        'TLSv1.2 accepts TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256',
        'TLSv1.2 accepts TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA',
        'certificate key: rsa 1024 bits',
        'certificate signature: sha1WithRSAEncryption',
      ]);
      const anonymous = { ...GOOD, versions: { 'TLSv1.2': ['TLS_ECDH_anon_WITH_AES_128_CBC_SHA'] } };
      expect(tlsPolicyViolations(anonymous, ['TLSv1.2'])).toEqual([
        'TLSv1.2 accepts TLS_ECDH_anon_WITH_AES_128_CBC_SHA',
      ]);
      expect(
        tlsPolicyViolations({ ...GOOD, certificate: { keyType: 'ec', keyBits: 256, signature: 'ecdsa-with-SHA384' } }, [
          'TLSv1.2',
        ]),
      ).toEqual([]);
    },
  );
});
