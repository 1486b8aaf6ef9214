/**
 * Output sets are all or nothing: `writeFileSet` changes no target and leaves nothing behind
 * (temporaries, backups, folders it made) when any step fails, including a rename half way
 * through the set.
 *
 * @module
 */

import { assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { checkOutputPaths, writeFileSet } from "./results_io.ts";
import { UsageError } from "../core/errors.ts";

async function inTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "attnbench_io_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Everything under `dir`: relative path → contents ("/" for folders). */
function tree(dir: string, rel = "", into: Record<string, string> = {}) {
  for (const e of Deno.readDirSync(`${dir}/${rel}`)) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) {
      into[`${p}/`] = "/";
      tree(dir, p, into);
    } else into[p] = Deno.readTextFileSync(`${dir}/${p}`);
  }
  return into;
}

Deno.test("writeFileSet writes every file, replacing old ones, and leaves no temporaries", async () => {
  await inTemp(async (dir) => {
    Deno.writeTextFileSync(`${dir}/a.json`, "old a");
    await writeFileSet([[`${dir}/a.json`, "new a"], [`${dir}/sub/b.html`, "new b"]], {
      createDirs: true,
    });
    assertEquals(tree(dir), { "a.json": "new a", "sub/": "/", "sub/b.html": "new b" });
  });
});

Deno.test("writeFileSet: a target that is a folder fails the set before anything changes", async () => {
  await inTemp(async (dir) => {
    Deno.writeTextFileSync(`${dir}/a.json`, "old a");
    Deno.mkdirSync(`${dir}/b.html`);
    const before = tree(dir);
    await assertRejects(
      () =>
        writeFileSet([[`${dir}/new/deeper/x`, "x"], [`${dir}/a.json`, "new"], [
          `${dir}/b.html`,
          "b",
        ]], {
          createDirs: true,
        }),
      UsageError,
      "not a regular file",
    );
    assertEquals(tree(dir), before, "folders it made are removed, a.json untouched");
  });
});

Deno.test("writeFileSet: a rename failing half way restores the files already replaced", async () => {
  await inTemp(async (dir) => {
    Deno.writeTextFileSync(`${dir}/a.json`, "old a");
    Deno.writeTextFileSync(`${dir}/b.html`, "old b");
    const before = tree(dir);
    const rename = Deno.renameSync;
    let calls = 0;
    // a: backup + place (2 renames); b: backup (3), then placing b fails (4).
    Deno.renameSync = (from, to) => {
      if (++calls === 4) throw new Deno.errors.PermissionDenied("injected");
      rename(from, to);
    };
    try {
      const err = await assertRejects(
        () =>
          writeFileSet([[`${dir}/a.json`, "new a"], [`${dir}/b.html`, "new b"], [
            `${dir}/c.csv`,
            "new c",
          ]]),
        UsageError,
      );
      assertStringIncludes(err.message, `cannot write ${dir}/b.html: injected`);
    } finally {
      Deno.renameSync = rename;
    }
    assertEquals(tree(dir), before, "a.json and b.html restored, no temporaries, no c.csv");
  });
});

Deno.test("checkOutputPaths refuses folders, files used as folders and missing folders", async () => {
  await inTemp((dir) => {
    Deno.writeTextFileSync(`${dir}/f`, "");
    Deno.mkdirSync(`${dir}/d`);
    const cases: [string, string, boolean][] = [
      [`${dir}/d`, "not a regular file", false],
      [`${dir}/f/x`, "not a directory", true],
      [`${dir}/missing/x`, "no directory", false],
      [`${dir}/`, "give a file name", false],
    ];
    for (const [path, text, createDirs] of cases) {
      const e = (() => {
        try {
          checkOutputPaths([path], "--out", { createDirs });
        } catch (e) {
          return e as Error;
        }
        return null;
      })();
      assertEquals(e instanceof UsageError, true, path);
      assertStringIncludes(e!.message, text);
    }
    checkOutputPaths([`${dir}/missing/x`], "--out", { createDirs: true });
    assertEquals(tree(dir), { "f": "", "d/": "/" }, "the probe leaves nothing");
    return Promise.resolve();
  });
});
