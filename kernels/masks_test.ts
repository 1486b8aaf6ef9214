import { assert, assertEquals, assertNotEquals, assertThrows } from "@std/assert";
import { BlockMask, makeMask, type MaskOptions } from "./masks.ts";
import { MASK_KINDS } from "../core/shapes.ts";

const GRIDS: [n: number, br: number, bc: number][] = [
  [1, 8, 8],
  [7, 8, 8],
  [8, 8, 8],
  [9, 8, 8],
  [61, 8, 16],
  [97, 16, 8],
  [131, 8, 8],
  [256, 32, 32],
  [300, 8, 8],
  [1000, 64, 32],
];
const DENSITIES = [1e-6, 0.01, 0.1, 0.25, 1 / 3, 0.5, 0.75, 0.9, 1];

function opts(kind: MaskOptions["kind"], n: number, br: number, bc: number, density: number) {
  return { kind, n, br, bc, density, seed: 11 };
}

function label(o: MaskOptions): string {
  return `${o.kind} n=${o.n} br=${o.br} bc=${o.bc} s=${o.density} seed=${o.seed}`;
}

Deno.test("masks: the grid is ceil(n / br) × ceil(n / bc)", () => {
  const m = makeMask(opts("random", 61, 8, 16, 0.5));
  assertEquals([m.rowBlocks, m.colBlocks, m.bits.length, m.br, m.bc], [8, 4, 32, 8, 16]);
  const one = makeMask(opts("local", 1, 8, 8, 0.5));
  assertEquals([one.rowBlocks, one.colBlocks, one.nnz], [1, 1, 1]);
});

Deno.test("masks: random keeps exactly max(1, round(s · blocks)) blocks", () => {
  for (const [n, br, bc] of GRIDS) {
    for (const s of DENSITIES) {
      for (const seed of [1, 2, 3]) {
        const o = { ...opts("random", n, br, bc, s), seed };
        const m = makeMask(o);
        const total = Math.ceil(n / br) * Math.ceil(n / bc);
        const want = Math.max(1, Math.round(s * total));
        assertEquals(m.nnz, want, label(o));
        assertEquals(m.density, want / total, label(o));
        assert(m.bits.every((b) => b === 0 || b === 1), `bits are 0/1: ${label(o)}`);
      }
    }
  }
  // Hand-counted: 300 tokens in blocks of 8 → 38 × 38 = 1444 blocks; 25 % → 361.
  assertEquals(makeMask(opts("random", 300, 8, 8, 0.25)).nnz, 361);
  // 0.1 % of 1444 rounds to 1; 0.01 % rounds to 0 and is raised to 1.
  assertEquals(makeMask(opts("random", 300, 8, 8, 0.001)).nnz, 1);
  assertEquals(makeMask(opts("random", 300, 8, 8, 0.0001)).nnz, 1);
});

Deno.test("masks: random is reproducible from its seed, and the seed matters", () => {
  for (const [n, br, bc] of GRIDS.filter(([n]) => n >= 61)) {
    const a = makeMask({ ...opts("random", n, br, bc, 0.3), seed: 5 });
    const b = makeMask({ ...opts("random", n, br, bc, 0.3), seed: 5 });
    const c = makeMask({ ...opts("random", n, br, bc, 0.3), seed: 6 });
    assertEquals(a.bits, b.bits, `same seed, n=${n}`);
    assertNotEquals(a.bits, c.bits, `different seeds, n=${n}`);
    assertEquals(a.nnz, c.nnz);
  }
  // Deterministic kinds ignore the seed.
  for (const kind of ["butterfly", "local"] as const) {
    const a = makeMask({ ...opts(kind, 300, 8, 8, 0.1), seed: 1 });
    const b = makeMask({ ...opts(kind, 300, 8, 8, 0.1), seed: 99 });
    assertEquals(a.bits, b.bits, kind);
  }
});

