/**
 * Plain-text tables for terminal output.
 *
 * @module
 */

/**
 * Left-aligned first column, right-aligned others, two spaces apart.
 *
 * @example
 * ```ts
 * import { formatTable } from "./table.ts";
 * const lines = formatTable(["kernel", "ms"], [["flash", "1.5"]]);
 * console.assert(lines[1] === "flash   1.5");
 * ```
 */
export function formatTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  return [header, ...rows].map((cells) =>
    cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
      .join("  ").trimEnd()
  );
}
