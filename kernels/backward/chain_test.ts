import { assert, assertEquals } from "@std/assert";
import { flashKey, flashSource } from "../flash.ts";
import { getKernels } from "../testing.ts";
import { tolerance } from "../tolerances.ts";
import type { AttentionShape, Tiles } from "../types.ts";
import { BlockMask } from "../masks.ts";
import { planBackward, prepareBackward } from "./backward.ts";
import { backwardCase, gradientError } from "./testing.ts";

// Forward then backward on the GPU: the flash forward kernel (../wgsl/flash.wgsl) writes O and
// its log-sum-exp, and the backward reads them as they are, so the two agree on L's convention
// (natural log, f32, −3e38 for a row that sees no key). The other backward tests take O and L
// from the float64 reference.

const kernels = await getKernels();
const TILES: Tiles = { br: 8, bc: 8, rm: 2, tx: 4 };

/** Runs the flash (or block-sparse) forward kernel; returns O and the log-sum-exp. */
async function forward(
  shape: AttentionShape,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  mask: BlockMask | null,
): Promise<{ o: Float32Array; lse: Float32Array }> {
  const { device } = kernels!.gpu;
  const knobs = {
    dtype: shape.dtype,
    count: false,
    d: shape.d,
    tiles: TILES,
    sparse: mask !== null,
  };
  const program = await kernels!.cache.get(flashKey(knobs), flashSource(knobs));
  const heads = shape.batch * shape.heads;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const made: GPUBuffer[] = [];
  const make = (data: ArrayBufferView | number, use = usage) => {
    const size = typeof data === "number" ? data : data.byteLength;
    const b = device.createBuffer({ size: Math.max(16, size), usage: use });
    if (typeof data !== "number") device.queue.writeBuffer(b, 0, data as BufferSource);
    made.push(b);
    return b;
  };
  try {
    const params = new ArrayBuffer(16);
    new Uint32Array(params, 0, 3).set([shape.n, heads, shape.causal ? 1 : 0]);
    new Float32Array(params, 12, 1)[0] = Math.LOG2E / Math.sqrt(shape.d);
    const csr = mask?.csr();
    const buffers: [number, GPUBuffer][] = [
      [0, make(new Uint8Array(params), GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST)],
      [1, make(q)],
      [2, make(k)],
      [3, make(v)],
      [4, make(q.byteLength)],
      [5, make(heads * shape.n * 4)],
      ...(csr ? [[6, make(csr.rowptr)], [7, make(csr.colidx)]] as [number, GPUBuffer][] : []),
    ];
    const group = device.createBindGroup({
      layout: program.pipeline.getBindGroupLayout(0),
      entries: buffers.map(([binding, buffer]) => ({ binding, resource: { buffer } })),
    });
    const read = [
      make(q.byteLength, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST),
      make(heads * shape.n * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST),
    ];
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(program.pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(Math.ceil(shape.n / TILES.br), heads);
    pass.end();
    enc.copyBufferToBuffer(buffers[4]![1], 0, read[0]!, 0, q.byteLength);
    enc.copyBufferToBuffer(buffers[5]![1], 0, read[1]!, 0, heads * shape.n * 4);
    device.queue.submit([enc.finish()]);
    const [o, lse] = await Promise.all(read.map(async (b) => {
      await b.mapAsync(GPUMapMode.READ);
      return new Float32Array(b.getMappedRange().slice(0));
    }));
    return { o: o!.slice(0, q.length), lse: lse!.slice(0, heads * shape.n) };
  } finally {
    for (const b of made) b.destroy();
  }
}

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
        const c = backwardCase(shape, causal ? 3 : 4, { mask: m });
        const f = await forward(shape, c.q, c.k, c.v, m);
        maskedRows += f.lse.filter((x) => x < -1e38).length;
        const prepared = await prepareBackward(
          kernels!,
          planBackward({ kernel: m ? "block-sparse" : "flash", shape, tiles: TILES, mask: m }),
        );
        try {
          for (
            const [name, data] of [["q", c.q], ["k", c.k], ["v", c.v], ["dout", c.dout]] as const
          ) {
            prepared.upload(name, data);
          }
          prepared.upload("o", f.o);
          prepared.upload("lse", f.lse);
          prepared.poison();
          await prepared.run();
          let scale = 0;
          for (const x of c.ref.dv) scale = Math.max(scale, Math.abs(x));
          for (const g of ["dq", "dk", "dv"] as const) {
            const err = gradientError(await prepared.read(g), c.ref[g], scale);
            if (!(err <= tolerance("f32"))) {
              failures.push(`${m ? "block-sparse" : "flash"} causal=${causal} ${g}: ${err}`);
            }
          }
        } finally {
          prepared.destroy();
        }
      }
    }
    assertEquals(failures, []);
    assert(maskedRows > 0, "some row saw no key, so the −3e38 convention was exercised");
  },
});
