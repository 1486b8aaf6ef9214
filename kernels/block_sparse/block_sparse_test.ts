import { assertEquals } from "@std/assert";
import type { AttentionShape } from "../../core/shapes.ts";
import { flashTraffic } from "../flash/mod.ts";
import { BlockMask } from "../masks.ts";

// Hand-worked traffic, so the model itself is pinned down (not only its agreement with the
// counters): one head, n = 10, d = 32, f32 (128 bytes a row), tiles 8 × 8, so two query blocks
// (8 + 2 rows) and two key blocks (8 + 2 rows).
const TILES8 = { br: 8, bc: 8, rm: 2, tx: 4 };
const ROW = 32 * 4;

function shape10(causal: boolean): AttentionShape {
  return { batch: 1, heads: 1, n: 10, d: 32, dtype: "f32", causal };
}

Deno.test("modeled traffic of block-sparse, worked by hand", () => {
  // 2 × 2 blocks; row block 0 keeps key block 1 only, row block 1 keeps both.
  const mask = new BlockMask("random", 10, 8, 8, new Uint8Array([0, 1, 1, 1]));
  const t = flashTraffic(shape10(false), TILES8, mask);
  // Row block 0: key rows 8–9 (2); row block 1: 8 + 2. Mask: rowptr pair (8 bytes) and one u32
  // per listed block, for each row block: 8 + 4 and 8 + 8.
  assertEquals(t.k!.read, 12 * ROW);
  assertEquals(t.v!.read, 12 * ROW);
  assertEquals(t.mask!.read, 28);
  // Causal: row block 0 still reads its colidx entry but skips key block 1 (past the diagonal).
  const c = flashTraffic(shape10(true), TILES8, mask);
  assertEquals(c.k!.read, 10 * ROW);
  assertEquals(c.mask!.read, 28);
});
