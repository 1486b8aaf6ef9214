/**
 * Safe HTML building: a `markup` template tag that escapes every interpolated value unless it is
 * already {@linkcode SafeHtml}, and JSON that can sit inside a `<script>` element. (The tag is not
 * called `html` because `deno fmt` reformats `html`-tagged templates.)
 * Private to `reports/`.
 *
 * @module
 */

/** Markup that is already escaped (or trusted), so the `markup` tag inserts it as is. */
export class SafeHtml {
  /** The markup. */
  readonly value: string;

  /**
   * @example
   * ```ts
   * import { assert } from "@std/assert";
   * import { SafeHtml } from "./_html.ts";
   * assert(new SafeHtml("<b>x</b>").toString() === "<b>x</b>");
   * ```
   */
  constructor(value: string) {
    this.value = value;
  }

  /** The markup as a string. */
  toString(): string {
    return this.value;
  }
}

const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Escapes text for HTML element content and quoted attribute values.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { escapeHtml } from "./_html.ts";
 * assert(escapeHtml(`<img src=x onerror="a()">`) ===
 *   "&lt;img src=x onerror=&quot;a()&quot;&gt;");
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

/** What the `markup` tag accepts between `${}`: text is escaped, SafeHtml is not. */
export type HtmlValue = SafeHtml | string | number | boolean | null | undefined | HtmlValue[];

function part(v: HtmlValue): string {
  if (v === null || v === undefined || v === false) return "";
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return v.map(part).join("");
  return escapeHtml(String(v));
}

/**
 * Template tag: the literal parts are trusted markup, every interpolated value is escaped
 * (arrays are joined, `null`/`undefined`/`false` vanish).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { markup } from "./_html.ts";
 * const name = "</td><script>x()</script>";
 * assert(!markup`<td>${name}</td>`.value.includes("<script>"));
 * ```
 */
export function markup(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? "";
  values.forEach((v, i) => {
    out += part(v) + (strings[i + 1] ?? "");
  });
  return new SafeHtml(out);
}

/**
 * Marks a string as trusted markup. Use only for text this module produced.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { markup, raw } from "./_html.ts";
 * assert(markup`${raw("<br>")}`.value === "<br>");
 * ```
 */
export function raw(trusted: string): SafeHtml {
  return new SafeHtml(trusted);
}

/**
 * JSON that is safe inside `<script type="application/json">`: every `<`, `>` and `&` is written
 * as a `\u` escape, so neither `</script>` nor `<!--` can appear, and U+2028/2029 are escaped too.
 * `JSON.parse` of the element's text gives back the original value.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { jsonForScript } from "./_html.ts";
 * const s = jsonForScript({ d: "</script><!--" });
 * assert(!s.includes("</") && !s.includes("<!--"));
 * assert(JSON.parse(s).d === "</script><!--");
 * ```
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}
