/**
 * What the real Pulumi CLI leaves on disk, for the suites' checks that no secret shows: every
 * file of the file backend (the stacks' state). What it printed is each CliStack's log.
 */
import { readdirSync, readFileSync, statSync } from "fs";
import { join } from "path";

/** Every file below `dir`, read as text: the state the CLI keeps. */
export function filesBelow(dir: string): string {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile())
    .map((f) => readFileSync(f, "utf8"))
    .join("\n");
}
