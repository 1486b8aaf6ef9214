/**
 * The private `XDG_RUNTIME_DIR` the CLI gives itself silences libwayland-client, which is what
 * prints Mesa's `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` when the GL
 * path connects to a display. A child process without the variable calls `wl_display_connect`
 * through FFI: the message appears without `ensureRuntimeDir()` (the control: the test can
 * fail) and not with it. Ignored where libwayland-client is not installed.
 *
 * @module
 */

import { assertEquals, assertStringIncludes } from "@std/assert";

const LIB = "libwayland-client.so.0";
const MAIN = new URL("./main.ts", import.meta.url).href;

// Probed in a child: the test runner itself has no FFI permission.
const hasWayland = Deno.build.os === "linux" && (await new Deno.Command(Deno.execPath(), {
  args: ["eval", `Deno.dlopen(${JSON.stringify(LIB)}, {}).close()`],
  stdin: "null",
  stdout: "null",
  stderr: "null",
}).output()).success;

async function connect(fix: boolean): Promise<string> {
  const script = `
    import { ensureRuntimeDir } from ${JSON.stringify(MAIN)};
    if (${fix}) ensureRuntimeDir();
    const lib = Deno.dlopen(${JSON.stringify(LIB)}, {
      wl_display_connect: { parameters: ["pointer"], result: "pointer" },
    });
    lib.symbols.wl_display_connect(null);
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    clearEnv: true,
    env: {
      PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
      HOME: Deno.env.get("HOME") ?? "/root",
      ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, stderr);
  return stderr;
}

Deno.test({
  name: "without XDG_RUNTIME_DIR libwayland complains; with the CLI's private one it does not",
  ignore: !hasWayland || Deno.build.os !== "linux",
  async fn() {
    assertStringIncludes(await connect(false), "XDG_RUNTIME_DIR is invalid or not set");
    assertEquals(await connect(true), "");
  },
});
