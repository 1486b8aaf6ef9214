/**
 * `attnbench`: the command-line entry. Dispatches to a subcommand; a {@linkcode UsageError} is
 * printed on one line with its exit code; anything else is a bug: one line saying so and how to
 * see the stack (`ATTNBENCH_DEBUG=1`), exit {@linkcode EXIT_INTERNAL}.
 *
 * Exit codes: 0 ok; 1 a regression, a failed verification or a failed run; 2 bad input or
 * environment; 3 an internal error (a bug); 130 / 143 interrupted by SIGINT / SIGTERM.
 *
 * @module
 */

import { EXIT_INTERNAL, UsageError } from "../core/errors.ts";
import { withSignalRollback } from "../analysis/results_io.ts";
import { consoleOutput, type Output } from "./output.ts";
import type { Command } from "./command.ts";
import { benchCommand } from "./commands/bench.ts";
import { checkCommand } from "./commands/check.ts";
import { devicesCommand } from "./commands/devices.ts";
import { modelCommand } from "./commands/model.ts";
import { reportCommand } from "./commands/report.ts";
import { tuneCommand } from "./commands/tune.ts";
import { verifyCommand } from "./commands/verify.ts";
import { VERSION } from "./version.ts";

/** Every subcommand, in the order the help lists them. */
export const COMMANDS: readonly Command[] = [
  devicesCommand,
  verifyCommand,
  benchCommand,
  tuneCommand,
  modelCommand,
  reportCommand,
  checkCommand,
];

function usage(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `attnbench ${VERSION} — attention kernels in WGSL on your GPU: correctness, IO, speed`,
    "",
    "Usage: attnbench <command> [flags]     (attnbench <command> --help for its flags)",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`),
  ].join("\n");
}

/**
 * Runs the CLI with `args` and returns the exit code; never calls `Deno.exit` itself.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { main } from "./main.ts";
 * import { captureOutput } from "./output.ts";
 * const io = captureOutput();
 * assert(await main(["--help"], io) === 0);
 * ```
 */
export async function main(args: string[], io: Output): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.out(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version") {
    io.out(VERSION);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  const prefix = command ? `attnbench ${command.name}: ` : "attnbench: ";
  try {
    if (!command) {
      throw new UsageError(
        `unknown command "${name}"; commands: ${COMMANDS.map((c) => c.name).join(", ")}`,
      );
    }
    return await command.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(prefix + oneLine(e.message));
      return e.exitCode;
    }
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    if (debugging()) {
      io.err(`${prefix}internal error (a bug, please report it): ${oneLine(what)}`);
      io.err(e instanceof Error && e.stack ? e.stack : what);
    } else {
      io.err(
        `${prefix}internal error (a bug, please report it): ${oneLine(what)}; ` +
          `rerun with ATTNBENCH_DEBUG=1 for the stack`,
      );
    }
    return EXIT_INTERNAL;
  }
}

function oneLine(text: string): string {
  const line = text.split("\n")[0]!.trim();
  return line.length > 500 ? `${line.slice(0, 497)}...` : line;
}

function debugging(): boolean {
  try {
    return Deno.env.get("ATTNBENCH_DEBUG") === "1";
  } catch {
    return false;
  }
}

/** Flags that never take a value: a `--quiet` after one of them is a flag of its own. */
const BOOLEAN_FLAGS = new Set([
  "causal",
  "help",
  "h",
  "json",
  "count-io",
  "verify",
  "no-ceilings",
  "no-report",
  "quiet",
  "allow-device-mismatch",
  "no-timing",
]);

/**
 * Splits `--quiet` off the arguments: it may stand anywhere, but not as another flag's value
 * (`--title --quiet` keeps it as the title) and not after `--`.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { takeQuiet } from "./main.ts";
 * assert(takeQuiet(["bench", "--quiet", "--n", "64"]).quiet);
 * const kept = takeQuiet(["report", "a.json", "--title", "--quiet"]);
 * assert(!kept.quiet && kept.args.length === 4);
 * ```
 */
export function takeQuiet(args: readonly string[]): { args: string[]; quiet: boolean } {
  let quiet = false;
  let rest = false;
  const out: string[] = [];
  for (const [i, arg] of args.entries()) {
    if (arg === "--") rest = true;
    const prev = /^--?([^=]+)$/.exec(args[i - 1] ?? "")?.[1];
    const isValue = i > 1 && prev !== undefined && !BOOLEAN_FLAGS.has(prev) &&
      !/^-\d/.test(args[i - 1]!);
    if (!rest && arg === "--quiet" && !isValue) {
      quiet = true;
      continue;
    }
    out.push(arg);
  }
  return { args: out, quiet };
}

/**
 * Mesa's GL/EGL path (libwayland-client) prints `error: XDG_RUNTIME_DIR is invalid or not set
 * in the environment.` when that variable is unset or not an absolute directory, common in
 * containers and CI. The variable is read when the adapter is requested, not when the process
 * starts, so giving the process a private one (mode 0700, removed on exit) before any GPU work
 * keeps that noise from users.
 *
 * @example
 * ```ts ignore
 * import { ensureRuntimeDir } from "./main.ts";
 * ensureRuntimeDir(); // XDG_RUNTIME_DIR is now an absolute, private directory
 * ```
 */
export function ensureRuntimeDir(): void {
  try {
    const dir = Deno.env.get("XDG_RUNTIME_DIR");
    if (dir && dir.startsWith("/") && Deno.statSync(dir).isDirectory) return;
  } catch { /* unset, unreadable or missing: make one */ }
  try {
    const dir = Deno.makeTempDirSync({ prefix: "attnbench-runtime-" });
    Deno.chmodSync(dir, 0o700);
    Deno.env.set("XDG_RUNTIME_DIR", dir);
    // "unload" runs on Deno.exit too, also after an interrupt.
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* already gone */ }
    });
  } catch {
    // No permission to make one: the noise is harmless.
  }
}

if (import.meta.main) {
  if (Deno.build.os === "linux") ensureRuntimeDir();
  const { args, quiet } = takeQuiet(Deno.args);
  const code = await withSignalRollback(() => main(args, consoleOutput(quiet)));
  Deno.exit(code);
}
