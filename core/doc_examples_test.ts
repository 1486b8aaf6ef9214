/**
 * The doc examples run as tests (`deno test --doc`), so each must be able to fail: an example
 * that checks with `console.assert` only prints when wrong and passes anyway. This test fails on
 * any runnable example (a fenced `ts` block in a doc comment, not marked `ignore`) that calls it.
 */

import { assertEquals } from "@std/assert";

const ROOTS = ["core", "cli", "kernels", "analysis", "reports", "examples", "scripts"];

async function* tsFiles(dir: string): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* tsFiles(path);
    else if (e.isFile && path.endsWith(".ts")) yield path;
  }
}

/** `file:line` of each console.assert inside a runnable doc example of `text`. */
export function silentAsserts(file: string, text: string): string[] {
  const found: string[] = [];
  let inBlock = false;
  let runnable = false;
  for (const [i, line] of text.split("\n").entries()) {
    const fence = line.match(/^\s*\*\s?```(.*)$/);
    if (fence) {
      if (inBlock) inBlock = false;
      else {
        inBlock = true;
        const info = fence[1]!.trim().split(/\s+/);
        runnable = (info[0] === "ts" || info[0] === "typescript") && !info.includes("ignore");
      }
      continue;
    }
    if (inBlock && runnable && line.includes("console.assert(")) found.push(`${file}:${i + 1}`);
  }
  return found;
}

Deno.test("silentAsserts finds console.assert in runnable examples only", () => {
  const text = [
    "/**",
    " * ```ts",
    " * console.assert(1 === 2);",
    " * ```",
    " * ```ts ignore",
    " * console.assert(1 === 2);",
    " * ```",
    " */",
    "console.assert(true);",
  ].join("\n");
  assertEquals(silentAsserts("x.ts", text), ["x.ts:3"]);
});

Deno.test("no runnable doc example checks with console.assert (it cannot fail)", async () => {
  const found: string[] = [];
  for (const root of ROOTS) {
    for await (const f of tsFiles(root)) {
      found.push(...silentAsserts(f, await Deno.readTextFile(f)));
    }
  }
  assertEquals(found, []);
});
