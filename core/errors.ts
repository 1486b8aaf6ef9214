/**
 * Two kinds of error (see STYLE.md): a {@linkcode UsageError} is the user's mistake — a bad
 * flag, an impossible size, no GPU — and is printed on one line with exit code 2. Anything else
 * is a bug and shows its stack.
 *
 * @module
 */

/** A mistake the user can fix; the CLI prints `attnbench: <message>` and exits with `exitCode`. */
export class UsageError extends Error {
  /** Process exit code; 2 for bad input. */
  readonly exitCode: number;

  /**
   * @example
   * ```ts
   * import { assert } from "@std/assert";
   * import { UsageError } from "./errors.ts";
   * const e = new UsageError("--n must be a positive integer, got 0");
   * assert(e.exitCode === 2);
   * ```
   */
  constructor(message: string, exitCode = 2) {
    super(message);
    this.name = "UsageError";
    this.exitCode = exitCode;
  }
}

/** Exit code of an internal error: a bug, not the user's input (see `main.ts`). */
export const EXIT_INTERNAL = 3;