Deno.test("masks: random spreads its blocks over the whole grid", () => {
  // 38 × 38 blocks at 50 %: every block row and column should get some, none all of them
  // (each is ~Binomial(38, 0.5); the chance of 0 or 38 anywhere is ~1e-10).
  const m = makeMask(opts("random", 300, 8, 8, 0.5));
  for (let i = 0; i < m.rowBlocks; i++) {
    let row = 0;
    let col = 0;
    for (let j = 0; j < m.colBlocks; j++) {
      row += m.bits[i * m.colBlocks + j]!;
      col += m.bits[j * m.colBlocks + i]!;
    }
    assert(row > 0 && row < m.colBlocks, `block row ${i} keeps ${row}`);
    assert(col > 0 && col < m.rowBlocks, `block column ${i} keeps ${col}`);
  }
});

/** Highest density the flat butterfly pattern has on a grid: every stride added. */
function butterflyCeiling(n: number, br: number, bc: number): number {
  return makeMask(opts("butterfly", n, br, bc, 1)).density;
}

Deno.test("masks: butterfly is the diagonal plus power-of-two strides", () => {
  for (const [n, br, bc] of GRIDS) {
    for (const s of DENSITIES) {
      const o = opts("butterfly", n, br, bc, s);
      const m = makeMask(o);
      for (let i = 0; i < m.rowBlocks; i++) {
        for (let j = 0; j < m.colBlocks; j++) {
          const x = i ^ j;
          const kept = m.bits[i * m.colBlocks + j] === 1;
          if (x === 0) assert(kept, `diagonal (${i}, ${j}) dropped: ${label(o)}`);
          if (kept) assert((x & (x - 1)) === 0, `(${i}, ${j}) is no butterfly block: ${label(o)}`);
          // Symmetric on a square grid.
          if (m.rowBlocks === m.colBlocks) {
            assertEquals(kept, m.bits[j * m.colBlocks + i] === 1, label(o));
          }
        }
      }
    }
  }
  // Hand-counted on a 4 × 4 grid (n = 32, blocks of 8): diagonal 4 blocks; stride 1 adds
  // (0,1),(1,0),(2,3),(3,2); stride 2 adds (0,2),(2,0),(1,3),(3,1).
  assertEquals(makeMask(opts("butterfly", 32, 8, 8, 0.2)).nnz, 4);
  assertEquals(makeMask(opts("butterfly", 32, 8, 8, 0.3)).nnz, 8);
  assertEquals(makeMask(opts("butterfly", 32, 8, 8, 0.6)).nnz, 12);
  assertEquals(
    Array.from(makeMask(opts("butterfly", 32, 8, 8, 0.3)).bits),
    [1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1],
  );
});

Deno.test("masks: butterfly reaches the requested density wherever the pattern can", () => {
  for (const [n, br, bc] of GRIDS) {
    const ceiling = butterflyCeiling(n, br, bc);
    for (const s of DENSITIES.filter((s) => s <= ceiling)) {
      const o = opts("butterfly", n, br, bc, s);
      assert(makeMask(o).density >= s, `${label(o)}: ${makeMask(o).density}`);
    }
  }
});

Deno.test("masks: a butterfly density the pattern cannot reach gives the whole pattern", () => {
  // The flat butterfly pattern of a 38 × 38 grid (n = 300, blocks of 8) holds 15.5 % of the
  // blocks: s = 0.25 gives every stride and says so through .density (the bench warns).
  const m = makeMask(opts("butterfly", 300, 8, 8, 0.25));
  assertEquals(m.density, butterflyCeiling(300, 8, 8));
  assert(m.density < 0.16, `density ${m.density}`);
});

