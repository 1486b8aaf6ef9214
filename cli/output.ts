/**
 * All printing goes through an {@linkcode Output}, so `--json` and `--quiet` are easy and tests
 * can capture what a command prints.
 *
 * @module
 */

/** Where a command writes: `out` for results (stdout), `err` for progress and diagnostics. */
export interface Output {
  /** A line of results on stdout. */
  out(line: string): void;
  /** A line of diagnostics on stderr (suppressed by `--quiet` only for progress, never errors). */
  err(line: string): void;
  /**
   * Progress: on a terminal, text that overwrites itself (`""` clears it); otherwise a plain
   * line per call (`""` prints nothing). Silent with `--quiet`.
   */
  progress(text: string): void;
  /** Whether stderr is a terminal (progress bars are drawn only then; plain lines otherwise). */
  readonly isTerminal: boolean;
}

const encoder = new TextEncoder();

/**
 * The process's real stdout and stderr.
 *
 * @example
 * ```ts
 * import { consoleOutput } from "./output.ts";
 * const io = consoleOutput();
 * io.err("checking adapter");
 * ```
 */
export function consoleOutput(quiet = false): Output {
  const isTerminal = Deno.stderr.isTerminal();
  let progressShown = false;
  const clear = () => {
    if (progressShown) {
      Deno.stderr.writeSync(encoder.encode("\r\x1b[2K"));
      progressShown = false;
    }
  };
  return {
    isTerminal,
    out(line) {
      clear();
      Deno.stdout.writeSync(encoder.encode(line + "\n"));
    },
    err(line) {
      clear();
      Deno.stderr.writeSync(encoder.encode(line + "\n"));
    },
    progress(text) {
      if (quiet) return;
      if (!isTerminal) {
        if (text !== "") Deno.stderr.writeSync(encoder.encode(text + "\n"));
        return;
      }
      Deno.stderr.writeSync(encoder.encode("\r\x1b[2K" + text));
      progressShown = text !== "";
    },
  };
}

/** An {@linkcode Output} that records lines, for tests. */
export interface CapturedOutput extends Output {
  readonly stdout: string[];
  readonly stderr: string[];
}

/**
 * Captures lines in memory.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { captureOutput } from "./output.ts";
 * const io = captureOutput();
 * io.out("hello");
 * assert(io.stdout[0] === "hello");
 * ```
 */
export function captureOutput(): CapturedOutput {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    isTerminal: false,
    out: (line) => void stdout.push(line),
    err: (line) => void stderr.push(line),
    progress: () => {},
  };
}
