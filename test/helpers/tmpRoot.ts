/**
 * vitest globalSetup: every temp file or directory the unit tests make (os.tmpdir(), mktemp)
 * goes under one directory of this run, removed when the run ends, pass or fail.
 */
import { chmodSync, mkdtempSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), "gitea-homelab-unit-"));
  // The script sandbox runs scripts as nobody below it: it must be able to pass through.
  chmodSync(root, 0o711);
  process.env.TMPDIR = root;
  return () => rmSync(root, { recursive: true, force: true });
}