Deno.test("masks: local is a band around the diagonal and reaches the requested density", () => {
  for (const [n, br, bc] of GRIDS) {
    for (const s of DENSITIES) {
      const o = opts("local", n, br, bc, s);
      const m = makeMask(o);
      assert(m.density >= s, `${label(o)}: reached ${m.density}`);
      for (let i = 0; i < m.rowBlocks; i++) {
        // Each block row keeps one contiguous run of key blocks that holds its own position.
        const row = Array.from(m.bits.subarray(i * m.colBlocks, (i + 1) * m.colBlocks));
        const first = row.indexOf(1);
        const last = row.lastIndexOf(1);
        assert(first >= 0, `block row ${i} is empty: ${label(o)}`);
        assert(row.slice(first, last + 1).every((b) => b === 1), `row ${i} has a gap: ${label(o)}`);
        const own = Math.min(m.colBlocks - 1, Math.floor((i * br + br / 2) / bc));
        assert(first <= own && own <= last, `row ${i} misses its diagonal block: ${label(o)}`);
      }
    }
  }
  // Hand-counted on 4 × 4 (n = 32, blocks of 8): w = 0 keeps the diagonal (25 %), w = 8 adds the
  // two neighbouring diagonals (10 blocks, 62.5 %), w = 16 adds two more (14, 87.5 %).
  assertEquals(makeMask(opts("local", 32, 8, 8, 0.25)).nnz, 4);
  assertEquals(makeMask(opts("local", 32, 8, 8, 0.26)).nnz, 10);
  assertEquals(makeMask(opts("local", 32, 8, 8, 0.7)).nnz, 14);
  assertEquals(makeMask(opts("local", 32, 8, 8, 1)).nnz, 16);
});

Deno.test("masks: CSR lists exactly the kept blocks, in increasing order", () => {
  const masks = [
    new BlockMask("random", 24, 8, 8, new Uint8Array(9)), // nothing kept
    new BlockMask("random", 24, 8, 8, new Uint8Array([0, 0, 0, 1, 0, 1, 0, 0, 0])),
  ];
  for (const kind of MASK_KINDS) {
    for (const [n, br, bc] of GRIDS) {
      for (const s of [0.01, 0.3, 1]) masks.push(makeMask(opts(kind, n, br, bc, s)));
    }
  }
  for (const m of masks) {
    const { rowptr, colidx } = m.csr();
    const what = `${m.kind} ${m.rowBlocks}x${m.colBlocks} nnz ${m.nnz}`;
    assertEquals(rowptr.length, m.rowBlocks + 1, what);
    assertEquals(rowptr[0], 0, what);
    assertEquals(rowptr[m.rowBlocks], m.nnz, what);
    assertEquals(colidx.length, Math.max(1, m.nnz), `${what}: never an empty binding`);
    const rebuilt = new Uint8Array(m.bits.length);
    for (let i = 0; i < m.rowBlocks; i++) {
      assert(rowptr[i]! <= rowptr[i + 1]!, `${what}: rowptr decreases at ${i}`);
      let prev = -1;
      for (let p = rowptr[i]!; p < rowptr[i + 1]!; p++) {
        const j = colidx[p]!;
        assert(j > prev && j < m.colBlocks, `${what}: row ${i} lists ${j} after ${prev}`);
        prev = j;
        rebuilt[i * m.colBlocks + j] = 1;
      }
    }
    assertEquals(rebuilt, m.bits, what);
  }
  // By hand: rows 0, 1, 2 keep {}, {0, 2}, {} → rowptr 0 0 2 2, colidx 0 2.
  const hand = masks[1]!.csr();
  assertEquals(Array.from(hand.rowptr), [0, 0, 2, 2]);
  assertEquals(Array.from(hand.colidx), [0, 2]);
});

Deno.test("masks: keeps(i, j) maps tokens to their blocks", () => {
  // n = 5, query blocks of 2 rows (3 blocks), key blocks of 3 (2 blocks); bits by hand.
  const m = new BlockMask("random", 5, 2, 3, new Uint8Array([1, 0, 0, 1, 1, 1]));
  const expected = [
    [1, 1, 1, 0, 0],
    [1, 1, 1, 0, 0],
    [0, 0, 0, 1, 1],
    [0, 0, 0, 1, 1],
    [1, 1, 1, 1, 1],
  ];
  for (let i = 0; i < 5; i++) {
    for (let j = 0; j < 5; j++) assertEquals(m.keeps(i, j), expected[i]![j] === 1, `(${i}, ${j})`);
  }
  assertEquals(m.nnz, 4);
  assertEquals(m.density, 4 / 6);
});

Deno.test("masks: a bits array of the wrong size is refused", () => {
  assertThrows(() => new BlockMask("random", 17, 8, 8, new Uint8Array(4)), Error, "mismatch");
  assertThrows(() => new BlockMask("random", 16, 8, 8, new Uint8Array(9)), Error, "mismatch");
});
