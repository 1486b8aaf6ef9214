import { assertEquals } from "@std/assert";
import type { AttentionShape } from "../../core/shapes.ts";
import { standardTraffic } from "./mod.ts";

// Hand-worked traffic, so the model itself is pinned down (not only its agreement with the
// counters): one head, n = 10, d = 32, f32 (128 bytes a row), tiles 8 × 8, so two query blocks
// (8 + 2 rows) and two key blocks (8 + 2 rows).
const TILES8 = { br: 8, bc: 8, rm: 2, tx: 4 };
const ROW = 32 * 4;

function shape10(causal: boolean): AttentionShape {
  return { batch: 1, heads: 1, n: 10, d: 32, dtype: "f32", causal };
}

Deno.test("modeled traffic of standard, worked by hand", () => {
  const t = standardTraffic(shape10(true), TILES8);
  // Scores: a 2 × 2 grid of tiles; each reads its Q rows and K rows: Q and K twice over.
  assertEquals(t.q!.read, 2 * 10 * ROW);
  assertEquals(t.k!.read, 2 * 10 * ROW);
  // S: written in full (100 f32), read once by the softmax (rows fit its register cache).
  assertEquals(t.s!, { read: 400, write: 400 });
  // P: written in full by the softmax, read in full by P·V, causal or not.
  assertEquals(t.p!, { read: 400, write: 400 });
  // P·V: each of the 2 row blocks reads all of V.
  assertEquals(t.v!.read, 2 * 10 * ROW);
  assertEquals(t.o!.write, 10 * ROW);
  // Uniforms: 4 score tiles + 2 softmax workgroups (8 rows each) + 2 P·V blocks, 16 bytes each.
  assertEquals(t.uniform!.read, 8 * 16);
  // No log-sum-exp, no mask: standard has no such slots.
  assertEquals(Object.keys(t).sort(), ["k", "o", "p", "q", "s", "uniform", "v"]);
});
