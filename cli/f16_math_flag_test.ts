import { assertEquals, assertThrows } from "@std/assert";
import { UsageError } from "../core/errors.ts";
import { f16MathFlag } from "./f16_math_flag.ts";

Deno.test("--f16-math: f32 by default at f16, absent at f32, bad values are usage errors", () => {
  assertEquals(f16MathFlag({ _: [] }, "f16"), "f32");
  assertEquals(f16MathFlag({ _: [], "f16-math": "packed" }, "f16"), "packed");
  assertEquals(f16MathFlag({ _: [], "f16-math": "f32" }, "f16"), "f32");
  assertEquals(f16MathFlag({ _: [] }, "f32"), null);
  assertEquals(f16MathFlag({ _: [], "f16-math": "f32" }, "f32"), null);
  assertThrows(() => f16MathFlag({ _: [], "f16-math": "half" }, "f16"), UsageError, "half");
  assertThrows(() => f16MathFlag({ _: [], "f16-math": "packed" }, "f32"), UsageError, "f16");
});
