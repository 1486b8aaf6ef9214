// The layers import one way: core ← analysis ← kernels ← reports ← cli ← examples. A module may
// import its own layer and the layers below it, never one above: core imports nothing of the
// project, `kernels/mod.ts` (the library) never pulls in the CLI. The graph is read from
// `deno info --json`, as Deno resolves it (type-only imports included); tests are not part of it.

import { assert, assertEquals } from "@std/assert";

const ROOT = new URL("../", import.meta.url);

/** Layers from the bottom up; a module's layer is its top-level folder. */
const LAYERS = ["core", "analysis", "kernels", "reports", "cli", "examples"] as const;

/** The rank of a repository module's layer, or -1 for a folder outside the layers. */
function layerOf(path: string): number {
  return (LAYERS as readonly string[]).indexOf(path.split("/")[0] ?? "");
}

/** An import edge between two repository files (paths relative to the root). */
interface Edge {
  from: string;
  to: string;
}

/** The edges that run up: to a higher layer, or from core to anything outside core. */
function upwardImports(edges: readonly Edge[]): Edge[] {
  return edges.filter(({ from, to }) => {
    const a = layerOf(from);
    const b = layerOf(to);
    return a >= 0 && (b > a || b < 0);
  });
}

/** Every import between repository files reachable from `entries`, tests excluded. */
async function importGraph(entries: string[]): Promise<Edge[]> {
  // `deno info` takes one root: a temporary module that imports every entry.
  const root = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(
    root,
    entries.map((e) => `import ${JSON.stringify(new URL(e, ROOT).href)};\n`).join(""),
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", root],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output().finally(() => Deno.remove(root));
  assert(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: {
      specifier: string;
      dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
    }[];
  };
  const local = (url: string) => url.startsWith(ROOT.href) ? url.slice(ROOT.href.length) : null;
  const edges: Edge[] = [];
  for (const m of info.modules) {
    const from = local(m.specifier);
    if (from === null || from.startsWith("node_modules/")) continue;
    for (const dep of m.dependencies ?? []) {
      for (const target of [dep.code?.specifier, dep.type?.specifier]) {
        const to = target === undefined ? null : local(target);
        if (to !== null && !to.startsWith("node_modules/")) edges.push({ from, to });
      }
    }
  }
  return edges;
}

/** The non-test TypeScript modules of the layers. */
async function sources(): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(new URL(dir, ROOT))) {
      const path = `${dir}${e.name}`;
      if (e.isDirectory) await walk(`${path}/`);
      else if (path.endsWith(".ts") && !path.endsWith("_test.ts")) out.push(path);
    }
  };
  for (const layer of LAYERS) {
    await Deno.stat(new URL(layer, ROOT)).then(() => walk(`${layer}/`), () => {});
  }
  return out.sort();
}

Deno.test("upwardImports flags an import that runs back up, and only those", () => {
  const edges = [
    { from: "kernels/attention.ts", to: "core/errors.ts" },
    { from: "cli/main.ts", to: "kernels/mod.ts" },
    { from: "kernels/attention.ts", to: "cli/errors.ts" },
    { from: "core/shapes.ts", to: "analysis/io_model.ts" },
    { from: "core/schema.ts", to: "testdata/x.ts" },
  ];
  assertEquals(upwardImports(edges), edges.slice(2));
});

Deno.test("no module imports a layer above its own", async () => {
  const edges = await importGraph(await sources());
  assert(edges.length > 50, `only ${edges.length} edges: the graph was not read`);
  assert(edges.some((e) => e.from.startsWith("kernels/") && e.to.startsWith("core/")));
  const up = upwardImports(edges).map((e) => `${e.from} → ${e.to}`);
  assertEquals([...new Set(up)], []);
});

Deno.test("the library entry kernels/mod.ts does not pull in the CLI or the reports", async () => {
  const reached = new Set((await importGraph(["kernels/mod.ts"])).map((e) => e.to));
  assert(reached.has("kernels/registry.ts"));
  assertEquals([...reached].filter((p) => p.startsWith("cli/") || p.startsWith("reports/")), []);
});
