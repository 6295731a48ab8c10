/** Exit codes of every command: 0 ok, 1 failure (engine, build, run), 2 bad input. */
export const EXIT_FAILURE = 1;
export const EXIT_BAD_INPUT = 2;

/** An error whose message is one line meant for the user; `exitCode` says which kind it is. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_BAD_INPUT,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

/** Bad input from the user: exit 2. */
export function badInput(message: string): UserError {
  return new UserError(message, EXIT_BAD_INPUT);
}

/** The engine, the build or the bootstrap failed: exit 1. */
export function failure(message: string): UserError {
  return new UserError(message, EXIT_FAILURE);
}
