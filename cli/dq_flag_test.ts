import { assertEquals, assertThrows } from "@std/assert";
import { UsageError } from "../core/errors.ts";
import type { Gpu } from "../kernels/gpu.ts";
import { FLOAT32_ATOMIC } from "../kernels/gpu.ts";
import { dqFlag, requireDqFeature } from "./dq_flag.ts";

Deno.test("--dq: null by default and for pass, the atomic modes, bad values and --pass fwd refused", () => {
  assertEquals(dqFlag({ _: [] }, "bwd"), null);
  assertEquals(dqFlag({ _: [] }, "fwd"), null);
  assertEquals(dqFlag({ _: [], dq: "pass" }, "bwd"), null);
  assertEquals(dqFlag({ _: [], dq: "atomic" }, "bwd"), "atomic");
  assertEquals(dqFlag({ _: [], dq: "atomic" }, "fwd+bwd"), "atomic");
  assertEquals(dqFlag({ _: [], dq: "atomic-stagger" }, "bwd"), "atomic-stagger");
  assertThrows(() => dqFlag({ _: [], dq: "atomics" }, "bwd"), UsageError, "--dq atomics");
  assertThrows(() => dqFlag({ _: [], dq: "" }, "bwd"), UsageError, "expected pass, atomic");
  for (const dq of ["pass", "atomic"]) {
    assertThrows(() => dqFlag({ _: [], dq }, "fwd"), UsageError, "--dq needs --pass bwd");
  }
});

Deno.test("--dq atomic: refused before any run on a device without float32 atomics", () => {
  const gpu = (features: string[]) =>
    ({ device: { features: new Set(features) }, info: { description: "cpu" } }) as unknown as Gpu;
  const without = gpu([]);
  // Nothing to refuse: no atomic mode, or no kernel that takes it.
  requireDqFeature(without, null, ["flash-bwd"]);
  requireDqFeature(without, "pass", ["flash-bwd"]);
  requireDqFeature(without, "atomic", ["standard-bwd", "block-sparse-bwd"]);
  for (const k of ["flash-bwd", "flash-fwd+bwd"]) {
    assertThrows(
      () => requireDqFeature(without, "atomic-stagger", ["standard-bwd", k]),
      UsageError,
      `--dq atomic-stagger: this adapter (cpu) does not grant ${FLOAT32_ATOMIC}`,
    );
    requireDqFeature(gpu([FLOAT32_ATOMIC]), "atomic", [k]);
  }
});
