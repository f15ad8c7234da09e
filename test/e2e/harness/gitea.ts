/** Gitea's HTTP API as the tests use it: through a port the VM forwards to this machine. */
import { Agent, setGlobalDispatcher } from "undici";

/**
 * Every later request of this test file (fetch) trusts only CA and checks the certificate against
 * SERVERNAME, the host people use: https://127.0.0.1:PORT reaches the VM's forwarded port.
 */
export function trustGiteaCa(ca: string, servername: string): void {
  setGlobalDispatcher(new Agent({ connect: { ca, servername } }));
}

/** How long Gitea may take to answer /api/healthz: its first start under TCG runs every migration. */
export const GITEA_START_MS = 300_000;

export interface GiteaAuth {
  username: string;
  password: string;
}

export interface ApiAnswer {
  status: number;
  body: any;
}

/** One API call; `path` starts after /api/v1. The body is parsed when it is JSON. */
export async function giteaApi(baseUrl: string, path: string, opts: { auth?: GiteaAuth; method?: string; body?: unknown } = {}): Promise<ApiAnswer> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (opts.auth) headers.authorization = `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString("base64")}`;
  if (opts.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${baseUrl.replace(/\/$/, "")}/api/v1${path}`, {
    method: opts.method ?? "GET",
    headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body };
}

/** A web page as a stranger gets it (no session, redirects not followed): its status, Location and text. */
export async function anonymousPage(baseUrl: string, path: string, method = "GET"): Promise<{ status: number; location: string; text: string }> {
  const res = await fetch(`${baseUrl.replace(/\/$/, "")}${path}`, { method, redirect: "manual", signal: AbortSignal.timeout(60_000) });
  return { status: res.status, location: res.headers.get("location") ?? "", text: await res.text() };
}

/** Polls `check` every `everyMs` until it returns a value other than undefined, up to `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, everyMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last ? `: ${last}` : ""}`);
}

/** A value of Gitea's own app.ini (as the container has it): `[section] KEY = value`. */
export function iniValue(ini: string, section: string, key: string): string | undefined {
  let current = "";
  for (const line of ini.split("\n")) {
    const header = /^\s*\[([^\]]+)\]\s*$/.exec(line);
    if (header) current = header[1];
    const entry = /^\s*([A-Za-z0-9_.]+)\s*=\s*(.*?)\s*$/.exec(line);
    // The ini library quotes a value with """ (a backtick in it), ` (# or ;) or " (outer spaces).
    if (entry && current === section && entry[1] === key) return /^"""(.*)"""$/.exec(entry[2])?.[1] ?? entry[2].replace(/^`(.*)`$/, "$1").replace(/^"(.*)"$/, "$1");
  }
  return undefined;
}
