// The tuned-tiles file: keyed by adapter, merged on save, refused when it is not one; no GPU.

import { assertEquals, assertRejects } from "@std/assert";
import { UsageError } from "../core/errors.ts";
import type { DeviceRecord } from "../core/schema.ts";
import {
  adapterIdentity,
  loadTuned,
  saveTuned,
  TUNED_SCHEMA,
  type TunedEntry,
  tunedKey,
} from "./tuned.ts";

function device(description: string): DeviceRecord {
  return {
    vendor: "nvidia",
    architecture: "hopper",
    description,
    device: "0x2335",
    isFallbackAdapter: false,
    limits: {},
    features: [],
  };
}

function entry(br: number): TunedEntry {
  return {
    tiles: { br, bc: 32, rm: 4, tx: 8 },
    medianMs: 1.5,
    n: 4096,
    batch: 4,
    heads: 16,
    tunedAt: "2026-01-01T00:00:00.000Z",
  };
}

async function inTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "attnbench_tuned_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("keys: the adapter's identity and kernel/dtype/d", () => {
  assertEquals(adapterIdentity(device("H200")), "nvidia|hopper|H200|0x2335");
  assertEquals(tunedKey("block-sparse", "f16", 128), "block-sparse/f16/d128");
});

Deno.test("save then load: this adapter's winners only; saves merge, a key is replaced", () => {
  return inTemp(async (dir) => {
    const path = `${dir}/tuned.json`;
    const h200 = device("H200");
    const h100 = device("H100");
    await saveTuned(path, h200, { "flash/f32/d64": entry(64) });
    await saveTuned(path, h100, { "flash/f32/d64": entry(32) });
    await saveTuned(path, h200, { "standard/f32/d64": entry(16), "flash/f32/d64": entry(128) });
    assertEquals(await loadTuned(path, h200), {
      "flash/f32/d64": entry(128).tiles,
      "standard/f32/d64": entry(16).tiles,
    });
    assertEquals(await loadTuned(path, h100), { "flash/f32/d64": entry(32).tiles });
    assertEquals(await loadTuned(path, device("B200")), null);
    const file = JSON.parse(await Deno.readTextFile(path));
    assertEquals(file.schema, TUNED_SCHEMA);
    assertEquals(Object.keys(file.adapters).length, 2);
  });
});

Deno.test("a given file that is missing, not JSON or not a tuned file is a UsageError", () => {
  return inTemp(async (dir) => {
    const d = device("H200");
    await assertRejects(() => loadTuned(`${dir}/missing.json`, d), UsageError, "cannot read");
    await Deno.writeTextFile(`${dir}/bad.json`, "{ not json");
    await assertRejects(() => loadTuned(`${dir}/bad.json`, d), UsageError, "not valid JSON");
    await Deno.writeTextFile(`${dir}/other.json`, JSON.stringify({ schema: "x", adapters: {} }));
    await assertRejects(() => loadTuned(`${dir}/other.json`, d), UsageError, TUNED_SCHEMA);
    // Saving over a file that is not one refuses too, and leaves it as it was.
    await assertRejects(() => saveTuned(`${dir}/bad.json`, d, {}), UsageError, "not valid JSON");
    assertEquals(await Deno.readTextFile(`${dir}/bad.json`), "{ not json");
  });
});
