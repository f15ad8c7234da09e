/**
 * Drift, in one place. `@pulumi/command` cannot read a host, so a command that converges part of
 * a host declares a `HostCheck`: a read-only probe of that part and a comparison with what the
 * command converges. The Host runs every probe in one SSH session per preview and up; this file
 * turns a comparison into what the command folds in.
 *
 * Drift must show as an update of the command in `pulumi preview`, and the preview after the
 * repair must be clean. So the command folds in a marker, "N text", and when it succeeds it
 * records on the host the marker and the digest of what it applied. The next probe that finds
 * the host as applied folds the recorded marker again (no diff); one that finds it different
 * folds the next check number (a diff, even for the same drift twice). The digest tells drift
 * from a config change: the host is said to have drifted only when it differs from what the
 * same command last applied, never because the config asks for something new.
 */
import { createHash } from "crypto";
import { MANAGED_HEADER, shellVars } from "../render/shell";
import { Platform } from "./platform";
import { assertRecordName, Facts, oneLine, ProbeBody } from "./probeSession";

/** How a command reads its part of the host, and how that compares with what it converges. */
export interface HostCheck {
  /** Read-only bash printing `name=value` facts, run as root in the host's probe session. */
  probe: ProbeBody;
  /**
   * What the facts show different from what the command converges (empty: in sync), for the
   * decided platform; `undefined` facts mean the probe's output was unreadable. Descriptions
   * name paths and states, never secrets: they show in the diff.
   */
  compare: (facts: Facts | undefined, platform: Platform) => string[];
}

/** What a command folds in: its drift check number and the drift seen (or "in sync"). */
export interface DriftMarker {
  check: number;
  text: string;
}

/** A command's record on the host: its last marker and the digest of what it applied. */
export interface DriftRecord extends DriftMarker {
  /** Absent in records written before digests were kept: then nothing counts as drift. */
  applied?: string;
}

export function formatMarker(m: DriftMarker): string {
  return `${m.check} ${m.text}`;
}

export function parseMarker(recorded: string | undefined): DriftMarker | undefined {
  const m = /^(\d{1,9}) (\S.{0,499})$/.exec(recorded ?? "");
  return m ? { check: Number(m[1]), text: m[2] } : undefined;
}

/** Reads a record line: "N text", optionally preceded by "sha256:DIGEST ". */
export function parseRecord(line: string | undefined): DriftRecord | undefined {
  const m = /^sha256:([0-9a-f]{64}) (.*)$/.exec(line ?? "");
  const marker = parseMarker(m ? m[2] : line);
  return marker && { ...marker, applied: m?.[1] };
}

/** Identifies what a command applies: its script and its stdin (only a digest of it). */
export function appliedDigest(script: string, stdin: string | undefined): string {
  const input = createHash("sha256").update(stdin ?? "").digest("hex");
  return createHash("sha256").update(script).update("\0").update(input).digest("hex");
}

export interface Fold {
  marker: DriftMarker;
  /** The host changed since this command last applied: say so. */
  hostDrifted: boolean;
}

/**
 * The marker a command folds in. Nothing recorded (a first converge): "in sync", or check 1
 * with what is missing. Recorded for another script or stdin (the config changed): the recorded
 * marker, since the command changes anyway. Recorded for this very command: the recorded marker
 * when the host is as applied, else the next check number with the drift.
 */
export function foldDrift(drift: string[], record: DriftRecord | undefined, applied: string): Fold {
  if (record === undefined) {
    return { marker: drift.length === 0 ? { check: 0, text: "in sync" } : { check: 1, text: oneLine(drift.join("; ")) }, hostDrifted: false };
  }
  const recorded = { check: record.check, text: record.text };
  if (record.applied !== applied || drift.length === 0) return { marker: recorded, hostDrifted: false };
  return { marker: { check: record.check + 1, text: oneLine(drift.join("; ")) }, hostDrifted: true };
}

/** The variable of the record script that carries the marker (the line `preview --diff` shows). */
const MARKER_VAR = "host_state_before_this_converge";

/**
 * Splits words as sh does for what `shq` and `asRootCommand` make: bare words, '…' quoting and
 * backslash escapes outside quotes. Enough to read a folded marker back; not a shell parser.
 */
function splitQuotedWords(text: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      word = (word ?? "") + text.slice(i + 1, end < 0 ? text.length : end);
      i = end < 0 ? text.length : end;
    } else if (c === "\\") {
      word = (word ?? "") + (text[++i] ?? "");
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else {
      word = (word ?? "") + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The word a checked command's command line carries, so `pulumi preview --diff` shows its drift marker. */
export function markerLabel(marker: DriftMarker): string {
  return `${MARKER_VAR}=${formatMarker({ check: marker.check, text: oneLine(marker.text) })}`;
}

/** The marker a command line carries (`asRootCommand(script, { label: markerLabel(…) })`). */
export function foldedMarker(commandLine: string): DriftMarker | undefined {
  // sh -c LAUNCHER gitea-homelab LABEL
  const label = splitQuotedWords(commandLine)[4];
  return label?.startsWith(`${MARKER_VAR}=`) ? parseMarker(label.slice(MARKER_VAR.length + 1)) : undefined;
}

/**
 * Runs after a command succeeded (as root): records its marker and the digest of what it
 * applied. The marker names paths and values from config, so it is a quoted variable, never a
 * comment; `pulumi preview --diff` shows its line.
 */
export function renderStateRecordScript(records: string, name: string, marker: DriftMarker, applied: string): string {
  if (!/^[0-9a-f]{64}$/.test(applied)) throw new Error(`bad applied digest: ${applied}`);
  return [
    "#!/usr/bin/env bash",
    `# ${MANAGED_HEADER}`,
    "# Records the host state this converge started from, for the next drift check.",
    "set -euo pipefail",
    shellVars({
      [MARKER_VAR]: formatMarker({ check: marker.check, text: oneLine(marker.text) }),
      applied: `sha256:${applied}`,
      record_file: `${records}/${assertRecordName(name)}`,
    }),
    'install -d -m 700 "$(dirname "$record_file")"',
    `printf '%s %s\\n' "$applied" "$${MARKER_VAR}" >"$record_file"`,
    "",
  ].join("\n");
}
