/** The tool's version, as recorded in results files. Keep it equal to deno.json's `version`. */
export const VERSION = "0.1.0";
