import { projectPath } from './paths.js';
import type { Justification, VulnerabilityEntry, VulnerabilityTable } from './vulnerabilities.js';

/**
 * An OpenVEX document from a profile's vulnerability table and the results of its probes in one run: every
 * entry of the table becomes one statement, and each statement cites its probe and what the probe saw. A
 * pure function: the caller supplies the time, the product and the results. Before any probe ran (at build
 * time) the document is the table's own claims, and every statement says that no probe backs it.
 */

/** What a probe concluded about the image. */
export type ProbeOutcome = 'fixed' | 'not-reachable' | 'affected' | 'not-run';

export interface ProbeResult {
  readonly probe: string;
  readonly outcome: ProbeOutcome;
  /** What the image showed on the wire (or in the binary, for a probe without a network trigger). */
  readonly image: string;
  /** What the positive control showed, if the probe has one. */
  readonly control?: string;
}

export interface VexInput {
  readonly table: VulnerabilityTable;
  readonly results: readonly ProbeResult[];
  /** The product's identifier (a package URL of the image, say). */
  readonly product: string;
  /** The document's IRI (unique per run and image). */
  readonly documentId: string;
  readonly author: string;
  /** ISO 8601. */
  readonly timestamp: string;
  /** The run the results come from, cited in every statement. */
  readonly runId: string;
}

export type VexStatus = 'not_affected' | 'affected' | 'fixed' | 'under_investigation';

export interface VexStatement {
  vulnerability: { name: string; description: string; aliases?: string[] };
  products: Array<{ '@id': string; subcomponents: Array<{ '@id': string }> }>;
  status: VexStatus;
  justification?: Justification;
  impact_statement?: string;
  action_statement?: string;
  status_notes: string;
}

export interface VexDocument {
  '@context': string;
  '@id': string;
  author: string;
  timestamp: string;
  version: number;
  tooling: string;
  statements: VexStatement[];
}

export const OPENVEX_CONTEXT = 'https://openvex.dev/ns/v0.2.0';

/** The package URL of the profile's memcached package (`ubuntu-16.04` → pkg:deb/ubuntu/memcached@…). */
export function packageUrl(table: VulnerabilityTable): string {
  const distro = table.profile.split('-')[0] ?? table.profile;
  const version = encodeURIComponent(table.packageVersion);
  return `pkg:deb/${distro}/${table.package}@${version}?distro=${encodeURIComponent(table.profile)}`;
}

/** Where a test run writes its evidence-backed document for one image (profile and credential mode). */
export function runVexPath(runId: string, profile: string, credentials: string): string {
  return projectPath('reports', `vex-${runId}-${profile}-${credentials}.json`);
}

/** What the table says the entry's probe must find on the image. */
export function claimedOutcome(entry: VulnerabilityEntry): Exclude<ProbeOutcome, 'not-run'> {
  if (entry.reachable === 'not-reachable') return 'not-reachable';
  return entry.fixedInPackage.fixed || entry.notAffectedJustification ? 'fixed' : 'affected';
}

function evidence(entry: VulnerabilityEntry, result: ProbeResult | undefined, runId: string): string {
  if (!result) return `probe ${entry.probe} did not run in run ${runId}`;
  const check = result.control === undefined ? '' : `; check: ${result.control}`;
  const control =
    entry.control.kind === 'none'
      ? `no vulnerable control (${entry.control.note})${check}`
      : `control (${entry.control.kind}): ${result.control ?? 'not run'}`;
  return `probe ${entry.probe}, run ${runId}: ${result.outcome}; image: ${result.image}; ${control}`;
}

type StatementInput = Pick<VexInput, 'table' | 'product'>;

function statement(
  entry: VulnerabilityEntry,
  outcome: ProbeOutcome | undefined,
  notes: string,
  input: StatementInput,
): VexStatement {
  const base = {
    vulnerability: {
      name: entry.id,
      description: entry.title,
      ...(entry.aliases.length > 0 ? { aliases: [...entry.aliases] } : {}),
    },
    products: [{ '@id': input.product, subcomponents: [{ '@id': packageUrl(input.table) }] }],
    status_notes: notes,
  };
  // The probe's evidence outranks the table's claim: a probe that saw the bug makes the statement `affected`.
  if (outcome === 'affected') {
    return {
      ...base,
      status: 'affected',
      impact_statement: `${entry.trigger}; reachable ${entry.reachable}: ${entry.reachableWhy}`,
      action_statement:
        `not fixed in ${input.table.package} ${input.table.packageVersion}; fixed upstream in ` +
        `${entry.fixedUpstreamIn}${entry.fixCommits.length > 0 ? ` (${entry.fixCommits.join(', ')})` : ''}`,
    };
  }
  if (!outcome || outcome === 'not-run') return { ...base, status: 'under_investigation' };
  if (entry.fixedInPackage.fixed) {
    return {
      ...base,
      status: 'not_affected',
      justification: 'vulnerable_code_not_present',
      impact_statement:
        `fixed in ${input.table.package} ${entry.fixedInPackage.version} ` + `(${entry.fixedInPackage.note})`,
    };
  }
  return {
    ...base,
    status: 'not_affected',
    justification: entry.notAffectedJustification ?? 'vulnerable_code_not_in_execute_path',
    impact_statement: `${entry.fixedInPackage.note}; ${entry.reachableWhy}`,
  };
}

/** One statement per table entry, in the table's order. */
export function openVex(input: VexInput): VexDocument {
  const byProbe = new Map(input.results.map((result) => [result.probe, result]));
  const tooling = 'memcached-hardened vulnerability probes (test/integration/vulnerabilities.test.ts)';
  return vexDocument(input, tooling, (entry) => {
    const result = byProbe.get(entry.probe);
    return statement(entry, result?.outcome, evidence(entry, result, input.runId), input);
  });
}

/** The document around one statement per table entry, in the table's order. */
function vexDocument(
  input: TableVexInput,
  tooling: string,
  statementOf: (entry: TableVexInput['table']['entries'][number]) => VexDocument['statements'][number],
): VexDocument {
  return {
    '@context': OPENVEX_CONTEXT,
    '@id': input.documentId,
    author: input.author,
    timestamp: input.timestamp,
    version: 1,
    tooling,
    statements: input.table.entries.map(statementOf),
  };
}

export type TableVexInput = Omit<VexInput, 'results' | 'runId'>;

/**
 * The table's statements, for a document written before any probe ran (by build): each one is the table's
 * claim, and says so. The evidence-backed document is the test run's (runVexPath).
 */
export function tableVex(input: TableVexInput): VexDocument {
  const file = `vulnerabilities/${input.table.profile}.json`;
  const tooling = `memcached-hardened vulnerability table (${file}); no probe ran for this document`;
  return vexDocument(input, tooling, (entry) => {
    const notes =
      `no probe ran for this document: the claim of ${file}; probe ${entry.probe} ` +
      '(test/integration/vulnerabilities.test.ts) checks it in a verification run, whose document cites the result';
    return statement(entry, claimedOutcome(entry), notes, input);
  });
}
