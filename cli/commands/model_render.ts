/**
 * The text of `attnbench model`: a header stating M and its unit, a table per N and, with
 * `--block-sizes`, a block-size table per N.
 *
 * @module
 */

import { formatTable } from "../../analysis/table.ts";
import { ceilDiv, formatBytes, formatSi } from "../../analysis/io_model.ts";
import { findKernel, isSparseKernel } from "../../kernels/registry.ts";
import { MODEL_DEFAULTS, type ModelReport } from "./model_build.ts";

const DASH = "—";

function ratioText(r: number | null): string {
  return r === null ? DASH : `${r.toPrecision(3)}×`;
}

/**
 * The report as text lines: a header stating M and its unit, a table per N and, with
 * `--block-sizes`, a block-size table per N.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseModelArgs } from "./model.ts";
 * import { buildModel } from "./model_build.ts";
 * import { renderModel } from "./model_render.ts";
 * const o = parseModelArgs(["--n", "512"]);
 * if (o !== "help") {
 *   const lines = renderModel(buildModel(o, {}));
 *   assert(lines.some((l) => l.includes("M = 49152 bytes = 12288 f32 elements")));
 * }
 * ```
 */
export function renderModel(report: ModelReport): string[] {
  const { config: c, sram } = report;
  const lines: string[] = [];
  const attention = c.causal ? "causal" : "full (non-causal)";
  const sparse = c.kernels.some(isSparseKernel)
    ? `, block-sparse ${c.mask} mask (seed ${c.seed}) of target density s = ${c.density}`
    : "";
  lines.push(
    `attnbench model: batch ${c.batch} × heads ${c.heads}, d = ${c.d}, ${c.dtype}, ` +
      `${attention}${sparse}`,
  );
  lines.push(
    `M = ${sram.bytes} bytes = ${sram.elements} ${sram.dtype} elements (--sram; bench uses the ` +
      `adapter's maxComputeWorkgroupStorageSize and records it as hbmBytes.sramBytes); ` +
      `Algorithm 1: Bc = ⌈M/4d⌉ = ${sram.bc}, Br = min(⌈M/4d⌉, d) = ${sram.br}`,
  );
  const bySram = c.tiles.some((t) => t.source === "sram");
  lines.push(
    `tiles br×bc: ` + (bySram
      ? `the first candidate of kernels/tiles.ts that fits M and ` +
        `${MODEL_DEFAULTS.maxInvocations} threads`
      : `from --br/--bc, rm = tx = 1`) +
      `; modeled: the bytes our kernels move with them (kernels/<name>/mod.ts)`,
  );
  for (const t of c.tiles) {
    if (t.note !== null) lines.push(`note: ${t.kernel}: ${t.note}`);
  }
  lines.push(
    `HBM bytes read + written by all heads, decimal units (1 MB = 10^6 B); ` +
      `query-outer uses flash's br; FLOP/B on theoretical bytes`,
  );
  if (c.causal) {
    lines.push(
      `causal: every column skips what lies above the diagonal: theoretical and the block-size ` +
        `table Algorithm 1's blocks wholly above it, query-outer the keys past each query ` +
        `block's last row, modeled our kernels' key blocks on their own tiles`,
    );
  }
  const sparseKernels = c.kernels.filter(isSparseKernel);
  if (sparseKernels.length > 0) {
    lines.push(
      `${sparseKernels.join(", ")}: theoretical visits Algorithm 5's Br×Bc blocks that hold an ` +
        `entry of the mask (s on that grid below); lower bound: only the rows of Q, K, V, O the ` +
        `mask uses`,
    );
  }
  for (const size of report.sizes) {
    const flashBr = size.kernels.find((k) => k.queryOuterBytes !== null)?.tiles?.br;
    // flash and block-sparse share M, Bc, Br, Tc and the causal fraction.
    const tiled = size.kernels.find((k) => k.theoretical.tc !== null)?.theoretical;
    const notes: string[] = [];
    if (tiled) {
      notes.push(`Tc = ⌈N/Bc⌉ = ${tiled.tc}`);
      if (c.causal) notes.push(`causal keeps ${tiled.causalFraction.toFixed(3)} of the Tc term`);
    }
    if (flashBr !== undefined && size.kernels.some((k) => k.queryOuterBytes !== null)) {
      notes.push(`query-outer Tr = ⌈N/br⌉ = ${ceilDiv(size.n, flashBr)}`);
    }
    lines.push("", notes.length ? `N = ${size.n}  (${notes.join("; ")})` : `N = ${size.n}`);
    const rows = size.kernels.map((k) => [
      k.kernel,
      k.tiles === null || findKernel(k.kernel)?.problem === "decode"
        ? DASH
        : `${k.tiles.br}×${k.tiles.bc}`,
      formatBytes(k.theoretical.bytes),
      k.queryOuterBytes === null ? DASH : formatBytes(k.queryOuterBytes),
      k.modeledBytes === null ? DASH : formatBytes(k.modeledBytes),
      k.modeledBytes === null ? DASH : ratioText(k.modeledBytes / k.theoretical.bytes),
      formatBytes(k.lowerBoundBytes),
      formatSi(k.flops, "FLOP"),
      k.intensity.theoretical.toPrecision(3),
      k.footprintBytes === null ? DASH : formatBytes(k.footprintBytes),
    ]);
    lines.push(
      ...formatTable(
        [
          "kernel",
          "tiles",
          "theoretical",
          "query-outer",
          "modeled",
          "mod/theo",
          "lower bound",
          "FLOPs",
          "FLOP/B",
          "footprint",
        ],
        rows,
      ),
    );
    for (const k of size.kernels) {
      if (k.mask === null) continue;
      lines.push(
        `${k.kernel} mask: s = ${k.mask.density.toFixed(3)} reached, ${k.mask.nnz} of ` +
          `${k.mask.blocks} blocks kept (target ${k.mask.targetDensity}); on Algorithm 5's ` +
          `${k.theoretical.br}×${k.theoretical.bc} grid s = ${k.theoretical.density.toFixed(3)}`,
      );
    }
    const r = size.standardOverFlash;
    const pair = size.kernels.find((k) => findKernel(k.kernel)?.baseline != null);
    if (r.theoretical !== null && pair) {
      lines.push(
        `${findKernel(pair.kernel)?.baseline}/${pair.kernel}: theoretical ` +
          `${ratioText(r.theoretical)}, modeled ${ratioText(r.modeled)}`,
      );
    }
  }
  for (const bs of report.blockSizes ?? []) {
    lines.push(
      "",
      `HBM traffic vs block size at N = ${bs.n} (paper Figure 2, middle): ` +
        `flash theoretical with Bc = Br = B, query-outer with br = B` +
        (c.causal ? ` (both skip what lies above the diagonal)` : ""),
    );
    lines.push(
      ...formatTable(
        ["B", "⌈N/B⌉", "flash theoretical", "query-outer"],
        bs.rows.map((row) => [
          String(row.blockSize),
          String(row.blocks),
          formatBytes(row.flashTheoreticalBytes),
          formatBytes(row.queryOuterBytes),
        ]),
      ),
    );
  }
  return lines;
}

/** The command object the CLI dispatches to. */
