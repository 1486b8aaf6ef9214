import { assertEquals } from "@std/assert";
import {
  deviceName,
  fileLabels,
  fmtBytes,
  fmtDate,
  fmtMem,
  fmtMs,
  fmtNum,
  fmtTile,
  isDoesNotFit,
} from "./_format.ts";
import type { ResultsFile, RunRecord } from "../core/schema.ts";

Deno.test("fmtNum keeps significant digits without noise", () => {
  assertEquals(fmtNum(0), "0");
  assertEquals(fmtNum(1.23456), "1.23");
  assertEquals(fmtNum(12.3456), "12.3");
  assertEquals(fmtNum(1234.5), "1235");
  assertEquals(fmtNum(0.0296), "0.0296");
  assertEquals(fmtNum(2), "2");
  assertEquals(fmtNum(0.00012), "1.2e-4");
  assertEquals(fmtNum(3e7), "3e+7");
  assertEquals(fmtNum(NaN), "NaN");
});

Deno.test("units: ms, decimal bytes, binary memory", () => {
  assertEquals(fmtMs(0.0123), "12.3 µs");
  assertEquals(fmtMs(36.28), "36.3 ms");
  assertEquals(fmtMs(1234), "1.23 s");
  assertEquals(fmtBytes(999), "999 B");
  assertEquals(fmtBytes(69206016), "69.2 MB");
  assertEquals(fmtMem(134217728), "128 MiB");
  assertEquals(fmtMem(2147483644), "2 GiB");
  assertEquals(fmtTile({ br: 64, bc: 32, rm: 4, tx: 8 }), "64×32 rm4 tx8");
});

Deno.test("dates and labels", () => {
  assertEquals(fmtDate("2025-11-24T09:41:07.512Z"), "2025-11-24 09:41 UTC");
  assertEquals(fmtDate("yesterday"), "yesterday");
  const file = (description: string, createdAt: string) =>
    ({
      createdAt,
      device: { description, vendor: "v", architecture: "" },
    }) as unknown as ResultsFile;
  assertEquals(deviceName(file("", "").device), "v");
  assertEquals(fileLabels([file("A", "2025-01-01T00:00:00Z")]), ["A"]);
  assertEquals(fileLabels([file("A", "2025-01-01T00:00:00Z"), file("B", "x")]), ["A", "B"]);
  assertEquals(
    fileLabels([file("A", "2025-01-01T00:00:00Z"), file("A", "2025-01-02T00:00:00Z")]),
    ["A · 2025-01-01 00:00 UTC", "A · 2025-01-02 00:00 UTC"],
  );
  assertEquals(fileLabels([file("A", "t"), file("B", "t")], ["before", ""]), ["before", "B"]);
});

Deno.test("isDoesNotFit only for skipped runs that say so", () => {
  const r = (status: string, reason: string | null) => ({ status, reason }) as RunRecord;
  assertEquals(isDoesNotFit(r("skipped", "does not fit: 4 GiB")), true);
  assertEquals(isDoesNotFit(r("skipped", "no shader-f16")), false);
  assertEquals(isDoesNotFit(r("failed", "does not fit")), false);
});
