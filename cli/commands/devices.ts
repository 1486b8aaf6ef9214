/**
 * `attnbench devices`: the adapter, and the limits and features that matter for attention.
 *
 * @module
 */

import { parseCommandFlags } from "../flags.ts";
import type { Command } from "../command.ts";
import { FEATURE_NAMES, openGpu } from "../../kernels/gpu.ts";
import { fmtVendor } from "../../reports/mod.ts";

const HELP = `attnbench devices — the WebGPU adapter Deno finds, its limits and features

Usage: attnbench devices [--json] [--no-subgroups]

Prints vendor, architecture, description, whether it is a fallback (software) adapter, the
limits that bound the kernels (workgroup storage, storage binding and buffer sizes, invocations
per workgroup, workgroups per dimension) and the features shader-f16, timestamp-query and
subgroups. Deno 2.9.6 does not list subgroups among an adapter's features even where a device
gets them, so the device is opened to ask; "subgroups" then says whether the kernels use them
and with how many lanes (--no-subgroups: never ask, as every command's --no-subgroups).
Exit code 2 when there is no adapter.`;

/** The `devices` command. */
export const devicesCommand: Command = {
  name: "devices",
  summary: "show the GPU adapter, its limits and features",
  help: HELP,
  async run(args, io) {
    const flags = parseCommandFlags("devices", args, { boolean: ["json", "no-subgroups"] });
    if (flags.help) {
      io.out(HELP);
      return 0;
    }
    const gpu = await openGpu({ subgroups: !flags["no-subgroups"] });
    const info = gpu.info;
    gpu.device.destroy();
    if (flags.json) {
      io.out(JSON.stringify(info, null, 2));
      return 0;
    }
    const rows: [string, string][] = [
      ["description", info.description || "(none)"],
      ["vendor", fmtVendor(info.vendor) || "(none)"],
      ["architecture", info.architecture || "(none)"],
      ["device", info.device || "(none)"],
      ["fallback adapter", info.isFallbackAdapter ? "yes (software: correct but slow)" : "no"],
      ...Object.entries(info.limits).map(([k, v]) =>
        [k, v.toLocaleString("en-US")] as [
          string,
          string,
        ]
      ),
      ...FEATURE_NAMES.map((f) =>
        [f, info.features.includes(f) ? "yes" : "no"] as [
          string,
          string,
        ]
      ),
      ["subgroup size", info.subgroups ? String(info.subgroupSize) : "(portable path)"],
    ];
    const w = Math.max(...rows.map(([k]) => k.length));
    for (const [k, v] of rows) io.out(`${k.padEnd(w)}  ${v}`);
    return 0;
  },
};
