import { assertEquals } from "@std/assert";
import type { AttentionShape } from "../../core/shapes.ts";
import { totalBytes } from "../kernel.ts";
import { flashTraffic } from "./mod.ts";

// Hand-worked traffic, so the model itself is pinned down (not only its agreement with the
// counters): one head, n = 10, d = 32, f32 (128 bytes a row), tiles 8 × 8, so two query blocks
// (8 + 2 rows) and two key blocks (8 + 2 rows).
const TILES8 = { br: 8, bc: 8, rm: 2, tx: 4 };
const ROW = 32 * 4;

function shape10(causal: boolean): AttentionShape {
  return { batch: 1, heads: 1, n: 10, d: 32, dtype: "f32", causal };
}

Deno.test("modeled traffic of flash, worked by hand", () => {
  const full = flashTraffic(shape10(false), TILES8, null);
  // Q and O once; each of the 2 query blocks reads all 10 K and V rows; 16 uniform bytes a
  // workgroup; one f32 LSE a row.
  assertEquals(full.q!, { read: 10 * ROW, write: 0 });
  assertEquals(full.k!, { read: 2 * 10 * ROW, write: 0 });
  assertEquals(full.v!, { read: 2 * 10 * ROW, write: 0 });
  assertEquals(full.o!, { read: 0, write: 10 * ROW });
  assertEquals(full.lse!, { read: 0, write: 40 });
  assertEquals(full.uniform!, { read: 32, write: 0 });
  // No mask, no S, no P: flash has no such slots.
  assertEquals(Object.keys(full).sort(), ["k", "lse", "o", "q", "uniform", "v"]);
  // Causal: block 0 (rows 0–7) reads key block 0 (8 rows); block 1 (rows 8–9) both (10 rows).
  const causal = flashTraffic(shape10(true), TILES8, null);
  assertEquals(causal.k!.read, 18 * ROW);
  assertEquals(causal.v!.read, 18 * ROW);
  // Batch and heads multiply everything.
  const many = flashTraffic({ ...shape10(true), batch: 2, heads: 3 }, TILES8, null);
  assertEquals(many.k!.read, 6 * 18 * ROW);
  assertEquals(totalBytes(many), 6 * totalBytes(causal));
});
