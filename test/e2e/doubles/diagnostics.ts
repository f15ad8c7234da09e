/**
 * Diagnostics from the provider test doubles to the engine. `@pulumi/pulumi/provider`'s `main`
 * never connects `pulumi.log` to the engine for a plain resource provider (only `construct` and
 * `call` do), so `pulumi.log` would print to the plugin's stderr, tied to no resource. The doubles
 * therefore call the engine's Log RPC themselves, at the address the engine passes as the
 * plugin's first argument. That lets a warning name its resource as the real providers' do, and
 * an "ephemeral" message is a status line of the progress display, as the real command provider
 * shows a command's output.
 */
import * as grpc from "@grpc/grpc-js";
import { EngineClient } from "@pulumi/pulumi/proto/engine_grpc_pb";
import { LogRequest, LogSeverity } from "@pulumi/pulumi/proto/engine_pb";

export type Severity = "debug" | "info" | "warning" | "error";

export interface Diagnostics {
  /** Sends `message` to the engine, tied to `urn` when given; never rejects. */
  log(severity: Severity, message: string, opts?: { urn?: string; ephemeral?: boolean }): Promise<void>;
}

const SEVERITIES: Record<Severity, LogSeverity> = {
  debug: LogSeverity.DEBUG,
  info: LogSeverity.INFO,
  warning: LogSeverity.WARNING,
  error: LogSeverity.ERROR,
};

/**
 * The engine's address among a plugin's arguments: the first that is not one of the flags the
 * CLI may put before it (`--logtostderr`, `-v=N`, `--tracing ADDR`), as `main` parses them.
 */
export function engineAddress(args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--logtostderr" || args[i].startsWith("-v=")) continue;
    if (args[i] === "--tracing") {
      i++;
      continue;
    }
    return args[i];
  }
  return undefined;
}

/** Diagnostics to the engine at `address`; with no address (unit tests), to `fallback`. */
export function engineDiagnostics(address: string | undefined, fallback: Diagnostics = silentDiagnostics()): Diagnostics {
  if (!address) return fallback;
  const client = new EngineClient(address, grpc.credentials.createInsecure());
  return {
    log: (severity, message, opts = {}) =>
      new Promise<void>((resolve) => {
        const req = new LogRequest();
        req.setSeverity(SEVERITIES[severity]);
        req.setMessage(message);
        req.setUrn(opts.urn ?? "");
        req.setEphemeral(opts.ephemeral === true);
        // A lost diagnostic must never fail the operation it describes.
        client.log(req, () => resolve());
      }),
  };
}

/** Diagnostics nobody reads. */
export function silentDiagnostics(): Diagnostics {
  return { log: async () => undefined };
}

/** Diagnostics kept in `into`, for unit tests. */
export function collectedDiagnostics(into: Array<{ severity: Severity; message: string; urn?: string; ephemeral?: boolean }>): Diagnostics {
  return {
    log: async (severity, message, opts = {}) => {
      into.push({ severity, message, ...opts });
    },
  };
}
