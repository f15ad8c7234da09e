// Entry point: builds the stack's role (see program.ts) and exports its outputs.
import { main } from "./program";

// The function, not its promise: the SDK calls it right before awaiting it. A promise made at
// load time is awaited only after the SDK's own asynchronous checks, so a config error raised at
// once sat unhandled meanwhile and Node printed PromiseRejectionHandledWarning above it.
export = main;
