/**
 * Image references as the engine reads them: `[registry[:port]/]repository[:tag][@digest]`. Like docker,
 * the first component names a registry only when it looks like a host (a '.' or ':' in it, `localhost`,
 * or upper case); `ubuntu:16.04` and `team/memcached` name none.
 */
export interface ImageReference {
  /** `host[:port]`; undefined for a name without a registry. */
  readonly registry?: string;
  /** The path below the registry: lower-case components separated by '/'. */
  readonly repository: string;
  readonly tag?: string;
  /** `algorithm:hex`. */
  readonly digest?: string;
}

/** The tag docker assumes when a reference names none. */
export const DEFAULT_TAG = 'latest';
/** Docker's limit on the name (registry and repository). */
const MAX_NAME_LENGTH = 255;

const HOST_COMPONENT = '(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])';
const HOST = new RegExp(`^${HOST_COMPONENT}(?:\\.${HOST_COMPONENT})*(?::[0-9]+)?$`);
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const REPOSITORY = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;

/** Docker's rule for telling a registry host from the first path component. */
function namesRegistry(component: string): boolean {
  return /[.:]/.test(component) || component === 'localhost' || component !== component.toLowerCase();
}

/** The reference, or why `text` is none. */
function parse(text: string): ImageReference | string {
  const at = text.indexOf('@');
  const digest = at < 0 ? undefined : text.slice(at + 1);
  if (digest !== undefined && !DIGEST.test(digest)) return `invalid digest '${digest}'`;
  let rest = at < 0 ? text : text.slice(0, at);
  const slash = rest.indexOf('/');
  const first = slash < 0 ? undefined : rest.slice(0, slash);
  const registry = first !== undefined && namesRegistry(first) ? first : undefined;
  if (registry !== undefined) {
    if (!HOST.test(registry)) return `invalid registry host '${registry}'`;
    rest = rest.slice(registry.length + 1);
  }
  // With the registry gone, a ':' can only start the tag.
  const colon = rest.indexOf(':');
  const repository = colon < 0 ? rest : rest.slice(0, colon);
  const tag = colon < 0 ? undefined : rest.slice(colon + 1);
  if (!REPOSITORY.test(repository))
    return `invalid repository '${repository}' (lower-case components separated by '/')`;
  if (tag !== undefined && !TAG.test(tag)) return `invalid tag '${tag}'`;
  if ((registry === undefined ? 0 : registry.length + 1) + repository.length > MAX_NAME_LENGTH)
    return `name longer than ${MAX_NAME_LENGTH} characters`;
  return {
    ...(registry !== undefined ? { registry } : {}),
    repository,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

/** Why `text` is not an image reference, or undefined. */
export function imageReferenceProblem(text: string): string | undefined {
  const parsed = parse(text);
  return typeof parsed === 'string' ? parsed : undefined;
}

/** Parses an image reference; throws, naming the faulty part, on anything else. */
export function parseImageReference(text: string): ImageReference {
  const parsed = parse(text);
  if (typeof parsed === 'string') throw new Error(`'${text}' is not an image reference: ${parsed}`);
  return parsed;
}

/** `[registry/]repository`: the name the engine tags and imports under. */
export function imageName(reference: ImageReference): string {
  return reference.registry === undefined ? reference.repository : `${reference.registry}/${reference.repository}`;
}

/** The tag, or the one docker assumes. */
export function tagOf(reference: ImageReference): string {
  return reference.tag ?? DEFAULT_TAG;
}

/** The reference as text again: `parseImageReference(formatImageReference(r))` equals `r`. */
export function formatImageReference(reference: ImageReference): string {
  const tag = reference.tag === undefined ? '' : `:${reference.tag}`;
  const digest = reference.digest === undefined ? '' : `@${reference.digest}`;
  return `${imageName(reference)}${tag}${digest}`;
}
