import { describe, expect, it } from 'vitest';
import { listProfiles } from '../src/profiles.js';
import { claimedOutcome, openVex, packageUrl, tableVex, type ProbeResult } from '../src/vex.js';
import { loadVulnerabilityTable, parseVulnerabilityTable } from '../src/vulnerabilities.js';

const input = (results: ProbeResult[]) => ({
  table: loadVulnerabilityTable('ubuntu-16.04'),
  results,
  product: 'pkg:oci/memcached-hardened@sha256%3Aabc',
  documentId: 'urn:test:vex',
  author: 'test',
  timestamp: '2026-01-01T00:00:00.000Z',
  runId: 'run1',
});

describe('vulnerability tables and OpenVEX', () => {
  it('has a table for every profile, none of them read as a profile', () => {
    for (const profile of listProfiles()) expect(loadVulnerabilityTable(profile).profile).toBe(profile);
    expect(listProfiles()).not.toContain('vulnerabilities');
  });

  it('refuses a table with an unknown key or a fixed entry without its version', () => {
    type Raw = { entries: Array<Record<string, unknown>> };
    const table = JSON.parse(JSON.stringify(loadVulnerabilityTable('debian-12'))) as Raw;
    table.entries[0]!.extra = 1;
    expect(() => parseVulnerabilityTable(table, 't')).toThrow(/unknown keys: extra/);
    delete table.entries[0]!.extra;
    table.entries[0]!.fixedInPackage = { fixed: true, version: null, note: 'n' };
    expect(() => parseVulnerabilityTable(table, 't')).toThrow(/fixedInPackage.version/);
  });

  it('makes one statement per entry: evidence first, then the table, and no result is no claim', () => {
    const { table } = input([]);
    const fixed = table.entries.find((e) => e.fixedInPackage.fixed)!;
    const unfixed = table.entries.find((e) => !e.fixedInPackage.fixed && e.notAffectedJustification)!;
    const vex = openVex(
      input([
        { probe: fixed.probe, outcome: 'fixed', image: 'status 0x81', control: 'no answer' },
        { probe: unfixed.probe, outcome: 'not-reachable', image: 'nothing' },
        { probe: 'sasl-auth-body-above-2gib', outcome: 'affected', image: 'desync' },
      ]),
    );
    expect(vex['@context']).toBe('https://openvex.dev/ns/v0.2.0');
    expect(vex.statements.map((s) => s.vulnerability.name)).toEqual(table.entries.map((e) => e.id));
    const byName = new Map(vex.statements.map((s) => [s.vulnerability.name, s]));
    const notPresent = { status: 'not_affected', justification: 'vulnerable_code_not_present' };
    expect(byName.get(fixed.id)).toMatchObject(notPresent);
    expect(byName.get(fixed.id)!.status_notes).toContain('control (xenial-original-1.4.25-2ubuntu1): no answer');
    const justified = { status: 'not_affected', justification: unfixed.notAffectedJustification };
    expect(byName.get(unfixed.id)).toMatchObject(justified);
    expect(byName.get('memcached-binprot-bodylen-above-2gib')!.status).toBe('affected');
    expect(byName.get('memcached-binprot-bodylen-above-2gib')!.action_statement).toContain('1.6.42');
    const probed = [fixed.probe, unfixed.probe, 'sasl-auth-body-above-2gib'];
    const unprobed = table.entries.find((e) => !probed.includes(e.probe))!;
    expect(byName.get(unprobed.id)!.status).toBe('under_investigation');
    expect(vex.statements[0]!.products[0]!.subcomponents[0]!['@id']).toBe(packageUrl(table));
    expect(packageUrl(table)).toBe('pkg:deb/ubuntu/memcached@1.4.25-2ubuntu1.5?distro=ubuntu-16.04');
  });

  it('says before any probe ran what the table claims, and that no probe backs it', () => {
    for (const profile of listProfiles()) {
      const table = loadVulnerabilityTable(profile);
      const { product, documentId, author, timestamp } = input([]);
      const vex = tableVex({ table, product, documentId, author, timestamp });
      expect(vex.tooling).toContain('no probe ran');
      expect(vex.statements.map((s) => s.vulnerability.name)).toEqual(table.entries.map((e) => e.id));
      for (const [i, s] of vex.statements.entries()) {
        const entry = table.entries[i]!;
        expect(s.status_notes).toMatch(/^no probe ran for this document/);
        expect(s.status_notes).toContain(entry.probe);
        expect(s.status).toBe(claimedOutcome(entry) === 'affected' ? 'affected' : 'not_affected');
      }
      // The bodylen bug is in the package; the guard is the inline mitigation.
      const bodylen = vex.statements.find((s) => s.vulnerability.name === 'memcached-binprot-bodylen-above-2gib')!;
      expect(bodylen).toMatchObject({ status: 'not_affected', justification: 'inline_mitigations_already_exist' });
      expect(bodylen.impact_statement).toContain('guard');
    }
  });
});
