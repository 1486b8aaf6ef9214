import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { toCsv, toGithubActionBenchmark, toMarkdown } from "./export.ts";
import { hostileFixture, loadFixture, SAMPLE_H100_PATH, SAMPLE_PATH } from "./_fixtures.ts";

/** A strict RFC 4180 reader, enough to check what toCsv writes. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
  }
  assertEquals(field, "", "the CSV must end with a newline");
  return rows;
}

Deno.test("toCsv: a header and one row per run, every row as wide as the header", async () => {
  const f = await loadFixture(SAMPLE_PATH);
  const rows = parseCsv(toCsv([f]));
  const [head, ...body] = rows;
  assertEquals(head?.slice(0, 4), ["file", "device", "created_at", "kernel"]);
  assertEquals(body.length, f.runs.length);
  for (const r of body) assertEquals(r.length, head?.length);
  const col = (name: string) => head?.indexOf(name) ?? -1;
  const skipped = body.find((r) => r[col("status")] === "skipped");
  assertStringIncludes(skipped?.[col("reason")] ?? "", "does not fit");
  assertEquals(skipped?.[col("median_ms")], "");
  const failed = body.find((r) => r[col("status")] === "failed");
  assertStringIncludes(failed?.[col("reason")] ?? "", "pipeline creation failed");
  const ok = body.find((r) => r[col("kernel")] === "flash" && r[col("n")] === "1024");
  const run = f.runs.find((r) => r.kernel === "flash" && r.n === 1024);
  assertEquals(Number(ok?.[col("median_ms")]), run?.timeMs?.median);
  assertEquals(Number(ok?.[col("bytes_modeled")]), run?.hbmBytes.modeled);
});

Deno.test("toCsv quotes commas, quotes and line breaks (RFC 4180)", async () => {
  const f = await loadFixture(SAMPLE_PATH);
  const tricky = `a, "b"\nc`;
  f.device.description = tricky;
  const rows = parseCsv(toCsv([f]));
  assertEquals(rows[1]?.[1], tricky);
  assertEquals(rows.length, f.runs.length + 1);
});

Deno.test("toMarkdown: tables per file with escaped cells", async () => {
  const f = await hostileFixture();
  f.runs[0]!.reason = "a | b\nc";
  const md = toMarkdown([f, await loadFixture(SAMPLE_H100_PATH)]);
  assert(md.startsWith("## attnbench results\n"));
  assert(!md.includes("<img") && !md.includes("<script"), "raw HTML leaked");
  assertStringIncludes(md, "&lt;img src=x");
  assertStringIncludes(md, "a \\| b c");
  assertStringIncludes(md, "### NVIDIA H100 80GB HBM3");
  assertStringIncludes(md, "#### Peers");
  // Every table line has as many unescaped pipes as its header.
  const tables = md.split("\n\n").filter((b) => b.startsWith("| "));
  assert(tables.length >= 3);
  for (const t of tables) {
    const lines = t.split("\n").filter((l) => l !== "");
    const pipes = lines.map((l) => l.replace(/\\\|/g, "").split("|").length);
    assert(pipes.every((n) => n === pipes[0]), `ragged table:\n${t}`);
  }
  assertStringIncludes(md, "skipped");
  assertStringIncludes(md, "failed");
  assertStringIncludes(md, "&lt;/script&gt;&lt;script&gt;window.__pwned=1");
});

Deno.test("toGithubActionBenchmark: ok runs only, customSmallerIsBetter shape", async () => {
  const f = await loadFixture(SAMPLE_PATH);
  const entries = toGithubActionBenchmark([f]);
  assertEquals(entries.length, f.runs.filter((r) => r.status === "ok").length);
  for (const e of entries) {
    assertEquals(Object.keys(e).sort(), ["extra", "name", "range", "unit", "value"]);
    assertEquals(e.unit, "ms");
    assert(typeof e.value === "number" && e.value > 0);
    assert(e.range.startsWith("± "));
    assertStringIncludes(e.extra, "TFLOP/s");
  }
  assertEquals(new Set(entries.map((e) => e.name)).size, entries.length, "names must be unique");
  const names = entries.map((e) => e.name);
  assert(names.includes("flash f32 n=1024 d=64 b=1 h=4 full"));
  assert(names.includes("block-sparse f32 n=1024 d=64 b=1 h=4 full density=0.25 mask=random"));
  assert(names.includes("flash f32 n=1024 d=64 b=1 h=4 full tile=64x32x4x8"));
  const flash = entries.find((e) => e.name === "flash f32 n=1024 d=64 b=1 h=4 full");
  const run = f.runs.find((r) => r.kernel === "flash" && r.n === 1024 && r.sweep === "n");
  assertEquals(flash?.value, run?.timeMs?.median);
  // The JSON the action reads.
  const json = JSON.parse(JSON.stringify(entries));
  assert(Array.isArray(json));
});

Deno.test("toGithubActionBenchmark: several files get the device in the name", async () => {
  const a = await loadFixture(SAMPLE_PATH);
  const b = await loadFixture(SAMPLE_H100_PATH);
  const entries = toGithubActionBenchmark([a, b]);
  assertEquals(new Set(entries.map((e) => e.name)).size, entries.length);
  assert(
    entries.some((e) => e.name === "flash f32 n=1024 d=64 b=1 h=4 full @ NVIDIA H100 80GB HBM3"),
  );
  // Identical files stay unique too.
  const twice = toGithubActionBenchmark([a, await loadFixture(SAMPLE_PATH)]);
  assertEquals(new Set(twice.map((e) => e.name)).size, twice.length);
  assertEquals(toGithubActionBenchmark([]), []);
});
