import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectPath } from './paths.js';

/**
 * The known vulnerabilities of the memcached a profile ships, one file per profile in vulnerabilities/
 * (beside images/, not in it: `listProfiles` reads every JSON file of images/ as a profile).
 */

export const REACHABILITY = ['before-authentication', 'after-authentication', 'not-reachable'] as const;
export type Reachability = (typeof REACHABILITY)[number];

/** OpenVEX's justifications for `not_affected`. */
export const JUSTIFICATIONS = [
  'component_not_present',
  'vulnerable_code_not_present',
  'vulnerable_code_not_in_execute_path',
  'vulnerable_code_cannot_be_controlled_by_adversary',
  'inline_mitigations_already_exist',
] as const;
export type Justification = (typeof JUSTIFICATIONS)[number];

/** The vulnerable build a probe is run against as its positive control. */
export const CONTROL_KINDS = [
  'xenial-original-1.4.25-2ubuntu1',
  'image-with-udp',
  'image-without-sasl',
  'image-with-auth-file',
  /** The same image with its guard (build-files/memcached-guard.c) not preloaded: the package's own behaviour. */
  'image-without-guard',
  'none',
] as const;
export type ControlKind = (typeof CONTROL_KINDS)[number];

export interface VulnerabilityEntry {
  readonly id: string;
  readonly aliases: readonly string[];
  readonly title: string;
  /** What triggers it, from the upstream fix commit. */
  readonly trigger: string;
  readonly fixedUpstreamIn: string;
  readonly fixCommits: readonly string[];
  /** Whether the profile's package version carries the fix (by upstream version or a distribution patch). */
  readonly fixedInPackage: { readonly fixed: boolean; readonly version: string | null; readonly note: string };
  /** Reachable in this image's configuration: before / after authentication, or not at all (and why). */
  readonly reachable: Reachability;
  readonly reachableWhy: string;
  /** Why the image is not affected although the package is not fixed (null when the package is fixed). */
  readonly notAffectedJustification: Justification | null;
  readonly control: { readonly kind: ControlKind; readonly note: string };
  /** The probe's name in test/integration/vulnerabilities.test.ts. */
  readonly probe: string;
}

export interface VulnerabilityTable {
  readonly profile: string;
  readonly package: string;
  readonly packageVersion: string;
  readonly sources: string;
  readonly entries: readonly VulnerabilityEntry[];
}

class TableError extends Error {}

function field<T>(
  record: Record<string, unknown>,
  key: string,
  where: string,
  holds: (v: unknown) => boolean,
  what: string,
): T {
  const value = record[key];
  if (!holds(value)) throw new TableError(`${where}.${key} must be ${what}`);
  return value as T;
}

const isString = (v: unknown) => typeof v === 'string' && v.length > 0;
const isStringList = (v: unknown) => Array.isArray(v) && v.every(isString);
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const within = (values: readonly string[]) => (v: unknown) => typeof v === 'string' && values.includes(v);

function parseEntry(value: unknown, where: string): VulnerabilityEntry {
  if (!isRecord(value)) throw new TableError(`${where} must be an object`);
  const s = (key: string) => field<string>(value, key, where, isString, 'a non-empty string');
  const fixed = value.fixedInPackage;
  if (!isRecord(fixed) || typeof fixed.fixed !== 'boolean' || !isString(fixed.note)) {
    throw new TableError(`${where}.fixedInPackage must be { fixed, version, note }`);
  }
  if (fixed.fixed ? !isString(fixed.version) : fixed.version !== null) {
    throw new TableError(`${where}.fixedInPackage.version must name the fixed version, or be null when not fixed`);
  }
  const control = value.control;
  if (!isRecord(control) || !within(CONTROL_KINDS)(control.kind) || !isString(control.note)) {
    throw new TableError(`${where}.control must be { kind: ${CONTROL_KINDS.join('|')}, note }`);
  }
  const justification = value.notAffectedJustification;
  if (justification !== null && !within(JUSTIFICATIONS)(justification)) {
    throw new TableError(`${where}.notAffectedJustification must be null or one of ${JUSTIFICATIONS.join(', ')}`);
  }
  const entry: VulnerabilityEntry = {
    id: s('id'),
    aliases: field<string[]>(value, 'aliases', where, isStringList, 'a list of strings'),
    title: s('title'),
    trigger: s('trigger'),
    fixedUpstreamIn: s('fixedUpstreamIn'),
    fixCommits: field<string[]>(value, 'fixCommits', where, isStringList, 'a list of commit ids'),
    fixedInPackage: {
      fixed: fixed.fixed,
      version: (fixed.version as string | null) ?? null,
      note: fixed.note as string,
    },
    reachable: field<Reachability>(value, 'reachable', where, within(REACHABILITY), REACHABILITY.join(' | ')),
    reachableWhy: s('reachableWhy'),
    notAffectedJustification: justification as Justification | null,
    control: { kind: control.kind as ControlKind, note: control.note as string },
    probe: s('probe'),
  };
  const known = new Set(Object.keys(entry));
  const unknown = Object.keys(value).filter((key) => !known.has(key));
  if (unknown.length > 0) throw new TableError(`${where} has unknown keys: ${unknown.join(', ')}`);
  return entry;
}

/** Validates a parsed table; `source` names it in errors. */
export function parseVulnerabilityTable(data: unknown, source: string): VulnerabilityTable {
  if (!isRecord(data) || !Array.isArray(data.entries)) throw new TableError(`${source} must be an object with entries`);
  const s = (key: string) => field<string>(data, key, source, isString, 'a non-empty string');
  const entries = data.entries.map((entry, index) => parseEntry(entry, `${source}.entries[${index}]`));
  const ids = entries.map((entry) => entry.id);
  const duplicate = ids.find((id, index) => ids.indexOf(id) !== index);
  if (duplicate) throw new TableError(`${source} lists ${duplicate} twice`);
  return {
    profile: s('profile'),
    package: s('package'),
    packageVersion: s('packageVersion'),
    sources: s('sources'),
    entries,
  };
}

/** The vulnerability table of a profile, from vulnerabilities/<profile>.json. */
export function loadVulnerabilityTable(profile: string, dir = projectPath('vulnerabilities')): VulnerabilityTable {
  const file = join(dir, `${profile}.json`);
  const table = parseVulnerabilityTable(JSON.parse(readFileSync(file, 'utf8')) as unknown, file);
  if (table.profile !== profile) throw new TableError(`${file} names the profile '${table.profile}'`);
  return table;
}
