/**
 * The shape every subcommand has.
 *
 * @module
 */

import type { Output } from "./output.ts";

/** A subcommand of `attnbench`. */
export interface Command {
  name: string;
  /** One line for the top-level help. */
  summary: string;
  /** The command's `--help` text. */
  help: string;
  /** Runs the command; resolves to the exit code; throws UsageError for bad input. */
  run(args: string[], io: Output): Promise<number>;
}
