/**
 * Serves a provider TEST DOUBLE as a plugin: `main()` from @pulumi/pulumi/provider, plus the one
 * thing that server cannot say. Its DiffResult has no field for WHICH properties changed, so the
 * engine's step events would carry no `diffs` (the real providers' do, and the e2e harness reads
 * them as the inputs a step changes). `main` registers its gRPC service synchronously, so for
 * that one call `addService` is wrapped: the service's `diff` then also sets the response's
 * changed keys, computed by the double's own `changedKeys` from the same request. Nothing else of
 * the server is touched, and `addService` is restored as soon as `main` has registered it.
 */
import { createRequire } from "module";
import * as provider from "@pulumi/pulumi/provider";

/** The gRPC library instance the SDK's server uses (resolved from the SDK, not from here). */
const grpc: typeof import("@grpc/grpc-js") = createRequire(require.resolve("@pulumi/pulumi/provider"))("@grpc/grpc-js");

type Struct = { toJavaScript(): any };
interface DiffCall {
  request: { getUrn(): string; getOlds(): Struct; getNews(): Struct };
}
type DiffCallback = (err: unknown, resp?: { setDiffsList(keys: string[]): void } | null, ...rest: unknown[]) => void;

/** Runs `double` as a plugin with the engine's `args`; `changedKeys` names what a diff changed. */
export function serveDouble(double: provider.Provider, changedKeys: (urn: string, olds: any, news: any) => string[], args: string[]): Promise<void> {
  const server = grpc.Server.prototype;
  const addService = server.addService;
  server.addService = function (service, implementation: any) {
    const diff = implementation.diff.bind(implementation);
    implementation.diff = (call: DiffCall, callback: DiffCallback) =>
      diff(call, (err: unknown, resp?: { setDiffsList(keys: string[]): void } | null, ...rest: unknown[]) => {
        if (!err && resp) {
          const req = call.request;
          resp.setDiffsList(changedKeys(req.getUrn(), req.getOlds().toJavaScript(), req.getNews().toJavaScript()));
        }
        callback(err, resp, ...rest);
      });
    return addService.call(this, service, implementation);
  };
  try {
    return provider.main(double, args);
  } finally {
    server.addService = addService;
  }
}
