import type { Readable } from 'node:stream';

/** One message of the engine's build/pull/import/push JSON stream. */
export interface EngineMessage {
  stream?: string;
  status?: string;
  progress?: string;
  id?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string; Digest?: string; Tag?: string };
}

export interface BuildRequest {
  readonly dockerfile: string;
  readonly target: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly noCache: boolean;
}

export interface ImageFacts {
  readonly id: string;
  readonly size: number;
  readonly tags: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
}

/** Push credentials, in the shape of the engine's X-Registry-Auth header: a user and password, or an identity token. */
export type RegistryAuth =
  | { readonly username: string; readonly password: string; readonly serveraddress: string }
  | { readonly identitytoken: string; readonly serveraddress: string };

export interface RunRequest {
  readonly image: string;
  readonly command: readonly string[];
  /** Written to the container's stdin, then closed: the way secrets reach a container, never argv or env. */
  readonly stdin: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Overrides the image's entrypoint ([] clears it). */
  readonly entrypoint?: readonly string[];
  readonly user?: string;
  /** A network to join instead of none (the bench's load generator); the product's containers have none. */
  readonly network?: string;
  /** The CPUs it may run on (cpuset, "0-2"): the bench keeps its load generator off the server's CPU. */
  readonly cpus?: string;
}

export interface RunResult {
  readonly exitCode: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** A command whose container's file system is wanted afterwards (it runs with network: it may fetch packages). */
export interface ExportRequest {
  readonly image: string;
  readonly command: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  /** Every non-blank line the command prints, stdout and stderr alike, as it comes. */
  readonly onLine: (line: string) => void;
}

/** Images: what the engine holds, what goes in (pull, import, load, build) and out (push, one file). */
export interface ImageClient {
  inspectImage(reference: string): Promise<ImageFacts | undefined>;
  pull(reference: string, onMessage: (m: EngineMessage) => void): Promise<void>;
  importImage(tarball: Readable, reference: string, changes: readonly string[]): Promise<void>;
  /** Loads a `docker load` archive (manifest.json, config, layers): the image id is the config's digest. */
  loadImage(archive: Readable): Promise<void>;
  build(context: Readable, request: BuildRequest, onMessage: (m: EngineMessage) => void): Promise<void>;
  tag(imageId: string, reference: string): Promise<void>;
  removeImage(reference: string): Promise<void>;
  /** Pushes a tag; resolves to the manifest digest the registry reported. */
  push(reference: string, auth: RegistryAuth | undefined, onMessage: (m: EngineMessage) => void): Promise<string>;
  /** One regular file of an image, read without starting a container; undefined if it is not there. */
  readFile(image: string, path: string): Promise<Buffer | undefined>;
}

/** Throwaway containers: each is removed whatever happens. */
export interface ContainerClient {
  /** Runs a container (without network unless asked) to completion. */
  run(request: RunRequest): Promise<RunResult>;
  /**
   * Runs the command, then, if it exited 0, hands the container's file system, as a tar stream, to
   * `consume`; resolves to the exit code.
   */
  runThenExport(request: ExportRequest, consume: (filesystem: Readable) => Promise<void>): Promise<number>;
}

/** The few engine operations the product uses: everything Docker sits behind this. */
export interface Engine extends ImageClient, ContainerClient {
  /** Where the engine is, for messages. */
  readonly endpoint: string;
  ping(): Promise<void>;
}
