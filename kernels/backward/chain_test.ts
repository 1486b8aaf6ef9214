import { assert, assertEquals } from "@std/assert";
import type { AttentionShape, Tiles } from "../../core/shapes.ts";
import { tolerance } from "../../core/tolerances.ts";
import { prepareAttention } from "../attention.ts";
import { zeroReferenceError } from "../check.ts";
import { BlockMask } from "../masks.ts";
import { maxRelError } from "../reference.ts";
import { getKernels } from "../testing.ts";

// Forward then backward on the GPU, through the shared runner: the flash (block-sparse) forward
// kernel writes O and its log-sum-exp, and the backward reads them as they are, so the two agree
// on L's convention (natural log, f32, −3e38 for a row that sees no key). The other backward
// tests take O and L from the float64 reference.

const kernels = await getKernels();
const TILES: Tiles = { br: 8, bc: 8, rm: 2, tx: 4 };

Deno.test({
  name: "flash and block-sparse: the GPU forward's O and log-sum-exp feed the backward",
  ignore: kernels === null,
  async fn() {
    const failures: string[] = [];
    let maskedRows = 0;
    for (const causal of [false, true]) {
      const shape: AttentionShape = { batch: 2, heads: 1, n: 27, d: 32, dtype: "f32", causal };
      // 4 × 4 blocks: row block 0 keeps only key block 2 (above the diagonal: causal rows 0–7
      // see no key), row block 1 keeps nothing (rows 8–15 see no key either way).
      const mask = new BlockMask(
        "random",
        27,
        8,
        8,
        new Uint8Array([0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 1, 1, 1]),
      );
      for (const m of [null, mask]) {
        const name = m ? "block-sparse" : "flash";
        const problem = { shape, tiles: TILES, mask: m ?? undefined };
        const fwd = await prepareAttention(kernels!, { ...problem, kernel: name });
        const bwd = await prepareAttention(kernels!, { ...problem, kernel: `${name}-bwd` });
        try {
          // The backward's inputs, with O and L replaced by what the GPU forward wrote.
          const inputs = bwd.plan.randomInputs(causal ? 3 : 4);
          fwd.upload(inputs);
          fwd.poisonOutput();
          await fwd.run();
          const f = await fwd.readOutputs();
          maskedRows += f.lse!.filter((x) => x < -1e38).length;
          bwd.upload({ ...inputs, o: f.o!, lse: f.lse! });
          bwd.poisonOutput();
          await bwd.run();
          const out = await bwd.readOutputs();
          const ref = bwd.plan.reference(inputs);
          const scale = Math.max(...[...ref.dv!].map(Math.abs));
          for (const g of ["dq", "dk", "dv"] as const) {
            const zero = ref[g]!.every((x) => x === 0);
            const err = zero ? zeroReferenceError(out[g]!, scale) : maxRelError(out[g]!, ref[g]!);
            if (!(err <= tolerance("f32"))) failures.push(`${name} causal=${causal} ${g}: ${err}`);
          }
        } finally {
          fwd.destroy();
          bwd.destroy();
        }
      }
    }
    assertEquals(failures, []);
    assert(maskedRows > 0, "some row saw no key, so the −3e38 convention was exercised");
  },
});
