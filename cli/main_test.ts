/**
 * The top-level dispatch of `attnbench`, in process: help, version, unknown commands and every
 * command's `--help`. No GPU needed. The same paths as real subprocesses are in
 * `commands/cli_e2e_test.ts`.
 *
 * @module
 */

import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { COMMANDS, main } from "./main.ts";
import { captureOutput } from "./output.ts";
import { VERSION } from "./version.ts";

const ALL = ["devices", "verify", "bench", "tune", "model", "report", "check"];

Deno.test("--help, -h and help list every command and return 0", async () => {
  assertEquals(COMMANDS.map((c) => c.name), ALL);
  for (const flag of ["--help", "-h", "help"]) {
    const io = captureOutput();
    assertEquals(await main([flag], io), 0, flag);
    const text = io.stdout.join("\n");
    assertStringIncludes(text, "Usage: attnbench <command>");
    for (const c of COMMANDS) {
      assertMatch(text, new RegExp(`^  ${c.name} +${escape(c.summary)}$`, "m"), c.name);
    }
    assertEquals(io.stderr, []);
  }
});

Deno.test("no arguments prints the usage and returns 2", async () => {
  const io = captureOutput();
  assertEquals(await main([], io), 2);
  assertStringIncludes([...io.stdout, ...io.stderr].join("\n"), "Usage: attnbench <command>");
});

Deno.test("an unknown command returns 2 with one line on stderr and no stack", async () => {
  for (const name of ["nope", "--nope", "Bench"]) {
    const io = captureOutput();
    assertEquals(await main([name, "--n", "64"], io), 2, name);
    assertEquals(io.stderr.length, 1, io.stderr.join("\n"));
    const line = io.stderr[0]!;
    assert(!line.includes("\n"), line);
    assertStringIncludes(line, `unknown command "${name}"`);
    for (const c of ALL) assertStringIncludes(line, c);
    assertMatch(line, /^attnbench: /);
    assert(!/\bat .*:\d+:\d+/.test(line), `no stack expected: ${line}`);
    assertEquals(io.stdout, []);
  }
});

Deno.test("--version prints the version, which equals deno.json's", async () => {
  const io = captureOutput();
  assertEquals(await main(["--version"], io), 0);
  assertEquals(io.stdout, [VERSION]);
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
  ) as { version: string };
  assertEquals(VERSION, config.version);
});

for (const command of COMMANDS) {
  Deno.test(`${command.name} --help and -h print its help and return 0`, async () => {
    for (const flag of ["--help", "-h"]) {
      const io = captureOutput();
      assertEquals(await main([command.name, flag], io), 0, `${command.name} ${flag}`);
      const text = io.stdout.join("\n");
      assertEquals(text, command.help);
      assertStringIncludes(text, `attnbench ${command.name}`);
      assertEquals(io.stderr, []);
    }
  });
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test("a bad --pass on verify, bench, model and tune: one line on stderr, exit 2", async () => {
  for (const command of ["verify", "bench", "model", "tune"]) {
    const io = captureOutput();
    assertEquals(await main([command, "--pass", "both"], io), 2, command);
    assertEquals(io.stderr.length, 1, io.stderr.join("\n"));
    assertStringIncludes(io.stderr[0]!, '--pass must be one of fwd, bwd, fwd+bwd, got "both"');
    assert(!/\bat .*:\d+:\d+/.test(io.stderr[0]!), "no stack");
  }
});
