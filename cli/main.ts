/**
 * `attnbench`: the command-line entry. Dispatches to a subcommand; a {@linkcode UsageError} is
 * printed on one line with its exit code, anything else is a bug and shows its stack.
 *
 * @module
 */

import { UsageError } from "../core/errors.ts";
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
 * import { main } from "./main.ts";
 * import { captureOutput } from "./output.ts";
 * const io = captureOutput();
 * console.assert(await main(["--help"], io) === 0);
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
  try {
    if (!command) {
      throw new UsageError(
        `unknown command "${name}"; commands: ${COMMANDS.map((c) => c.name).join(", ")}`,
      );
    }
    return await command.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(
        `attnbench ${command?.name ?? ""}: ${e.message}`.replace("attnbench : ", "attnbench: "),
      );
      return e.exitCode;
    }
    throw e;
  }
}

if (import.meta.main) {
  const quiet = Deno.args.includes("--quiet");
  const code = await main(Deno.args.filter((a) => a !== "--quiet"), consoleOutput(quiet));
  Deno.exit(code);
}
