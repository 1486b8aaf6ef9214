/**
 * Plain-text output, the one place for it: tables for the terminal and milliseconds in text.
 *
 * @module
 */

/**
 * Columns two spaces apart, trailing spaces trimmed. `numbers` (the default): the first column
 * left-aligned, the others right-aligned; `left`: every column left-aligned.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { formatTable } from "./table.ts";
 * const lines = formatTable(["kernel", "ms"], [["flash", "1.5"]]);
 * assert(lines[1] === "flash   1.5");
 * assert(formatTable(["a", "b"], [["xyz", "1"]], "left")[0] === "a    b");
 * ```
 */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  align: "numbers" | "left" = "numbers",
): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  return [header, ...rows].map((cells) =>
    cells.map((cell, c) =>
      c === 0 || align === "left" ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0)
    ).join("  ").trimEnd()
  );
}

/**
 * Milliseconds in text: four significant digits and the unit, "-" for none.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { fmtMs } from "./table.ts";
 * assert(fmtMs(1.23456) === "1.235 ms" && fmtMs(null) === "-");
 * ```
 */
export function fmtMs(ms: number | null): string {
  return ms === null ? "-" : `${Number(ms.toPrecision(4))} ms`;
}
